"""Shared pieces of the payment-gateway service tests: payers on the devnet (TronWeb for the independent
check, the devnet's signed-JSON broadcast for volume), the webhook receiver in a thread of its own, stubs,
and polling helpers."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

from tronpay.common.v1 import common_pb2
from tronpay.payment_gateway.v1 import payment_gateway_pb2 as pb
from tronpay.payment_gateway.v1 import payment_gateway_pb2_grpc as pb_grpc

from services.common.tron.address import from_base58, private_key_to_address
from services.payment_gateway.signing import merchant_secret
from tests.harness.devnet import Devnet
from tests.payment_gateway.webhook_receiver import WebhookReceiver

REPO = Path(__file__).resolve().parents[2]
PAY_SCRIPT = Path(__file__).parent / "js" / "pay.mjs"
TRX = 1_000_000
USDT = 1_000_000
MASTER_SECRET = "test-master-secret-" + secrets.token_hex(8)
STATE = pb.Payment


def rid() -> str:
    return "t-" + uuid.uuid4().hex


def fresh_address() -> str:
    return private_key_to_address(secrets.token_bytes(32))


def hex_address(address: str) -> str:
    return from_base58(address).hex()


class Payer:
    """A devnet account that pays deposit addresses (signed JSON through the devnet's HTTP API)."""

    def __init__(self, devnet: Devnet, account: dict[str, str]) -> None:
        self.devnet = devnet
        self.account = account
        self.address = account["address"]

    def usdt(self, to: str, amount: int) -> str:
        tx = self.devnet.trc20_transfer_tx(self.account, self.devnet.usdt_hex, hex_address(to), amount)
        return self._send(tx)

    def trx(self, to: str, amount: int) -> str:
        return self._send(self.devnet.transfer_tx(self.account, hex_address(to), amount))

    def _send(self, tx: dict[str, Any]) -> str:
        answer = self.devnet.broadcast(tx)
        assert answer.get("result"), answer
        return str(tx["txID"])


def funded_payer(devnet: Devnet, *, trx: int = 2_000 * TRX, usdt: int = 100_000 * USDT) -> Payer:
    account = devnet.new_account()
    for txid in devnet.faucet(account["address"], trx=trx, usdt=usdt):
        devnet.wait_for_tx(txid, solid=True)
    return Payer(devnet, account)


def tronweb_pay(devnet: Devnet, payer: Payer, payments: Iterable[tuple[str, str, int]]) -> list[str]:
    """Pay (asset, address, amount) triples with TronWeb 6 (npm, unchanged); returns their txids."""
    env = {
        **os.environ,
        "DEVNET_URL": devnet.url,
        "PRIVATE_KEY": payer.account["private_key"],
        "USDT": devnet.usdt,
        "PAYMENTS": json.dumps([list(p) for p in payments]),
    }
    proc = subprocess.run(
        ["node", str(PAY_SCRIPT)], cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return list(json.loads(proc.stdout)["txids"])


class Receiver:
    """The webhook receiver (tests/payment_gateway/webhook_receiver.py) on an event loop in a thread."""

    def __init__(self, merchant: str) -> None:
        self.inner = WebhookReceiver([merchant_secret(MASTER_SECRET, merchant)])
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.inner.start(), self._loop).result(10)

    @property
    def url(self) -> str:
        return self.inner.url

    def events(self, payment_id: str) -> list[tuple[int, str]]:
        """(sequence, type) of every accepted delivery of a payment, in arrival order."""
        out = []
        for r in list(self.inner.received):
            if r.payload.get("payment_id") == payment_id:
                out.append((r.sequence, str(r.payload["type"])))
        return out

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.inner.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


def wait_until(get: Callable[[], Any], done: Callable[[Any], bool], *, timeout: float = 60.0) -> Any:
    """Poll `get` until `done` holds (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        value = get()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"not done after {timeout}s: {value}")
        time.sleep(0.2)


def payment(stub: pb_grpc.PaymentGatewayServiceStub, payment_id: str) -> pb.Payment:
    return stub.GetPayment(pb.GetPaymentRequest(payment_id=payment_id), timeout=10).payment


def wait_state(
    stub: pb_grpc.PaymentGatewayServiceStub, payment_id: str, *states: int, timeout: float = 60.0
) -> pb.Payment:
    return wait_until(lambda: payment(stub, payment_id), lambda p: p.state in states, timeout=timeout)


def create(
    stub: pb_grpc.PaymentGatewayServiceStub,
    merchant: str,
    amount: int,
    *,
    asset: common_pb2.Asset.ValueType,
    ttl: float = 600,
    webhook_url: str = "",
    order_id: str = "",
) -> pb.Payment:
    req = pb.CreatePaymentRequest(
        request_id=rid(),
        merchant_id=merchant,
        order_id=order_id or uuid.uuid4().hex,
        asset=asset,
        amount=amount,
        webhook_url=webhook_url,
    )
    req.ttl.FromTimedelta(timedelta(seconds=ttl))
    return stub.CreatePayment(req, timeout=30).payment
