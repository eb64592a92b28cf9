"""``python -m compliance.cases``: store compliance alerts from JetStream until stopped; for an
alert whose rule asks for a SAR (block and SAR, a sanctions report) open the case and draft it.

Options fall back to NATS_URL, DATABASE_URL, CLEARLINE_PREFIX and CLEARLINE_SHARD.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal

import nats
import psycopg

from compliance.alerts import ComplianceAlert
from compliance.cases._consumer import CasesConsumer
from compliance.cases._documents import PgDocumentStore
from compliance.cases._goaml import ReportingEntity
from compliance.cases._schema import ensure_schema
from compliance.cases._service import CaseService
from engine.topology import Topology
from gateway.auth import AuditLog
from gateway.auth import ensure_schema as ensure_auth_schema


async def _main(args: argparse.Namespace) -> None:
    nc = await nats.connect(args.nats_url)
    async with await psycopg.AsyncConnection.connect(args.database_url, autocommit=True) as conn:
        await ensure_auth_schema(conn)
        await ensure_schema(conn)
    audit = await AuditLog.open(args.database_url)
    documents = await PgDocumentStore.open(args.database_url)
    entity = ReportingEntity(args.rentity_id, args.mlro_first_name, args.mlro_last_name,
                             args.mlro_email)  # fmt: skip
    service = await CaseService.open(args.database_url, audit, documents, entity)

    async def draft_sars(alerts: list[ComplianceAlert]) -> None:
        for alert in alerts:
            await service.draft_for_alert(alert, args.sar_jurisdiction)

    consumer = CasesConsumer(
        nc, Topology(prefix=args.prefix, shard=args.shard), args.database_url,
        after_store=draft_sars,
    )  # fmt: skip
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(consumer.stop()))
    try:
        await consumer.start()
        logging.getLogger("clearline.compliance.cases").info("storing compliance alerts")
        await consumer.run()
    finally:
        await consumer.close()
        await service.close()
        await documents.close()
        await audit.close()
        await nc.drain()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m compliance.cases", description=__doc__)
    parser.add_argument("--nats-url", default=os.environ.get("NATS_URL", "nats://127.0.0.1:4222"))
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--prefix", default=os.environ.get("CLEARLINE_PREFIX", "cl"))
    parser.add_argument("--shard", default=os.environ.get("CLEARLINE_SHARD", "0"))
    parser.add_argument(
        "--sar-jurisdiction", default="DE", help="whose FIU the automatic SAR drafts are for"
    )
    parser.add_argument("--rentity-id", default=os.environ.get("CLEARLINE_RENTITY_ID", "DEMO-0"))
    parser.add_argument("--mlro-first-name", default="Money Laundering")
    parser.add_argument("--mlro-last-name", default="Reporting Officer")
    parser.add_argument("--mlro-email", default="mlro@example.invalid")
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("--database-url (or DATABASE_URL) is required")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
