"""The public devnet key protects keys only on a devnet: wallet-manager without WALLET_ENCRYPTION_KEY works
against the local devnet (tron-client reports a devnet chain), and refuses to seal or sign anything,
VAULT_UNAVAILABLE with one clear error line at start-up, when tron-client's chain is a public network's
(here: tron-client configured with mainnet's chain id, the last 4 bytes of mainnet's genesis block id)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from tronpay.common.v1 import common_pb2
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as pb

from services.common.settings import DEFAULT_CHAIN_IDS, TronNetwork
from services.common.tron.address import private_key_to_address
from tests.harness.devnet import Devnet
from tests.harness.ferretdb import FerretDB
from tests.harness.services import Cluster
from tests.wallet_manager import txs
from tests.wallet_manager.service_support import KIND, Client, db_of, error_reason, policy, rid, started

KEY = bytes.fromhex("d7" * 32)
CREATE = pb.CreateWalletRequest(
    request_id="devnet-key-create",
    wallet=pb.Wallet(owner_id="devnet-key", kind=KIND.KIND_IMPORTED, policy=policy()),
    private_key=KEY.hex(),
)


@contextmanager
def without_key(
    ferretdb: FerretDB, devnet: Devnet, tmp: Path, **extra: str
) -> Iterator[tuple[Cluster, Client]]:
    with started(
        ferretdb, tmp, "tron_client", "wallet_manager", node_url=devnet.url, WALLET_ENCRYPTION_KEY="", **extra
    ) as c:
        wm = Client(c["wallet_manager"].target)
        try:
            yield c, wm
        finally:
            wm.close()


def test_the_devnet_key_works_on_the_local_devnet(ferretdb: FerretDB, devnet: Devnet, tmp_path: Path) -> None:
    with without_key(ferretdb, devnet, tmp_path) as (_c, wm):
        w = wm.call("CreateWallet", CREATE).wallet
        raw = txs.transfer(private_key_to_address(KEY), txs.DEST, 1_000)
        sign = pb.SignTransactionRequest(
            request_id=rid(), wallet_id=w.wallet_id, transaction=common_pb2.Transaction(raw_data=raw)
        )
        assert wm.call("SignTransaction", sign, caller="usdt-manager").signer_address == w.address


def test_the_devnet_key_is_refused_on_a_public_chain(
    ferretdb: FerretDB, devnet: Devnet, tmp_path: Path
) -> None:
    mainnet = str(DEFAULT_CHAIN_IDS[TronNetwork.MAINNET])
    with without_key(ferretdb, devnet, tmp_path, TRON_CHAIN_ID=mainnet) as (c, wm):
        with pytest.raises(grpc.RpcError) as err:
            wm.call("CreateWallet", CREATE)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error_reason(err.value) == "VAULT_UNAVAILABLE"
        assert "is not a local devnet" in str(err.value.details())
        assert db_of(ferretdb, c)["wallet_manager_secrets"].count_documents({}) == 0  # nothing sealed
        # The start-up warm-up logs why (it may still be backing off while tron-client came up: bounded wait).
        for _ in range(300):
            lines = c["wallet_manager"].log().splitlines()
            if any("wallet keys unavailable" in line and "is not a local devnet" in line for line in lines):
                break
            time.sleep(0.1)
        else:
            raise AssertionError(c["wallet_manager"].log()[-3000:])
