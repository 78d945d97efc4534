"""Trezor TRON client over trezorlib 0.20.2 (native TRON messages, firmware core >= 2.11).

trezorlib.tron.from_raw_data() turns our raw_data into TronSignTx + one contract message; the device
rebuilds Transaction.raw from fields 1, 4, 8, 10, 11, 14, 18 only and signs its sha256, returning
v = 27/28. So the signature is verified against sha256 of *our* raw bytes and the wallet's address
before it is used: if the device rebuilt different bytes (Permission_id, call_value, ...), we refuse.
Trezor has no TRON message signing (hardware-wallets.md §3.1); sign_personal_message is unsupported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.common.tron.tx import txid_digest

from .ecdsa import require_signer
from .errors import MalformedTransaction, VaultError

APP_NAME = "tronpay-wallet-manager"


class TrezorError(VaultError):
    reason = "TREZOR_ERROR"

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class TrezorUserRejected(TrezorError):
    def __init__(self) -> None:
        super().__init__("USER_REJECTED", "the request was rejected on the Trezor")


def _translate(e: Exception) -> TrezorError:
    from trezorlib import exceptions, messages
    from trezorlib.transport import TransportException

    if isinstance(e, exceptions.Cancelled):
        return TrezorUserRejected()
    if isinstance(e, exceptions.TrezorFailure):
        if e.code == messages.FailureType.DataError and "path" in (e.message or "").lower():
            return TrezorError("INVALID_PATH", "the Trezor refused the derivation path")
        if e.code == messages.FailureType.PinInvalid:
            return TrezorError("DEVICE_LOCKED", "the Trezor is locked")
        name = e.code.name if e.code is not None else "Failure"
        return TrezorError("DEVICE_FAILURE", f"the Trezor answered {name}")
    if isinstance(e, exceptions.OutdatedFirmwareError):
        return TrezorError("OUTDATED_FIRMWARE", "the Trezor firmware is too old")
    if isinstance(e, TransportException | OSError):
        return TrezorError("DEVICE_UNAVAILABLE", "no Trezor reachable on the configured transport")
    return TrezorError("DEVICE_FAILURE", f"unexpected Trezor error ({type(e).__name__})")


class TrezorTronClient:
    """One trezorlib client + session. Not thread-safe: one call at a time."""

    def __init__(self, path: str = "udp:127.0.0.1:21324") -> None:
        from trezorlib import exceptions
        from trezorlib.client import get_default_client, get_default_session
        from trezorlib.transport import TransportException

        try:
            self._client = get_default_client(APP_NAME, path)
            features = self._client.features
            if (features.major_version, features.minor_version) < (2, 11):
                # TRON messages exist on core >= 2.11 only (not on the Trezor One).
                raise TrezorError(
                    "UNSUPPORTED_FIRMWARE", "TRON signing needs Trezor core firmware 2.11 or later"
                )
            self._session = get_default_session(self._client)
        except TrezorError:
            raise
        except (exceptions.TrezorException, TransportException, OSError) as e:
            raise _translate(e) from None

    def close(self) -> None:
        try:
            self._session.close()
        finally:
            self._client.transport.close()

    def __enter__(self) -> TrezorTronClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from trezorlib import exceptions
        from trezorlib.transport import TransportException

        try:
            return fn(*args, **kwargs)
        except (exceptions.TrezorException, TransportException, OSError) as e:
            raise _translate(e) from None

    def get_address(self, path: Sequence[int], *, show_display: bool = False) -> str:
        from trezorlib import tron

        return str(self._call(tron.get_address, self._session, list(path), show_display=show_display))

    def sign_transaction(self, path: Sequence[int], raw: bytes, expected_address: str) -> bytes:
        """Sign raw_data on the device; returns r||s||v (v 27/28) only if it verifies over sha256(raw)."""
        from trezorlib import tron

        try:
            tx, contract = tron.from_raw_data(bytes(raw))
        except ValueError:
            # More than one contract or a type the Trezor cannot sign (e.g. DelegateResource).
            raise MalformedTransaction("transaction type not supported by the Trezor") from None
        except Exception:
            raise MalformedTransaction("raw_data could not be decoded for the Trezor") from None
        resp = self._call(tron.sign_tx, self._session, tx, contract, list(path))
        sig = bytes(resp.signature)
        if len(sig) != 65:
            raise TrezorError("BAD_RESPONSE", "the Trezor returned a malformed signature")
        require_signer(txid_digest(raw), sig, expected_address)
        return sig

    def account_xpub(self, account: int) -> str:
        from trezorlib import btc

        h = 0x80000000
        node = self._call(btc.get_public_node, self._session, [44 | h, 195 | h, account | h])
        return str(node.xpub)

    def sign_personal_message(self, path: Sequence[int], message: bytes, expected_address: str) -> bytes:
        raise TrezorError("UNSUPPORTED", "Trezor firmware has no TRON message signing")
