"""The double-entry journal: every receipt (a final transfer into a deposit address), refund, sweep and fee
posts one balanced entry, inserted once under an id derived from what it records, so posting again after a
crash changes nothing. Accounts are per merchant and address class:
  - `deposit:<address>`    funds at a deposit address (asset side);
  - `collection:<address>` funds at a merchant's collection address (asset side);
  - `hot:<address>`        a wallet of the cluster paying refunds or fees (asset side);
  - `merchant:<merchant>`  what the cluster holds for the merchant (liability);
  - `unmatched:<merchant>` deposits no payment counts yet: the inbox, late money under the flag policy;
  - `fees:<merchant>`      TRX spent on fees for the merchant (expense)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from services.common.mongo import Document, IndexSpec
from services.common.server import Runtime
from services.payment_gateway import state as st
from services.payment_gateway.settings import PaymentGatewaySettings

JOURNAL = "journal"
INDEXES = (IndexSpec(JOURNAL, [("payment_id", 1)]),)


def line(account: str, *, debit: int = 0, credit: int = 0) -> Document:
    return {"account": account, "class": account.partition(":")[0], "debit": debit, "credit": credit}


class Journal:
    """Posting: balanced entries, each inserted once."""

    def __init__(self, rt: Runtime[PaymentGatewaySettings]) -> None:
        s = rt.settings
        self.entries = rt.db.collection(JOURNAL)
        self.policy = st.Policy(
            s.PAYMENT_TOLERANCE_ABSOLUTE, s.PAYMENT_TOLERANCE_BPS, s.PAYMENT_LATE_POLICY == "accept"
        )

    async def post(
        self, entry_id: str, kind: str, merchant: str, asset: str, lines: Sequence[Document], **refs: Any
    ) -> None:
        """Insert a balanced entry once (again: nothing changes)."""
        if sum(x["debit"] for x in lines) != sum(x["credit"] for x in lines):
            raise ValueError(f"unbalanced journal entry {entry_id}")
        doc = {
            "_id": entry_id,
            "kind": kind,
            "merchant_id": merchant,
            "asset": asset,
            "lines": list(lines),
            "create_time": datetime.now(UTC),
            **refs,
        }
        with contextlib.suppress(DuplicateKeyError):
            await self.entries.insert_one(doc)

    def receipt_account(self, payment: Mapping[str, Any], transfer: Mapping[str, Any]) -> str:
        """Where a final transfer on a payment is credited: the merchant, or the unmatched account for late
        money the policy does not count and for deposits assigned from the inbox (posted there already)."""
        if transfer.get("assigned") or not st.counts(transfer, self.policy):
            return f"unmatched:{payment['merchant_id']}"
        return f"merchant:{payment['merchant_id']}"

    async def receipts(self, payment: Mapping[str, Any]) -> None:
        """Entries for the payment's final transfers (idempotent): the deposit address is debited where the
        money is; an assigned deposit moves from the unmatched account to the merchant's."""
        m, asset = payment["merchant_id"], payment["asset"]
        for t in payment["transfers"]:
            if t["state"] != st.FINAL:
                continue
            amount = int(t["amount"])
            if t.get("assigned"):
                await self.post(
                    f"je_asgn_{t['id']}",
                    "ASSIGNMENT",
                    m,
                    asset,
                    [line(f"unmatched:{m}", debit=amount), line(f"merchant:{m}", credit=amount)],
                    payment_id=payment["_id"],
                    txid=t["txid"],
                    ref=t["id"],
                )
                continue
            await self.post(
                f"je_rcpt_{t['id']}",
                "RECEIPT",
                m,
                asset,
                [
                    line(f"deposit:{t.get('to') or payment['deposit_address']}", debit=amount),
                    line(self.receipt_account(payment, t), credit=amount),
                ],
                payment_id=payment["_id"],
                txid=t["txid"],
                ref=t["id"],
            )

    async def unmatched(self, item: Mapping[str, Any]) -> None:
        """A final deposit in the inbox: at its address, owed to no payment yet."""
        if item["state"] != st.FINAL:
            return
        amount, m = int(item["amount"]), item["merchant_id"]
        await self.post(
            f"je_rcpt_{item['_id']}",
            "RECEIPT",
            m,
            item["asset"],
            [line(f"deposit:{item['to']}", debit=amount), line(f"unmatched:{m}", credit=amount)],
            payment_id=item["address_payment_id"],
            txid=item["txid"],
            ref=item["_id"],
        )
