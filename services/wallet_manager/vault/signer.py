"""The software signing path: open the wallet's sealed key for one call, sign the txID we computed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .ecdsa import require_signer, sign_digest
from .keystore import Keyring, SealedSecret


def sign_transaction(
    keyring: Keyring,
    wallet_id: str,
    sealed_key: SealedSecret | Mapping[str, Any],
    txid: bytes,
    expected_address: str,
) -> bytes:
    """Sign a 32-byte txID with the wallet's sealed private key; returns r||s||v (v in {0,1}).

    The recovered signer is checked against the wallet address so a record holding another key (or a
    corrupted one) can never produce a signature for this wallet.
    """
    rec = sealed_key if isinstance(sealed_key, SealedSecret) else SealedSecret.from_doc(dict(sealed_key))
    with keyring.unsealed(wallet_id, rec, purpose="private_key") as key:
        sig = sign_digest(bytes(key), txid)
    require_signer(txid, sig, expected_address)
    return sig
