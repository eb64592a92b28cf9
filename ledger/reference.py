"""The ledger's semantics in plain Python, clear over fast: the oracle `Ledger` is tested against.

No database, no cache, no undo log: state is a few dicts of immutable values, a linked chain runs
on copies and is kept or dropped whole, and balances as of a journal sequence are recomputed by
replaying the transfers up to it. The rules are the ones `ledger.ledger` documents.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from engine._codes import AccountResult, TransferResult
from ledger.ledger import FAILED_RECORDED_MIN, CommitResult
from ledger.model import (
    PURPOSES_KNOWN,
    Account,
    AccountFlags,
    Balance,
    Transfer,
    TransferFlags,
    TransferRecord,
    account_id_max,
    balance_max,
    code_max,
    ledger_max,
    transfer_id_max,
)

R = TransferResult
LINKED, PENDING = TransferFlags.LINKED, TransferFlags.PENDING
POST, VOID = TransferFlags.POST_PENDING, TransferFlags.VOID_PENDING
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def effect(kind: int, amount: int, pending_amount: int) -> tuple[int, int]:
    """(posted, pending) a transfer adds to each side: to debits on the debit account and to
    credits on the credit account."""
    if kind == PENDING:
        return 0, amount
    if kind == POST:
        return amount, -pending_amount
    if kind == VOID:
        return 0, -pending_amount
    return amount, 0


class ReferenceLedger:
    """One ledger in memory; the same calls as `Ledger`, synchronous."""

    def __init__(self) -> None:
        self.accounts: dict[int, Account] = {}
        self.balance: dict[int, Balance] = {}
        self.transfers: dict[int, TransferRecord] = {}
        self.resolved: dict[int, int] = {}  # pending id -> POST_PENDING or VOID_PENDING
        self.failed: dict[int, int] = {}
        self.events: dict[str, int] = {}
        self.commit_no = 0

    def create_accounts(self, accounts: Sequence[Account]) -> list[tuple[int, AccountResult]]:
        results: list[tuple[int, AccountResult]] = []
        for index, a in enumerate(accounts):
            result = self._check_account(a)
            if result == AccountResult.OK:
                self.accounts[a.id] = a
                self.balance[a.id] = Balance()
            else:
                results.append((index, result))
        return results

    def _check_account(self, a: Account) -> AccountResult:
        both = (
            AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
            | AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS
        )
        if not 1 <= a.id <= account_id_max:
            return AccountResult.account_id_must_be_positive
        if a.flags not in range(4):
            return AccountResult.account_flags_must_be_known
        if a.id in self.accounts:
            if self.accounts[a.id] == a:
                return AccountResult.account_exists
            return AccountResult.account_exists_with_different_fields
        if a.flags == both:
            return AccountResult.account_flags_are_mutually_exclusive
        if not 1 <= a.ledger <= ledger_max:
            return AccountResult.account_ledger_must_be_in_range
        if not 0 <= a.owner_id <= account_id_max:
            return AccountResult.owner_id_must_be_in_range
        if a.purpose not in PURPOSES_KNOWN:
            return AccountResult.purpose_must_be_known
        return AccountResult.OK

    # -- TRANSFERS --

    def commit(
        self, transfers: Sequence[Transfer], *, journal_seq: int, event_id: str | None = None,
        ts_ns: int = 0,
    ) -> CommitResult:  # fmt: skip
        if event_id is not None and event_id in self.events:
            return CommitResult(event_already_applied=True, commit_no=self.events[event_id])
        results: list[tuple[int, TransferResult]] = []
        written = False
        groups: list[list[int]] = [[]]
        for index, t in enumerate(transfers):
            groups[-1].append(index)
            if not t.flags & LINKED:
                groups.append([])
        for group in filter(None, groups):
            chained = bool(transfers[group[0]].flags & LINKED)
            saved = (dict(self.balance), dict(self.transfers), dict(self.resolved))
            outcome = R.OK
            for index in group:
                t = transfers[index]
                if t.flags & LINKED and index == len(transfers) - 1:
                    outcome = R.linked_event_chain_open
                else:
                    outcome = self._apply(t, journal_seq, ts_ns)
                if outcome != R.OK:
                    break
            if outcome == R.OK:
                written = True
                continue
            if outcome >= FAILED_RECORDED_MIN:
                self.failed[transfers[index].id] = outcome
                written = True
            # Only a chain refused at its first member is unchanged, so only then can it be a
            # whole-chain retry.
            all_exist = index == group[0] and all(
                self._exists(transfers[i]) == R.exists
                and not (transfers[i].flags & LINKED and i == len(transfers) - 1)
                for i in group
            )
            if not chained:
                results.append((index, outcome))
            elif all_exist:
                results.extend((i, R.exists) for i in group)
            else:
                self.balance, self.transfers, self.resolved = saved
                results.extend((i, outcome if i == index else R.linked_event_failed) for i in group)
        commit_no = None
        if written or event_id is not None:
            self.commit_no += 1
            commit_no = self.commit_no
            if event_id is not None:
                self.events[event_id] = commit_no
        return CommitResult(results=results, commit_no=commit_no)

    def _exists(self, t: Transfer) -> TransferResult:
        if not 1 <= t.id <= transfer_id_max:
            return R.id_must_be_in_range
        if t.flags not in range(16):
            return R.flags_must_be_known
        if t.id not in self.transfers:
            return R.OK
        s = self.transfers[t.id]
        same = (t.flags, t.pending_id, t.user_data_1, t.user_data_2) == (
            s.flags, s.pending_id, s.user_data_1, s.user_data_2
        )  # fmt: skip
        if same and s.flags & (POST | VOID):
            p = self.transfers[s.pending_id]
            # A post or void is what it resolves to: 0 fields come from its pending transfer.
            given = (t.debit_account_id or p.debit_account_id,
                     t.credit_account_id or p.credit_account_id, t.ledger or p.ledger,
                     t.code or p.code)  # fmt: skip
            same = given == (s.debit_account_id, s.credit_account_id, s.ledger, s.code)
            if s.flags & POST:
                same = same and (t.amount_minor or p.amount_minor) == s.amount_minor
            else:
                same = same and t.amount_minor in (0, p.amount_minor)
        elif same:
            same = (t.debit_account_id, t.credit_account_id, t.amount_minor, t.ledger, t.code) == (
                s.debit_account_id, s.credit_account_id, s.amount_minor, s.ledger, s.code
            )  # fmt: skip
        return R.exists if same else R.exists_with_different_fields

    def _apply(self, t: Transfer, journal_seq: int, ts_ns: int) -> TransferResult:
        result = self._exists(t)
        if result != R.OK:
            return result
        if t.id in self.failed:
            return R.id_already_failed
        kind = t.flags & (PENDING | POST | VOID)
        if kind not in (0, PENDING, POST, VOID):
            return R.flags_are_mutually_exclusive
        two_phase_end = kind in (POST, VOID)
        if not two_phase_end and t.pending_id != 0:
            return R.pending_id_must_be_zero
        if two_phase_end and not 1 <= t.pending_id <= transfer_id_max:
            return R.pending_id_must_be_in_range
        if two_phase_end and t.pending_id == t.id:
            return R.pending_id_must_be_different
        if t.amount_minor < 0:
            return R.amount_must_not_be_negative
        if t.amount_minor == 0 and not two_phase_end:
            return R.amount_must_not_be_zero
        if not (0 if two_phase_end else 1) <= t.code <= code_max:
            return R.code_must_be_in_range
        if not all(INT64_MIN <= u <= INT64_MAX for u in (t.user_data_1, t.user_data_2)):
            return R.user_data_must_fit_in_64_bits
        if two_phase_end:
            p = self.transfers.get(t.pending_id)
            if p is None:
                return R.pending_transfer_not_found
            if not p.flags & PENDING:
                return R.pending_transfer_not_pending
            if self.resolved.get(p.id) == POST:
                return R.pending_transfer_already_posted
            if self.resolved.get(p.id) == VOID:
                return R.pending_transfer_already_voided
            if t.debit_account_id not in (0, p.debit_account_id):
                return R.pending_transfer_has_different_accounts
            if t.credit_account_id not in (0, p.credit_account_id):
                return R.pending_transfer_has_different_accounts
            if t.ledger not in (0, p.ledger):
                return R.pending_transfer_has_different_ledger
            if kind == POST and t.amount_minor > p.amount_minor:
                return R.exceeds_pending_transfer_amount
            if kind == VOID and t.amount_minor not in (0, p.amount_minor):
                return R.pending_transfer_has_different_amount
            debit, credit, ledger = p.debit_account_id, p.credit_account_id, p.ledger
            amount = (t.amount_minor or p.amount_minor) if kind == POST else p.amount_minor
            code, pending_amount = t.code or p.code, p.amount_minor
        else:
            if t.debit_account_id == t.credit_account_id:
                return R.accounts_must_be_different
            if t.debit_account_id not in self.accounts:
                return R.debit_account_must_exist
            if t.credit_account_id not in self.accounts:
                return R.credit_account_must_exist
            ledgers = {self.accounts[t.debit_account_id].ledger,
                       self.accounts[t.credit_account_id].ledger}  # fmt: skip
            if ledgers != {t.ledger}:
                return R.ledgers_must_match
            debit, credit, ledger = t.debit_account_id, t.credit_account_id, t.ledger
            amount, code, pending_amount = t.amount_minor, t.code, 0
        posted, pending = effect(kind, amount, pending_amount)
        d, c = self.balance[debit], self.balance[credit]
        d = Balance(
            debits_posted=d.debits_posted + posted,
            credits_posted=d.credits_posted,
            debits_pending=d.debits_pending + pending,
            credits_pending=d.credits_pending,
        )
        c = Balance(
            debits_posted=c.debits_posted,
            credits_posted=c.credits_posted + posted,
            debits_pending=c.debits_pending,
            credits_pending=c.credits_pending + pending,
        )
        if d.debits_posted + d.debits_pending > balance_max:
            return R.overflows_debits
        if c.credits_posted + c.credits_pending > balance_max:
            return R.overflows_credits
        limited = self.accounts[debit].flags & AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
        if limited and d.debits_posted + d.debits_pending > d.credits_posted:
            return R.exceeds_credits
        limited = self.accounts[credit].flags & AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS
        if limited and c.credits_posted + c.credits_pending > c.debits_posted:
            return R.exceeds_debits
        self.balance[debit], self.balance[credit] = d, c
        if two_phase_end:
            self.resolved[t.pending_id] = kind
        self.transfers[t.id] = TransferRecord(
            id=t.id, debit_account_id=debit, credit_account_id=credit, amount_minor=amount,
            ledger=ledger, code=code, flags=t.flags, pending_id=t.pending_id,
            user_data_1=t.user_data_1, user_data_2=t.user_data_2,
            position=len(self.transfers) + 1, journal_seq=journal_seq, ts_ns=ts_ns,
        )  # fmt: skip
        return R.OK

    # -- QUERIES --

    def balances(self, account_ids: Iterable[int]) -> dict[int, Balance]:
        return {i: self.balance[i] for i in account_ids if i in self.balance}

    def balances_as_of(self, account_ids: Iterable[int], journal_seq: int) -> dict[int, Balance]:
        """Replay every transfer of journal sequence <= `journal_seq`. O(transfers)."""
        sums = {i: [0, 0, 0, 0] for i in account_ids if i in self.accounts}
        for r in self.transfers.values():  # in position order: dicts keep insertion order
            if r.journal_seq > journal_seq:
                continue
            pending_amount = (
                self.transfers[r.pending_id].amount_minor if r.flags & (POST | VOID) else 0
            )
            posted, pending = effect(r.flags & (PENDING | POST | VOID), r.amount_minor,
                                     pending_amount)  # fmt: skip
            if r.debit_account_id in sums:
                sums[r.debit_account_id][0] += posted
                sums[r.debit_account_id][2] += pending
            if r.credit_account_id in sums:
                sums[r.credit_account_id][1] += posted
                sums[r.credit_account_id][3] += pending
        return {
            i: Balance(debits_posted=s[0], credits_posted=s[1], debits_pending=s[2],
                       credits_pending=s[3])
            for i, s in sums.items()
        }  # fmt: skip

    def lookup_transfers(self, ids: Iterable[int]) -> list[TransferRecord]:
        return [self.transfers[i] for i in ids if i in self.transfers]


__all__ = ["ReferenceLedger"]
