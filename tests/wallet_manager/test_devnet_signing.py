"""Signatures made by the service's key custody are accepted by the devnet (java-tron rules) for node-built
transactions.

The flow is the cluster's: the node builds raw_data (wallet/createtransaction, triggersmartcontract), the
vault parses those bytes, recomputes the txID, checks the policy and keys.KeyVault signs with the sealed
key; the signed Transaction is broadcast as hex and executes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.common.tron.tx import encode_transaction
from services.wallet_manager.keys import secret_id
from services.wallet_manager.vault import hd
from services.wallet_manager.vault.policy import AssetLimit, WalletPolicy, check
from services.wallet_manager.vault.tron_tx import parse_transaction
from tests.harness.devnet import Devnet
from tests.harness.ferretdb import FerretDB

from .service_support import key_store, key_vault

SID = secret_id("wallet-devnet", 0)


@pytest.fixture(scope="module")
async def wallet(devnet: Devnet, ferretdb: FerretDB) -> AsyncIterator[dict[str, Any]]:
    key = hd.derive_key(hd.seed_from_mnemonic(hd.generate_mnemonic()), 3, 5)
    async with key_store(ferretdb) as store:
        vault = key_vault(store)
        await vault.seal_key(SID, "wallet-devnet", key.private_key)
        for txid in devnet.faucet(key.address, trx=50_000_000, usdt=10_000_000):
            devnet.wait_for_tx(txid)
        yield {"vault": vault, "address": key.address}


async def _sign_and_send(
    devnet: Devnet, wallet: dict[str, Any], unsigned: dict[str, Any], pol: WalletPolicy
) -> str:
    raw = bytes.fromhex(unsigned["raw_data_hex"])
    tx = parse_transaction(raw)
    assert tx.txid.hex() == unsigned["txID"]  # our txID equals the node's
    decision = check(tx, policy=pol, wallet_address=wallet["address"])
    assert decision, decision.reason
    sig = await wallet["vault"].sign_digest(SID, tx.txid, wallet["address"])
    res = devnet.post("wallet/broadcasthex", {"transaction": encode_transaction(raw, [sig]).hex()})
    assert res.get("result") is True, res
    info = devnet.wait_for_tx(tx.txid_hex)
    assert info.get("receipt", {}).get("result", "SUCCESS") == "SUCCESS", info
    return tx.txid_hex


async def test_trx_transfer_signed_by_vault_executes(devnet: Devnet, wallet: dict[str, Any]) -> None:
    dest = devnet.new_account()
    unsigned = devnet.post(
        "wallet/createtransaction",
        {
            "owner_address": wallet["address"],
            "to_address": dest["address"],
            "amount": 1_234_567,
            "visible": True,
        },
    )
    pol = WalletPolicy(limits={"TRX": AssetLimit(per_tx=2_000_000)})
    await _sign_and_send(devnet, wallet, unsigned, pol)
    acct = devnet.post("wallet/getaccount", {"address": dest["address"], "visible": True})
    assert acct["balance"] == 1_234_567


async def test_trc20_transfer_signed_by_vault_executes(devnet: Devnet, wallet: dict[str, Any]) -> None:
    dest = devnet.new_account()
    param = dest["hex"][2:].rjust(64, "0") + format(2_500_000, "064x")
    built = devnet.post(
        "wallet/triggersmartcontract",
        {
            "owner_address": wallet["address"],
            "contract_address": devnet.usdt,
            "function_selector": "transfer(address,uint256)",
            "parameter": param,
            "fee_limit": 100_000_000,
            "visible": True,
        },
    )
    unsigned = built["transaction"]
    tx = parse_transaction(bytes.fromhex(unsigned["raw_data_hex"]))
    assert (tx.token_method, tx.destination, tx.amount) == ("transfer", dest["address"], 2_500_000)
    # USDT is a configured token; its fee burns TRX, which the policy lists too.
    tokens, fees = frozenset({devnet.usdt}), {"TRX": AssetLimit()}
    pol = WalletPolicy(limits={devnet.usdt: AssetLimit(per_tx=5_000_000), **fees}, tokens=tokens)
    # Over the limit is refused before any key is opened.
    tight = WalletPolicy(limits={devnet.usdt: AssetLimit(per_tx=1_000_000), **fees}, tokens=tokens)
    assert check(tx, policy=tight, wallet_address=wallet["address"]).reason == "OVER_TX_LIMIT"
    await _sign_and_send(devnet, wallet, unsigned, pol)
    out = devnet.post(
        "wallet/triggerconstantcontract",
        {
            "owner_address": dest["address"],
            "contract_address": devnet.usdt,
            "function_selector": "balanceOf(address)",
            "parameter": dest["hex"][2:].rjust(64, "0"),
            "visible": True,
        },
    )
    assert int(out["constant_result"][0], 16) == 2_500_000
