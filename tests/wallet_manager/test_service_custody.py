"""Key custody of the running service: MongoDB holds ciphertext only (every document of every wallet-manager
collection scanned for the known keys, seed and mnemonic in raw, hex and base64 form), swapped or tampered
ciphertexts never sign, and key rotation (`python -m services.wallet_manager rotate-key`) keeps every
wallet usable with no downtime."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any

import bson
import grpc
import pytest
from tronpay.common.v1 import common_pb2
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as pb

from services.wallet_manager.vault import hd
from services.wallet_manager.vault.ecdsa import recover_address
from services.wallet_manager.wallets import NewAccount
from tests.harness.devnet import Devnet
from tests.harness.ferretdb import FerretDB
from tests.harness.net import free_port
from tests.harness.services import ServiceProcess
from tests.wallet_manager import txs
from tests.wallet_manager.service_support import (
    KEY,
    KEY2,
    KIND,
    Client,
    admin,
    db_of,
    error_reason,
    policy,
    rid,
    started,
)

MNEMONIC = hd.generate_mnemonic(24)
IMPORTED = [bytes.fromhex("c1" * 31 + f"{i:02x}") for i in range(1, 4)]


def forms(secret: bytes) -> list[bytes]:
    """The ways a secret could leak into a document or a log line."""
    out = [secret, secret.hex().encode(), secret.hex().upper().encode()]
    for enc in (base64.b64encode, base64.urlsafe_b64encode):
        b = enc(secret)
        out += [b, b.rstrip(b"=")]
    return out


def sign_ok(wm: Client, wallet_id: str, address: str, *, via: str = "") -> None:
    raw = txs.transfer(address, txs.DEST, 1_000)
    req = pb.SignTransactionRequest(
        request_id=rid(), wallet_id=wallet_id, address=via, transaction=common_pb2.Transaction(raw_data=raw)
    )
    resp = wm.call("SignTransaction", req)
    assert recover_address(hashlib.sha256(raw).digest(), resp.signature) == address


@pytest.fixture(scope="module")
def custody(
    ferretdb: FerretDB, devnet: Devnet, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """A service whose master seed was imported (known mnemonic); HD, derived and imported keys in use."""
    tmp = tmp_path_factory.mktemp("custody")
    with started(ferretdb, tmp, "tron_client", node_url=devnet.url) as c:
        # wallet-manager joins the same environment only after the seed is imported (else it makes one).
        port = int(c.env["WALLET_MANAGER_PORT"])
        wm_proc = ServiceProcess(
            "wallet_manager",
            port,
            {**c.env, "METRICS_PORT": str(free_port())},
            tmp / f"wallet_manager-{port}.log",
        )
        c.processes["wallet_manager"] = wm_proc
        out = admin(c, "import-seed", stdin=MNEMONIC)
        assert out.returncode == 0, out.stderr
        assert MNEMONIC.split()[0] not in out.stdout + out.stderr
        assert admin(c, "import-seed", stdin=hd.generate_mnemonic(12)).returncode == 1  # never replaced
        wm_proc.start()
        wm = Client(wm_proc.target)
        p = policy(allow_sign_message=True)
        hd_wallets = [
            wm.call(
                "CreateWallet",
                pb.CreateWalletRequest(
                    request_id=rid(), wallet=pb.Wallet(owner_id=f"own{i}", kind=KIND.KIND_HD, policy=p)
                ),
            ).wallet
            for i in range(3)
        ]
        derived = [
            wm.call(
                "DeriveAddress", pb.DeriveAddressRequest(request_id=rid(), owner_id="own0", label=f"dep{i}")
            ).derived_address
            for i in range(2)
        ]
        imported = [
            wm.call(
                "CreateWallet",
                pb.CreateWalletRequest(
                    request_id=rid(),
                    wallet=pb.Wallet(owner_id="imp", kind=KIND.KIND_IMPORTED, policy=p),
                    private_key=k.hex(),
                ),
            ).wallet
            for k in IMPORTED
        ]
        try:
            yield {
                "cluster": c,
                "wm": wm,
                "hd": hd_wallets,
                "derived": derived,
                "imported": imported,
                "db": db_of(ferretdb, c),
            }
        finally:
            wm.close()


def test_hd_addresses_follow_the_imported_seed(custody: dict[str, Any]) -> None:
    seed = hd.seed_from_mnemonic(MNEMONIC)
    for w in custody["hd"]:
        assert w.address == hd.derive_key(seed, w.account_index, 0).address
        assert w.xpub == hd.account_xpub(seed, w.account_index)
    own0 = custody["hd"][0]
    assert [d.index for d in custody["derived"]] == [1, 2]
    for d in custody["derived"]:
        assert d.wallet_id == own0.wallet_id
        assert d.address == hd.derive_key(seed, own0.account_index, d.index).address
        assert d.derivation_path == f"m/44'/195'/{own0.account_index}'/0/{d.index}"
        sign_ok(custody["wm"], own0.wallet_id, d.address, via=d.address)
    assert (
        custody["wm"].call("GetWallet", pb.GetWalletRequest(wallet_id=own0.wallet_id)).wallet.address_count
        == 3
    )


def test_mongo_and_logs_hold_no_plaintext_secret(custody: dict[str, Any]) -> None:
    wm, db = custody["wm"], custody["db"]
    for w in custody["imported"]:
        sign_ok(wm, w.wallet_id, w.address)
        wm.call(
            "SignMessage", pb.SignMessageRequest(request_id=rid(), wallet_id=w.wallet_id, message=b"hello")
        )
    seed = hd.seed_from_mnemonic(MNEMONIC)
    secrets_ = [*IMPORTED, seed]
    secrets_ += [hd.derive_key(seed, w.account_index, 0).private_key for w in custody["hd"]]
    secrets_ += [
        hd.derive_key(seed, custody["hd"][0].account_index, d.index).private_key for d in custody["derived"]
    ]
    needles = [f for s in secrets_ for f in forms(s)]
    needles += [MNEMONIC.encode(), " ".join(MNEMONIC.split()[:3]).encode(), KEY.encode()]

    names = [n for n in db.list_collection_names() if n.startswith("wallet_manager_")]
    assert {"wallet_manager_secrets", "wallet_manager_wallets", "wallet_manager_signing_log"} <= set(names)
    scanned = 0
    for name in names:
        for doc in db[name].find():
            blob = bson.encode(doc)
            for needle in needles:
                assert needle not in blob, f"secret material in {name} {doc.get('_id')}"
            scanned += 1
    assert scanned > 20
    # Every stored secret is an envelope: ciphertext + wrapped data key under a named KEK.
    for doc in db["wallet_manager_secrets"].find():
        sealed = doc["sealed"]
        assert sealed["kek_id"].startswith("kek-") and len(sealed["ciphertext"]) >= 32 + 16
    log = custody["cluster"]["wallet_manager"].log().encode()
    for needle in needles:
        assert needle not in log


def test_reprs_hide_private_keys() -> None:
    key = bytes.fromhex("5a" * 32)
    account = NewAccount("T" * 34, private_key=key)
    derived = hd.derive_key(hd.seed_from_mnemonic(MNEMONIC), 0, 0)
    for obj, secret in ((account, key), (derived, derived.private_key)):
        assert secret.hex() not in repr(obj) and repr(secret) not in repr(obj)


def _swap_sealed(db: Any, a: str, b: str) -> None:
    sa = db["wallet_manager_secrets"].find_one({"_id": a})["sealed"]
    sb = db["wallet_manager_secrets"].find_one({"_id": b})["sealed"]
    db["wallet_manager_secrets"].update_one({"_id": a}, {"$set": {"sealed": sb}})
    db["wallet_manager_secrets"].update_one({"_id": b}, {"$set": {"sealed": sa}})


def test_swapped_or_tampered_ciphertexts_never_sign(custody: dict[str, Any]) -> None:
    c, db = custody["cluster"], custody["db"]
    w1, w2, w3 = custody["imported"]
    ids = [f"{w.wallet_id}/0" for w in (w1, w2, w3)]
    original = {i: db["wallet_manager_secrets"].find_one({"_id": i})["sealed"] for i in ids}
    _swap_sealed(db, ids[0], ids[1])
    tampered = dict(original[ids[2]])
    ct = bytearray(tampered["ciphertext"])
    ct[0] ^= 1
    tampered["ciphertext"] = bytes(ct)
    db["wallet_manager_secrets"].update_one({"_id": ids[2]}, {"$set": {"sealed": tampered}})
    c["wallet_manager"].restart()  # drop the in-memory copies of the sealed records
    wm = Client(c["wallet_manager"].target)
    try:
        for w in (w1, w2, w3):
            with pytest.raises(grpc.RpcError) as err:
                sign_ok(wm, w.wallet_id, w.address)
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION, err.value.details()
            assert error_reason(err.value) == "VAULT_UNAVAILABLE"
    finally:
        for i, sealed in original.items():
            db["wallet_manager_secrets"].update_one({"_id": i}, {"$set": {"sealed": sealed}})
        wm.close()
    c["wallet_manager"].restart()
    wm = Client(c["wallet_manager"].target)
    try:
        for w in (w1, w2, w3):
            sign_ok(wm, w.wallet_id, w.address)
    finally:
        wm.close()


def test_rotation_keeps_every_wallet_usable(custody: dict[str, Any]) -> None:
    c, db = custody["cluster"], custody["db"]
    proc = c["wallet_manager"]
    everyone = [(w.wallet_id, w.address, "") for w in custody["hd"] + custody["imported"]]
    everyone += [(d.wallet_id, d.address, d.address) for d in custody["derived"]]
    before = {d["_id"]: d["sealed"] for d in db["wallet_manager_secrets"].find()}
    (old_kek,) = {s["kek_id"] for s in before.values()}

    def all_sign(wm: Client) -> None:
        for wallet_id, address, via in everyone:
            sign_ok(wm, wallet_id, address, via=via)

    # 1. Every replica learns the new key and still accepts the old one (rolling restart).
    proc.env.update(WALLET_ENCRYPTION_KEY=KEY2, WALLET_ENCRYPTION_KEY_PREVIOUS=KEY)
    proc.restart()
    wm = Client(proc.target)
    all_sign(wm)
    fresh = wm.call(
        "CreateWallet",
        pb.CreateWalletRequest(
            request_id=rid(), wallet=pb.Wallet(owner_id="after-rotation", kind=KIND.KIND_HD, policy=policy())
        ),
    ).wallet
    everyone.append((fresh.wallet_id, fresh.address, ""))
    new_kek = db["wallet_manager_secrets"].find_one({"_id": f"{fresh.wallet_id}/0"})["sealed"]["kek_id"]
    assert new_kek != old_kek

    # 2. Re-wrap everything while the service keeps serving.
    out = admin(c, "rotate-key", WALLET_ENCRYPTION_KEY=KEY2, WALLET_ENCRYPTION_KEY_PREVIOUS=KEY)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"re-wrapped {len(before)}," in out.stdout
    all_sign(wm)
    after = {d["_id"]: d["sealed"] for d in db["wallet_manager_secrets"].find()}
    assert {s["kek_id"] for s in after.values()} == {new_kek}
    for sid, sealed in before.items():  # only the data-key wrapping changed
        assert (
            after[sid]["ciphertext"] == sealed["ciphertext"]
            and after[sid]["wrapped_key"] != sealed["wrapped_key"]
        )
    again = admin(c, "rotate-key", WALLET_ENCRYPTION_KEY=KEY2, WALLET_ENCRYPTION_KEY_PREVIOUS=KEY)
    assert again.returncode == 0 and "re-wrapped 0," in again.stdout
    wm.close()

    # 3. The old key is retired: everything still signs and derives.
    proc.env.pop("WALLET_ENCRYPTION_KEY_PREVIOUS")
    proc.restart()
    wm = Client(proc.target)
    all_sign(wm)
    d = wm.call("DeriveAddress", pb.DeriveAddressRequest(request_id=rid(), owner_id="own1")).derived_address
    assert (
        d.address
        == hd.derive_key(hd.seed_from_mnemonic(MNEMONIC), custody["hd"][1].account_index, d.index).address
    )
    wm.close()

    # 4. A process holding only the retired key opens nothing.
    proc.env.update(WALLET_ENCRYPTION_KEY=KEY)
    proc.restart()
    wm = Client(proc.target)
    try:
        with pytest.raises(grpc.RpcError) as err:
            sign_ok(wm, everyone[0][0], everyone[0][1])
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error_reason(err.value) == "VAULT_UNAVAILABLE"
    finally:
        wm.close()
        proc.env.update(WALLET_ENCRYPTION_KEY=KEY2)
        proc.restart()
