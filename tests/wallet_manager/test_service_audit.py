"""wallet-manager's audit trail as a real process: a custody flow leaves its records in order with the actor
of each call, the chain verifies through the admin RPC, and a record edited in the database makes it fail
naming that record."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from tronpay.audit.v1 import audit_pb2, audit_pb2_grpc
from tronpay.common.v1 import common_pb2
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as pb

from tests.harness.ferretdb import FerretDB
from tests.wallet_manager import txs
from tests.wallet_manager.service_support import Client, db_of, policy, rid, started

E = audit_pb2.AuditRecord


def test_a_custody_flow_is_audited_in_order(
    ferretdb: FerretDB, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with started(ferretdb, tmp_path_factory.mktemp("audit"), "wallet_manager") as c:
        proc = c["wallet_manager"]
        wm = Client(proc.target)
        key = bytes.fromhex("a7" * 32)
        create = pb.CreateWalletRequest(
            request_id=rid(),
            wallet=pb.Wallet(owner_id="olga", kind=pb.Wallet.KIND_IMPORTED, policy=policy(trx_per_tx=5)),
            private_key=key.hex(),
        )
        as_olga: dict[str, Any] = {"subject": "olga", "roles": ("operator",), "tenant": "m1"}
        w = wm.call("CreateWallet", create, **as_olga).wallet
        wm.call("CreateWallet", create, **as_olga)  # a replay: no second event
        update = pb.UpdateWalletRequest(
            request_id=rid(),
            wallet_id=w.wallet_id,
            wallet=pb.Wallet(policy=policy(trx_per_tx=50)),
            update_mask=FieldMask(paths=["policy"]),
        )
        wm.call("UpdateWallet", update, **as_olga)

        def sign(amount: int) -> pb.SignTransactionRequest:
            raw = txs.transfer(w.address, txs.DEST, amount)
            tx = common_pb2.Transaction(raw_data=raw)
            return pb.SignTransactionRequest(request_id=rid(), wallet_id=w.wallet_id, transaction=tx)

        made = wm.call("SignTransaction", sign(10), caller="usdt-manager", tenant="m1")
        with pytest.raises(grpc.RpcError):
            wm.call("SignTransaction", sign(10_000), caller="usdt-manager", tenant="m1")  # over the limit
        with proc.channel("operator", roles=()) as ch:
            stub = audit_pb2_grpc.AuditServiceStub(ch)
            records = [r.record for r in stub.ExportAuditLog(audit_pb2.ExportAuditLogRequest(), timeout=10)]
            assert stub.VerifyAuditLog(audit_pb2.VerifyAuditLogRequest(), timeout=10).intact
        wm.close()

        ours = [r for r in records if r.resource == f"wallets/{w.wallet_id}"]
        assert [r.event_type for r in ours] == [
            E.EVENT_TYPE_WALLET_CREATED,
            E.EVENT_TYPE_KEY_IMPORTED,
            E.EVENT_TYPE_WALLET_UPDATED,
            E.EVENT_TYPE_POLICY_CHANGED,
            E.EVENT_TYPE_SIGNATURE_MADE,
            E.EVENT_TYPE_SIGNATURE_REFUSED,
        ]
        created, *_, signed, refused = ours
        assert (created.actor.subject, created.actor.caller, created.actor.tenant) == ("olga", "edge", "m1")
        assert (signed.actor.caller, refused.actor.caller) == ("usdt-manager", "usdt-manager")
        assert made.txid in signed.details_json and refused.outcome == E.OUTCOME_DENIED
        assert key.hex() not in "".join(str(r) for r in records)  # the imported key is never recorded
        assert [r.seq for r in records] == list(range(1, len(records) + 1))

        # Someone with database access rewrites history: verify names the record.
        db = db_of(ferretdb, c)
        db["wallet_manager_audit_log"].update_one({"seq": signed.seq}, {"$set": {"details.txid": "ff" * 32}})
        with proc.channel("operator", roles=()) as ch:
            verdict = audit_pb2_grpc.AuditServiceStub(ch).VerifyAuditLog(
                audit_pb2.VerifyAuditLogRequest(), timeout=10
            )
        assert not verdict.intact and verdict.first_break.seq == signed.seq
