"""Envelope encryption: round trip, tamper and swap detection, rotation without downtime, retirement, the
scrypt parameters each record states (weaker ones refused, legacy ones upgraded by a re-wrap), and the
integrity tags made under a KEK."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import pytest

from services.wallet_manager.vault.errors import SecretUnavailable, UnknownKek, VaultError
from services.wallet_manager.vault.keystore import (
    LEGACY_SCRYPT_N,
    MIN_SCRYPT_N,
    KdfParams,
    Kek,
    Keyring,
    SealedSecret,
)


@pytest.fixture(scope="module")
def params() -> KdfParams:
    return KdfParams.generate()


@pytest.fixture(scope="module")
def kek(params: KdfParams) -> Kek:
    return Kek.derive("correct horse battery staple", params)


def test_round_trip_and_doc_shape(kek: Kek) -> None:
    ring = Keyring(kek)
    secret = os.urandom(32)
    rec = ring.seal("w-1", secret)
    doc = rec.to_doc()
    assert set(doc) == {
        "format", "alg", "wallet_id", "purpose", "kek_id", "wrap_nonce", "wrapped_key", "nonce", "ciphertext",
        "kdf",
    }  # fmt: skip
    assert doc["kdf"] == kek.params.to_doc() and doc["kdf"]["n"] >= MIN_SCRYPT_N
    assert all(isinstance(v, (str, bytes)) for k, v in doc.items() if k != "kdf")
    assert secret not in b"".join(v for v in doc.values() if isinstance(v, bytes))
    assert secret.hex() not in repr(rec) + repr(ring) + repr(kek)
    assert len(doc["ciphertext"]) == 32 + 16 and len(doc["nonce"]) == 12
    assert bytes(ring.open("w-1", doc)) == secret
    with ring.unsealed("w-1", rec) as plain:
        assert bytes(plain) == secret
        held = plain
    assert bytes(held) == bytes(32)  # wiped after the with-block


def test_same_secret_seals_differently(kek: Kek) -> None:
    ring = Keyring(kek)
    r1, r2 = ring.seal("w", b"k" * 32), ring.seal("w", b"k" * 32)
    assert r1.ciphertext != r2.ciphertext and r1.wrapped_key != r2.wrapped_key


@pytest.mark.parametrize("field", ["ciphertext", "nonce", "wrapped_key", "wrap_nonce"])
def test_any_flipped_bit_fails_without_revealing(kek: Kek, field: str) -> None:
    ring = Keyring(kek)
    secret = os.urandom(32)
    rec = ring.seal("w-1", secret)
    value = bytearray(getattr(rec, field))
    value[len(value) // 2] ^= 0x01
    tampered: dict[str, Any] = {field: bytes(value)}
    with pytest.raises(SecretUnavailable) as err:
        ring.open("w-1", replace(rec, **tampered))
    assert str(err.value) == "sealed secret failed authentication"
    assert err.value.__cause__ is None  # the InvalidTag chain is suppressed
    assert secret.hex() not in repr(err.value)


def test_swapped_between_wallets_fails(kek: Kek) -> None:
    ring = Keyring(kek)
    a, b = ring.seal("wallet-a", os.urandom(32)), ring.seal("wallet-b", os.urandom(32))
    # A whole record copied onto wallet b, even with its wallet_id field relabelled.
    for rec in (a, replace(a, wallet_id="wallet-b")):
        with pytest.raises(SecretUnavailable):
            ring.open("wallet-b", rec)
    # Mixing b's wrapped key with a's ciphertext.
    with pytest.raises(SecretUnavailable):
        ring.open("wallet-b", replace(b, ciphertext=a.ciphertext, nonce=a.nonce))
    # Relabelled purpose (a seed record presented as a private key).
    seed = ring.seal("wallet-a", os.urandom(64), purpose="master_seed")
    with pytest.raises(SecretUnavailable):
        ring.open("wallet-a", seed, purpose="private_key")


def test_wrong_passphrase_and_relabelled_kek_id(params: KdfParams, kek: Kek) -> None:
    rec = Keyring(kek).seal("w", b"s" * 32)
    other = Kek.derive("another passphrase", params)
    assert other.kek_id != kek.kek_id
    with pytest.raises(UnknownKek):
        Keyring(other).open("w", rec)
    # Claiming the record was wrapped by the other KEK does not help.
    with pytest.raises(SecretUnavailable):
        Keyring(other).open("w", replace(rec, kek_id=other.kek_id))


def test_kek_is_deterministic_per_salt_and_validates(params: KdfParams) -> None:
    assert Kek.derive("x" * 20, params).kek_id == Kek.derive("x" * 20, params).kek_id
    assert Kek.derive("x" * 20, KdfParams.generate()).kek_id != Kek.derive("x" * 20, params).kek_id
    assert KdfParams.from_doc(params.to_doc()) == params
    with pytest.raises(VaultError):
        Kek.derive("", params)
    with pytest.raises(VaultError):
        SealedSecret.from_doc({"format": "nope"})


def test_rotation_rewraps_everything_then_retires_old(params: KdfParams, kek: Kek) -> None:
    old_ring = Keyring(kek)
    secrets = {f"w-{i}": os.urandom(32) for i in range(20)}
    db = {wid: old_ring.seal(wid, s).to_doc() for wid, s in secrets.items()}

    # Step 1: deploy with the new KEK active and the old one accepted; nothing is unreadable.
    new = Kek.derive("the new WALLET_ENCRYPTION_KEY", params)
    ring = Keyring(new, kek)
    assert ring.active_id == new.kek_id and set(ring.kek_ids) == {new.kek_id, kek.kek_id}
    db["w-new"] = ring.seal("w-new", b"n" * 32).to_doc()
    secrets["w-new"] = b"n" * 32
    assert db["w-new"]["kek_id"] == new.kek_id
    for wid, doc in db.items():
        assert bytes(ring.open(wid, doc)) == secrets[wid]

    # Step 2: re-wrap every record still on the old KEK; ciphertexts are untouched.
    rewrapped = 0
    for wid, doc in list(db.items()):
        if ring.needs_rewrap(doc):
            fresh = ring.rewrap(wid, doc).to_doc()
            assert fresh["ciphertext"] == doc["ciphertext"] and fresh["kek_id"] == new.kek_id
            db[wid] = fresh
            rewrapped += 1
    assert rewrapped == 20 and not any(ring.needs_rewrap(d) for d in db.values())

    # Step 3: retire the old KEK; everything still opens, and an old-KEK copy no longer does.
    stale = old_ring.seal("w-0", secrets["w-0"]).to_doc()
    ring.retire(kek.kek_id)
    for wid, doc in db.items():
        assert bytes(ring.open(wid, doc)) == secrets[wid]
    with pytest.raises(UnknownKek):
        ring.open("w-0", stale)
    with pytest.raises(VaultError):
        ring.retire(new.kek_id)
    # A process started with only the new key reads the rotated database.
    assert (
        bytes(Keyring(Kek.derive("the new WALLET_ENCRYPTION_KEY", params)).open("w-5", db["w-5"]))
        == (secrets["w-5"])
    )


def test_rewrap_refuses_a_tampered_record(kek: Kek, params: KdfParams) -> None:
    rec = Keyring(kek).seal("w", b"s" * 32)
    ring = Keyring(Kek.derive("new", params), kek)
    bad = replace(rec, ciphertext=bytes(len(rec.ciphertext)))
    with pytest.raises(SecretUnavailable):
        ring.rewrap("w", bad)


@pytest.mark.parametrize(
    "change",
    [
        {"n": MIN_SCRYPT_N // 2},
        {"n": LEGACY_SCRYPT_N},
        {"r": 1},
        {"p": 0},
        {"n": MIN_SCRYPT_N + 1},  # not a power of two
        {"n": 2**30},  # a memory bomb
        {"salt": b"s"},
    ],
)
def test_stored_kdf_parameters_below_the_minimum_are_refused(
    params: KdfParams, change: dict[str, Any]
) -> None:
    doc = {**params.to_doc(), **change}
    with pytest.raises(VaultError, match="KDF parameters refused"):
        KdfParams.from_doc(doc)
    rec = {**Keyring(Kek.derive("k", params)).seal("w", b"s" * 32).to_doc(), "kdf": doc}
    with pytest.raises(VaultError, match="KDF parameters refused"):  # a record claiming them never opens
        SealedSecret.from_doc(rec)


def test_a_record_must_state_its_keks_parameters(params: KdfParams, kek: Kek) -> None:
    ring = Keyring(kek)
    doc = ring.seal("w", b"s" * 32).to_doc()
    other = KdfParams.generate()  # as strong, but not what its KEK was derived with
    with pytest.raises(SecretUnavailable):
        ring.open("w", {**doc, "kdf": other.to_doc()})


def test_legacy_records_open_and_a_rewrap_upgrades_them(params: KdfParams) -> None:
    legacy_params = KdfParams.generate(n=LEGACY_SCRYPT_N)
    with pytest.raises(VaultError):
        KdfParams.from_doc(legacy_params.to_doc())  # never good enough for new records
    assert KdfParams.from_doc(legacy_params.to_doc(), min_n=LEGACY_SCRYPT_N) == legacy_params
    legacy = Kek.derive("the key", legacy_params)
    old = Keyring(legacy).seal("w", b"s" * 32).to_doc()
    old.pop("kdf")  # as sealed before records stated their parameters
    ring = Keyring(Kek.derive("the key", params), legacy)
    assert bytes(ring.open("w", old)) == b"s" * 32 and ring.needs_rewrap(old)
    new = ring.rewrap("w", old).to_doc()
    assert new["kdf"] == params.to_doc() and new["kek_id"] == ring.active_id
    assert bytes(Keyring(Kek.derive("the key", params)).open("w", new)) == b"s" * 32
    # A record without stated parameters under a KEK weaker than the legacy cost does not open.
    cheap = Kek.derive("the key", KdfParams.generate(n=2**10))
    weak = Keyring(cheap).seal("w", b"s" * 32).to_doc()
    weak.pop("kdf")
    with pytest.raises(SecretUnavailable):
        Keyring(cheap).open("w", weak)


def test_integrity_tags(params: KdfParams, kek: Kek) -> None:
    ring = Keyring(kek)
    stored = ring.tag("policy", "wal_1", b"\x01\x02")
    assert stored["kek_id"] == kek.kek_id and len(stored["tag"]) == 32
    assert ring.check_tag(stored, "policy", "wal_1", b"\x01\x02")
    assert not ring.check_tag(stored, "policy", "wal_2", b"\x01\x02")  # moved to another wallet
    assert not ring.check_tag(stored, "policy", "wal_1", b"\x01\x03")  # edited
    assert not ring.check_tag(stored, "policy", "wal_1\x00", b"\x02")  # parts are framed, not concatenated
    for bad in (None, {}, {"kek_id": kek.kek_id}, {"kek_id": kek.kek_id, "tag": "ab"}, "x"):
        assert not ring.check_tag(bad, "policy", "wal_1", b"\x01\x02")
    # Rotation: a tag under the previous KEK still checks while it is accepted, and never under a stranger.
    new = Keyring(Kek.derive("the new WALLET_ENCRYPTION_KEY", params), kek)
    assert new.check_tag(stored, "policy", "wal_1", b"\x01\x02")
    assert new.tag("x")["kek_id"] == new.active_id
    assert not Keyring(Kek.derive("another key", params)).check_tag(stored, "policy", "wal_1", b"\x01\x02")
