"""A merchant's webhook endpoint on 127.0.0.1: verifies each request's signature with the merchant's secrets
(signing.verify_signature, as a receiver would) and records what it accepted, by event id and sequence."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from services.payment_gateway.signing import HEADER, SignatureError, verify_signature
from tests.harness.net import free_port


@dataclass(frozen=True)
class Received:
    """One accepted request."""

    event_id: str
    sequence: int
    delivery_id: str
    signature: str
    body: bytes
    payload: dict[str, object]
    arrived: float  # time.time()


class WebhookReceiver:
    """Answers `fail_next` requests with `fail_status`, then 200. A request whose signature does not verify
    (401) or whose event id header differs from its body's (400) is counted in `rejected`, never received."""

    def __init__(self, secrets: Sequence[str], window_seconds: float = 300) -> None:
        self.secrets = list(secrets)
        self.window_seconds = window_seconds
        self.fail_next = 0
        self.fail_status = 500
        self.gate: asyncio.Event | None = None  # when set, every request waits for it before being answered
        self.requests = 0  # every request that arrived, answered any way
        self.rejected = 0
        self.received: list[Received] = []
        self.port = free_port()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def counts(self) -> Counter[tuple[str, int]]:
        """Accepted requests per (event id, sequence)."""
        return Counter((r.event_id, r.sequence) for r in self.received)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = await request.read()
        if self.gate is not None:
            await self.gate.wait()
        signature = request.headers.get(HEADER, "")
        try:
            verify_signature(signature, body, self.secrets, time.time(), self.window_seconds)
        except SignatureError:
            self.rejected += 1
            return web.Response(status=401)
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.Response(status=self.fail_status)
        payload = json.loads(body)
        if request.headers.get("X-Tronpay-Event-Id") != payload["id"]:
            self.rejected += 1
            return web.Response(status=400)
        self.received.append(
            Received(
                payload["id"],
                payload["sequence"],
                request.headers["X-Tronpay-Delivery-Id"],
                signature,
                body,
                payload,
                time.time(),
            )
        )
        return web.Response(text="ok")
