"""Ledger and Trezor access for device wallets, switched by HARDWARE_WALLET_ENABLED / LEDGER_ENABLED /
TREZOR_ENABLED. The vault clients are synchronous and drive one device: each call opens the transport,
runs in a worker thread under a per-device lock, and closes it. Device refusals become
FAILED_PRECONDITION with the client's stable reason (USER_REJECTED, DATA_NOT_ALLOWED, ...)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from services.common.errors import FailedPrecondition
from services.wallet_manager.settings import WalletManagerSettings
from services.wallet_manager.vault import hd, ledger, trezor
from services.wallet_manager.vault.errors import MalformedTransaction, SignatureMismatch, VaultError

T = TypeVar("T")
LEDGER = "LEDGER"
TREZOR = "TREZOR"


@dataclass(frozen=True)
class DeviceAccount:
    address: str
    public_key: bytes  # 33-byte compressed, empty when the device does not say
    xpub: str


def _refused(vendor: str, exc: VaultError) -> FailedPrecondition:
    if isinstance(exc, SignatureMismatch):
        return FailedPrecondition(
            f"the {vendor.title()} returned a signature that does not verify",
            reason="DEVICE_SIGNATURE_MISMATCH",
        )
    if isinstance(exc, MalformedTransaction):
        return FailedPrecondition(
            f"the {vendor.title()} cannot sign this transaction: {exc}",
            reason="DEVICE_UNSUPPORTED_TRANSACTION",
        )
    return FailedPrecondition(str(exc), reason=exc.reason, metadata={"device": vendor})


class Devices:
    def __init__(self, settings: WalletManagerSettings) -> None:
        self._settings = settings
        self._locks = {LEDGER: asyncio.Lock(), TREZOR: asyncio.Lock()}

    def require_enabled(self, vendor: str) -> None:
        s = self._settings
        flag = s.LEDGER_ENABLED if vendor == LEDGER else s.TREZOR_ENABLED
        if not (s.HARDWARE_WALLET_ENABLED and flag):
            raise FailedPrecondition(
                f"{vendor.title()} wallets are disabled (HARDWARE_WALLET_ENABLED, {vendor}_ENABLED)",
                reason="HARDWARE_WALLET_DISABLED",
                metadata={"device": vendor},
            )

    def _ledger(self) -> ledger.LedgerTronClient:
        addr = self._settings.LEDGER_ADDRESS
        if addr:
            host, _, port = addr.rpartition(":")
            return ledger.LedgerTronClient(ledger.open_tcp(host or "127.0.0.1", int(port)))
        return ledger.LedgerTronClient(ledger.open_usb())

    def _trezor(self) -> trezor.TrezorTronClient:
        path: Any = self._settings.TREZOR_PATH or None  # None: trezorlib picks the first device
        return trezor.TrezorTronClient(path)

    async def _run(self, vendor: str, fn: Callable[[Any], T]) -> T:
        self.require_enabled(vendor)

        def call() -> T:
            client: Any = self._ledger() if vendor == LEDGER else self._trezor()
            with client:
                return fn(client)

        async with self._locks[vendor]:
            try:
                return await asyncio.to_thread(call)
            except VaultError as exc:
                raise _refused(vendor, exc) from None
            except (OSError, ValueError):
                raise FailedPrecondition(
                    f"the {vendor.title()} is not reachable", reason="DEVICE_UNAVAILABLE"
                ) from None

    async def account(self, vendor: str, account: int) -> DeviceAccount:
        """Primary address (m/44'/195'/account'/0/0), its public key and the account xpub."""
        path = hd.path_indices(account, 0)

        def read(client: Any) -> DeviceAccount:
            xpub = client.account_xpub(account)
            if vendor == LEDGER:
                a = client.get_address(path)
                return DeviceAccount(a.address, hd.compress_pubkey(a.public_key), xpub)
            address = client.get_address(path)
            watch = hd.WatchOnlyAccount(xpub)
            pub = hd.compress_pubkey(watch.public_key(0)) if watch.address(0) == address else b""
            return DeviceAccount(address, pub, xpub)

        return await self._run(vendor, read)

    async def sign_transaction(
        self, vendor: str, account: int, index: int, raw: bytes, address: str
    ) -> bytes:
        path = hd.path_indices(account, index)
        sig = await self._run(vendor, lambda c: c.sign_transaction(path, raw, address))
        return bytes(sig)

    async def sign_message(
        self, vendor: str, account: int, index: int, message: bytes, address: str
    ) -> bytes:
        path = hd.path_indices(account, index)
        sig = await self._run(vendor, lambda c: c.sign_personal_message(path, message, address))
        return bytes(sig)
