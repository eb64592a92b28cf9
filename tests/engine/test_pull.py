"""`BatchPull` (engine/pull.py) against a real NATS server: rounds of a durable pull consumer.

Goal: the ledger consumer's reader must hand out every message of the stream once, in stream
order, never more than a round asks for, and never hold back a message the stream has.
Method: Hypothesis draws a sequence of publishes and fetches of random sizes; after each fetch
the messages handed out so far must be the stream's first ones, in order, and a fetch must
return as many as it asked for or every message left. Then the edges: a fetch that waits for
a message published meanwhile, an empty stream, acknowledgement, and the reply-subject forms
`stream_position` reads.
"""

from __future__ import annotations

import asyncio
import uuid

import nats
import nats.errors
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from engine.pull import BatchPull, stream_position

# (publish k) or (fetch up to n)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("publish"), st.integers(0, 40)),
        st.tuples(st.just("fetch"), st.integers(1, 30)),
    ),
    min_size=1,
    max_size=12,
)


async def pull_of_new_stream(nc: nats.NATS, *, ack_wait_s: float = 30.0) -> tuple[BatchPull, str]:
    """A fresh stream with a durable explicit-ack consumer, and a BatchPull on it."""
    js = nc.jetstream()
    name = "pull" + uuid.uuid4().hex[:10]
    await js.add_stream(StreamConfig(name=name, subjects=[f"{name}.events"]))
    config = ConsumerConfig(
        durable_name="reader", ack_policy=AckPolicy.EXPLICIT, ack_wait=ack_wait_s
    )
    await js.add_consumer(name, config)
    return await BatchPull.subscribe(nc, name, "reader"), name


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=steps)
def test_rounds_hand_out_the_stream_once_in_order(nats_url: str, steps: list) -> None:
    async def scenario() -> None:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        pull, name = await pull_of_new_stream(nc)
        published = handed = 0
        try:
            for op, n in steps:
                if op == "publish":
                    for _ in range(n):
                        published += 1
                        await js.publish(f"{name}.events", str(published).encode())
                    continue
                try:
                    msgs = await pull.fetch(n, 0.2)
                except nats.errors.TimeoutError:
                    msgs = []
                # As many as asked for, or every message left; the next ones, in order.
                assert len(msgs) == min(n, published - handed)
                assert [int(m.data) for m in msgs] == list(
                    range(handed + 1, handed + 1 + len(msgs))
                )
                assert [stream_position(m) for m in msgs] == [
                    m.metadata.sequence.stream for m in msgs
                ]
                for m in msgs:
                    await m.ack()
                handed += len(msgs)
        finally:
            await pull.unsubscribe()
            await js.delete_stream(name)
            await nc.close()

    asyncio.run(scenario())


def test_a_fetch_waits_for_the_first_message_and_an_empty_stream_times_out(
    nats_url: str,
) -> None:
    async def scenario() -> None:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        pull, name = await pull_of_new_stream(nc)
        try:
            with pytest.raises(nats.errors.TimeoutError):
                await pull.fetch(5, 0.2)
            waiting = asyncio.create_task(pull.fetch(5, 10.0))
            await asyncio.sleep(0.3)
            assert not waiting.done()  # nothing in the stream: the round waits
            await js.publish(f"{name}.events", b"late")
            msgs = await waiting
            assert [m.data for m in msgs] == [b"late"]
        finally:
            await pull.unsubscribe()
            await js.delete_stream(name)
            await nc.close()

    asyncio.run(scenario())


def test_what_is_not_acknowledged_comes_again_and_what_is_does_not(nats_url: str) -> None:
    async def scenario() -> None:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        pull, name = await pull_of_new_stream(nc, ack_wait_s=1.0)
        try:
            for k in range(1, 5):
                await js.publish(f"{name}.events", str(k).encode())
            first = await pull.fetch(4, 1.0)
            for m in first[:2]:
                await m.ack()
            again = await pull.fetch(4, 5.0)  # after ack_wait, the two left unacknowledged
            assert [int(m.data) for m in again] == [3, 4]
            assert [stream_position(m) for m in again] == [3, 4]
        finally:
            await pull.unsubscribe()
            await js.delete_stream(name)
            await nc.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("reply", "position"),
    [
        ("$JS.ACK.events.ledger.1.42.40.1764000000000000000.7", 42),
        ("$JS.ACK.hub.ACCOUNTHASH.events.ledger.2.43.41.1764000000000000000.0.tok", 43),
    ],
)
def test_stream_position_reads_both_reply_subject_forms(reply: str, position: int) -> None:
    msg = Msg(_client=None, subject="events", reply=reply, data=b"")  # type: ignore[arg-type]
    assert stream_position(msg) == position == msg.metadata.sequence.stream
