"""Wiring of wallet-manager: its servicers and the indexes its collections need."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from services.common import idempotency
from services.common.contract import registrations
from services.common.mongo import IndexSpec
from services.common.server import Registration, Runtime
from services.wallet_manager import store as store_mod
from services.wallet_manager.chain import Chain
from services.wallet_manager.devices import Devices
from services.wallet_manager.keys import KeyVault
from services.wallet_manager.servicer import WalletManagerServicer
from services.wallet_manager.signing import Signing
from services.wallet_manager.wallets import Wallets

INDEXES: Sequence[IndexSpec] = (*idempotency.INDEXES, *store_mod.INDEXES)


async def build(rt: Runtime) -> list[Registration]:
    """The servicers of every gRPC service in tronpay.wallet_manager.v1."""
    store = store_mod.Store(rt.db)
    keys = KeyVault(rt.settings, store)
    devices = Devices(rt.settings)
    chain = Chain(rt.settings, rt.clients)
    wallets = Wallets(rt.settings, store, keys, devices, chain)
    signing = Signing(rt.settings, store, keys, devices)
    # Derive the KEKs (scrypt) and create the master seed before the first request needs them.
    warm = asyncio.create_task(keys.warm_up())

    async def stop_warm_up() -> None:
        warm.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await warm

    rt.on_stop(stop_warm_up)
    servicer = WalletManagerServicer(rt, store, wallets, signing)
    # The class decorator fills the generated ABC's methods at runtime, which mypy cannot see.
    return registrations("wallet_manager", [servicer])  # type: ignore[abstract]
