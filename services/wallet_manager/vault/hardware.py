"""The seam the servicer uses for hardware wallets: LedgerTronClient and TrezorTronClient both fit it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class HardwareSigner(Protocol):
    def get_address(self, path: Sequence[int]) -> object:
        """Ledger returns LedgerAddress (.address), Trezor a base58 string."""
        ...

    def sign_transaction(self, path: Sequence[int], raw: bytes, expected_address: str) -> bytes:
        """65-byte r||s||v over sha256(raw), already verified to recover to expected_address."""
        ...

    def sign_personal_message(self, path: Sequence[int], message: bytes, expected_address: str) -> bytes: ...

    def account_xpub(self, account: int) -> str: ...

    def close(self) -> None: ...
