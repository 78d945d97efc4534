"""wallet-manager when MongoDB goes away: signing answers UNAVAILABLE (retryable, never INTERNAL, never a
signature without its log record) and works again once the database is back."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from tronpay.common.v1 import common_pb2
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as pb

from tests.harness.ferretdb import start_ferretdb, stop_ferretdb
from tests.wallet_manager import txs
from tests.wallet_manager.service_support import KIND, Client, error_reason, policy, rid, started


def test_database_outage_is_unavailable_then_recovers(tmp_path: Path) -> None:
    db = start_ferretdb(tmp_path / "fdb")
    try:
        with started(db, tmp_path / "svc", MONGODB_TIMEOUT_SECONDS="1", HEALTH_POLL_SECONDS="0.5") as c:
            wm = Client(c["wallet_manager"].target)
            w = wm.call(
                "CreateWallet",
                pb.CreateWalletRequest(
                    request_id=rid(),
                    wallet=pb.Wallet(owner_id="outage", kind=KIND.KIND_IMPORTED, policy=policy()),
                    private_key="e7" * 32,
                ),
            ).wallet

            def sign() -> pb.SignTransactionResponse:
                raw = txs.transfer(w.address, txs.DEST, 1_000)
                req = pb.SignTransactionRequest(
                    request_id=rid(), wallet_id=w.wallet_id, transaction=common_pb2.Transaction(raw_data=raw)
                )
                return wm.call("SignTransaction", req)

            assert sign().signer_address == w.address
            stop_ferretdb(db)
            with pytest.raises(grpc.RpcError) as err:
                sign()
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE, err.value.details()
            assert error_reason(err.value) == "DATABASE_UNAVAILABLE"
            db = start_ferretdb(db.data_dir, db.port)
            assert sign().signer_address == w.address
            records = wm.call("ListSignatures", pb.ListSignaturesRequest(wallet_id=w.wallet_id)).records
            assert len(records) == 2  # the refused attempt left no record
            wm.close()
    finally:
        stop_ferretdb(db)
