"""TIP-191 v2 personal messages: TronWeb published vectors, a live cross-check with TronWeb 6.5.1, and
TronLink ownership proofs (challenge, owner binding, signature, expiry)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from services.common.tron.address import private_key_to_address
from services.wallet_manager.vault import hd
from services.wallet_manager.vault.errors import VaultError
from services.wallet_manager.vault.messages import (
    hash_message_v1,
    hash_message_v2,
    recover_message_v2,
    sign_message_v2,
    verify_message_v2,
)
from services.wallet_manager.vault.tronlink import new_challenge, verify_proof

from .txs import ABANDON

REPO = Path(__file__).resolve().parents[2]
ONE = (1).to_bytes(32, "big")
ONE_ADDR = "TMVQGm1qAQYVdetCeGRRkTWYYrLXuHK2HC"


def test_tronweb_published_vector() -> None:
    # tronweb test/testcases/src/sign-message.ts, private key 1.
    assert private_key_to_address(ONE) == ONE_ADDR
    assert hash_message_v2("hello world").hex() == (
        "cf02daeb2bea196ed5692322a66ed50080ce74ff8cb711199f1b04f3c13bc10d"
    )
    sig = sign_message_v2(ONE, "hello world")
    assert "0x" + sig.hex() == (
        "0x0dc0b53d525e0103a6013061cf18e60cf158809149f2b8994a545af65a7004cb1eeaff560e801ab51b28df5d42549aa0"
        "24c2aa7e9d34de1e01294b9afb5e6c7e1c"
    )
    raw = bytes.fromhex("47173285a8d7341e5e972fc677286384f802f8ef42a5ec5f03bbfa254cb01fad")
    assert hash_message_v2(raw).hex() == "66733cf31ee3f133db9561efdca3d65ba930bdf57fb1af3b6cc0ba4966ecc882"
    assert recover_message_v2("hello world", sig) == ONE_ADDR


def test_v1_digest_vector_and_32_byte_equivalence() -> None:
    assert hash_message_v1("0x48656c6c6f").hex() == (
        "5d1176f4f111f3be684532a3d1ca14a29d1d93545fa1f7dd8ea43c6e6126be0a"
    )
    m = bytes(range(32))
    assert hash_message_v1(m.hex()) == hash_message_v2(m)


def test_verify_refuses_wrong_message_address_and_garbage() -> None:
    sig = sign_message_v2(ONE, "challenge-123")
    assert verify_message_v2("challenge-123", sig, ONE_ADDR)
    assert verify_message_v2("challenge-123", "0x" + sig.hex(), ONE_ADDR)
    ledger_style = sig[:64] + bytes([sig[64] - 27])  # Ledger returns v in {0,1}
    assert verify_message_v2("challenge-123", ledger_style, ONE_ADDR)
    assert not verify_message_v2("challenge-124", sig, ONE_ADDR)
    assert not verify_message_v2("challenge-123", sig, "TUEZSdKsoDHQMeZwihtdoBiN46zxhGWYdH")
    assert not verify_message_v2("challenge-123", sig[:64] + b"\x05", ONE_ADDR)
    assert not verify_message_v2("challenge-123", "0xzz", ONE_ADDR)
    assert not verify_message_v2("challenge-123", sig[:40], ONE_ADDR)


CASES: list[tuple[str | bytes, bool]] = [
    ("hello world", False),
    ("TronLink ownership proof\nnonce: 8f3a\nexpires: 2026-11-26T00:00:00Z", False),
    ("héllo ✓ 🚀", False),
    ("0x1234", False),  # hashed as text, not as bytes
    ("", False),
    ("x" * 300, False),
    (bytes.fromhex("47173285a8d7341e5e972fc677286384f802f8ef42a5ec5f03bbfa254cb01fad"), True),
    (bytes(range(256)), True),
]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_cross_check_with_tronweb() -> None:
    key = hd.derive_key(hd.seed_from_mnemonic(ABANDON), 0, 7)
    ours = [sign_message_v2(key.private_key, m) for m, _ in CASES]
    item = lambda m, b: {"message": m.hex() if b else m, "bytes": b}  # noqa: E731
    payload = {
        "sign": [{**item(m, b), "privateKey": key.private_key.hex()} for m, b in CASES],
        "verify": [{**item(m, b), "signature": "0x" + s.hex()} for (m, b), s in zip(CASES, ours, strict=True)]
        + [{**item("tampered", False), "signature": "0x" + ours[0].hex()}],
    }
    proc = subprocess.run(
        ["node", str(REPO / "tests/wallet_manager/js/messages.mjs")],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        env={**os.environ},
        check=True,
    )
    out = json.loads(proc.stdout)
    # TronWeb signs -> identical bytes (RFC 6979), and Python recovers the same signer.
    assert out["signatures"] == ["0x" + s.hex() for s in ours]
    for (m, _), sig in zip(CASES, out["signatures"], strict=True):
        assert recover_message_v2(m, sig) == key.address
    # Python signs -> TronWeb verifyMessageV2 recovers our address; a tampered message does not.
    assert out["addresses"][: len(CASES)] == [key.address] * len(CASES)
    assert out["addresses"][-1] != key.address


def test_tronlink_proof() -> None:
    key = hd.derive_key(hd.seed_from_mnemonic(ABANDON), 0, 4)
    now = time.time()
    ch = new_challenge(
        key.address, owner="alice", cluster="acme-prod", chain="tron-mainnet", ttl_seconds=60, now=now
    )
    assert key.address in ch.message and ch.nonce in ch.message and len(ch.nonce) == 32
    # The user sees whom the address is proven to, where: owner, cluster and chain are in the signed text.
    assert {"owner: alice", "cluster: acme-prod", "chain: tron-mainnet"} <= set(ch.message.splitlines())
    sig = sign_message_v2(key.private_key, ch.message)
    assert verify_proof(ch, "0x" + sig.hex(), owner="alice", now=now + 1).ok
    assert verify_proof(ch, sig, owner="alice", now=now + 61).reason == "CHALLENGE_EXPIRED"
    # The same valid signature, submitted for another owner (or none), is refused.
    assert verify_proof(ch, sig, owner="mallory", now=now).reason == "WRONG_OWNER"
    assert verify_proof(ch, sig, owner="", now=now).reason == "WRONG_OWNER"
    other = hd.derive_key(hd.seed_from_mnemonic(ABANDON), 0, 5)
    wrong = sign_message_v2(other.private_key, ch.message)
    assert verify_proof(ch, wrong, owner="alice", now=now).reason == "WRONG_SIGNER"
    assert verify_proof(ch, "0x1234", owner="alice", now=now).reason == "BAD_SIGNATURE"
    # A proof for one challenge does not verify against another (different nonce).
    ch2 = new_challenge(key.address, owner="alice", cluster="acme-prod", chain="tron-mainnet", now=now)
    assert ch2.nonce != ch.nonce and verify_proof(ch2, sig, owner="alice", now=now).reason == "WRONG_SIGNER"
    with pytest.raises(VaultError):
        new_challenge("Tnot-an-address", owner="alice", cluster="acme-prod", chain="tron-mainnet")
