"""Devnet-only control plane: /devnet/* endpoints, the block producer, and fault injection.

Nothing here exists on java-tron; the /devnet/ prefix is used by no TRON client. Fault injection is an
aiohttp middleware with its own seeded RNG; it never touches /devnet/* so a test can always turn it off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from aiohttp import web

from devnet import crypto
from devnet.api import DROP_BROADCAST, NODE_KEY, json_response, parse_json_object, read_body
from devnet.node import GenesisAccount, Node

log = logging.getLogger("devnet.control")

CONTROL_MAX_BODY = 64 * 1024
BROADCAST_PATHS = ("/wallet/broadcasttransaction", "/wallet/broadcasthex")


# ---------------------------------------------------------------------------------------------------
# block production


class Producer:
    """Produces a block at every wall-clock slot (timestamp multiple of block_time_ms) unless paused."""

    def __init__(self, node: Node, block_time_ms: int, paused: bool = False) -> None:
        self.node = node
        self.block_time_ms = block_time_ms
        self.paused = paused
        self.produced = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="devnet-producer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        bt = self.block_time_ms
        while True:
            now = time.time() * 1000
            next_slot = (int(now) // bt + 1) * bt
            await asyncio.sleep((next_slot - now) / 1000)
            if self.paused:
                continue
            try:
                self.node.produce_block()
                self.produced += 1
            except Exception:  # keep producing; a failing block must not kill the node
                log.exception("block production failed")

    def mine(self, n: int, spacing_ms: int | None = None) -> list[Any]:
        blocks = self.node.mine(n, spacing_ms)
        self.produced += len(blocks)
        return blocks


PRODUCER_KEY = web.AppKey("producer", Producer)


# ---------------------------------------------------------------------------------------------------
# fault injection


@dataclass
class FaultConfig:
    """Fractions of /wallet* requests to disturb. One draw per request picks at most one of error (5xx),
    rate_limit (429 + Retry-After), hang (connection held, then closed without a response) or slow
    (answered after a delay); broadcasts are additionally dropped (accepted, never pooled) with
    drop_broadcast_rate. `paths`: only requests whose path starts with one of these (empty = all)."""

    error_rate: float = 0.0
    error_status: int = 503
    rate_limit_rate: float = 0.0
    retry_after: int = 1
    hang_rate: float = 0.0
    hang_seconds: float = 1.0
    slow_rate: float = 0.0
    slow_seconds: float = 0.5
    drop_broadcast_rate: float = 0.0
    seed: int | None = None
    paths: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> FaultConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(obj) - known
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}")
        cfg = cls(**obj)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        rates = (
            self.error_rate,
            self.rate_limit_rate,
            self.hang_rate,
            self.slow_rate,
            self.drop_broadcast_rate,
        )
        for r in rates:
            if not isinstance(r, int | float) or isinstance(r, bool) or not 0.0 <= r <= 1.0:
                raise ValueError("rates must be numbers in [0, 1]")
        if self.error_rate + self.rate_limit_rate + self.hang_rate + self.slow_rate > 1.0 + 1e-9:
            raise ValueError("error_rate + rate_limit_rate + hang_rate + slow_rate must be <= 1")
        if not isinstance(self.error_status, int) or not 500 <= self.error_status <= 599:
            raise ValueError("error_status must be a 5xx code")
        for name in ("hang_seconds", "slow_seconds"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or not 0 <= v <= 120:
                raise ValueError(f"{name} must be within [0, 120] seconds")
        if not isinstance(self.retry_after, int) or self.retry_after < 0:
            raise ValueError("retry_after must be a non-negative integer")
        if not isinstance(self.paths, list) or not all(isinstance(p, str) for p in self.paths):
            raise ValueError("paths must be a list of strings")

    @property
    def active(self) -> bool:
        return any(
            (self.error_rate, self.rate_limit_rate, self.hang_rate, self.slow_rate, self.drop_broadcast_rate)
        )


class Faults:
    """Live fault state: config, RNG and counters of what was injected."""

    def __init__(self) -> None:
        self.configure(FaultConfig())

    def configure(self, cfg: FaultConfig) -> None:
        self.config = cfg
        self.rng = random.Random(cfg.seed)
        self.counts = {"requests": 0, "error": 0, "rate_limit": 0, "hang": 0, "slow": 0, "dropped": 0}

    def count(self, key: str) -> None:
        self.counts[key] += 1

    def status(self) -> dict[str, Any]:
        return {"config": asdict(self.config), "counts": dict(self.counts)}


FAULTS_KEY = web.AppKey("faults", Faults)


@web.middleware
async def fault_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    faults = request.app[FAULTS_KEY]
    cfg = faults.config
    path = request.path
    if not cfg.active or path.startswith("/devnet/") or (cfg.paths and not path.startswith(tuple(cfg.paths))):
        return await handler(request)
    faults.count("requests")
    r = faults.rng.random()
    if r < cfg.error_rate:
        faults.count("error")
        return json_response_status({"Error": "devnet fault injection"}, cfg.error_status)
    r -= cfg.error_rate
    if r < cfg.rate_limit_rate:
        faults.count("rate_limit")
        resp = json_response_status({"Error": "Too Many Requests"}, 429)
        resp.headers["Retry-After"] = str(cfg.retry_after)
        return resp
    r -= cfg.rate_limit_rate
    if r < cfg.hang_rate:
        faults.count("hang")
        await asyncio.sleep(cfg.hang_seconds)
        # close without answering; aiohttp then skips writing the placeholder response
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=499)
    r -= cfg.hang_rate
    if r < cfg.slow_rate:
        faults.count("slow")
        await asyncio.sleep(cfg.slow_seconds)
    if cfg.drop_broadcast_rate and path in BROADCAST_PATHS and faults.rng.random() < cfg.drop_broadcast_rate:
        faults.count("dropped")
        request[DROP_BROADCAST] = True
    return await handler(request)


def json_response_status(obj: Any, status: int) -> web.Response:
    resp = json_response(obj)
    resp.set_status(status)
    return resp


# ---------------------------------------------------------------------------------------------------
# accounts document (printed on start, written to --accounts-file, served at /devnet/accounts)


def _account_entry(acc: GenesisAccount) -> dict[str, str]:
    return {
        "address": crypto.to_base58(acc.address),
        "hex": acc.address.hex(),
        "private_key": acc.private_key.hex(),
    }


def accounts_document(node: Node, url: str) -> dict[str, Any]:
    accounts = []
    witness = None
    for acc in node.genesis_accounts():
        entry = _account_entry(acc)
        if acc.is_witness and witness is None:
            witness = entry
        else:
            accounts.append(entry)
    tokens = {name: crypto.to_base58(addr) for name, addr in node.token_addresses().items()}
    return {
        "url": url,
        "chain_id": node.chain_id,
        "witness": witness,
        "accounts": accounts,
        "tokens": tokens,
        "contracts": {name: crypto.to_base58(addr) for name, addr in node.contract_addresses().items()},
        "role_accounts": {name: _account_entry(acc) for name, acc in node.role_accounts().items()},
    }


ACCOUNTS_KEY = web.AppKey("accounts", dict)


# ---------------------------------------------------------------------------------------------------
# /devnet/* handlers


class BadRequest(Exception):
    pass


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        return parse_json_object(await read_body(request, CONTROL_MAX_BODY))
    except Exception as exc:
        raise BadRequest(str(getattr(exc, "message", exc))) from None


def _nonneg_int(obj: dict[str, Any], key: str, default: int = 0) -> int:
    v = obj.get(key, default)
    if isinstance(v, str) and v.isdigit():
        v = int(v)
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise BadRequest(f"{key} must be a non-negative integer")
    return v


def _address(obj: dict[str, Any]) -> bytes:
    s = obj.get("address")
    if not isinstance(s, str):
        raise BadRequest("address is required (base58 'T…' or hex '41…')")
    try:
        return crypto.parse_address(s)
    except crypto.AddressError as exc:
        raise BadRequest(str(exc)) from None


def _status(request: web.Request) -> dict[str, Any]:
    node = request.app[NODE_KEY]
    producer = request.app[PRODUCER_KEY]
    head = node.head_block()
    return {
        "head": node.head_number(),
        "head_id": node.block_id(head).hex(),
        "head_timestamp": int(head.block_header.raw_data.timestamp),
        "solid": node.solid_number(),
        "pending": node.pending_count(),
        "paused": producer.paused,
        "block_time_ms": producer.block_time_ms,
        "faults": request.app[FAULTS_KEY].status(),
    }


async def status(request: web.Request) -> dict[str, Any]:
    return _status(request)


async def accounts(request: web.Request) -> dict[str, Any]:
    return request.app[ACCOUNTS_KEY]


async def faucet(request: web.Request) -> dict[str, Any]:
    obj = await _body(request)
    addr = _address(obj)
    trx, usdt = _nonneg_int(obj, "trx"), _nonneg_int(obj, "usdt")
    if not trx and not usdt:
        raise BadRequest("give trx (sun) and/or usdt (base units)")
    try:
        txids = request.app[NODE_KEY].faucet(addr, trx=trx, usdt=usdt)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    out: dict[str, Any] = {"txids": [t.hex() for t in txids]}
    if obj.get("mine"):
        request.app[PRODUCER_KEY].mine(1)
        out["head"] = request.app[NODE_KEY].head_number()
    return out


async def mine(request: web.Request) -> dict[str, Any]:
    obj = await _body(request)
    n = _nonneg_int(obj, "blocks", 1)
    if n > 10_000:
        raise BadRequest("blocks must be <= 10000")
    # spacing_ms: time travel (each block exactly that long after the previous one)
    spacing = _nonneg_int(obj, "spacing_ms") if obj.get("spacing_ms") is not None else None
    blocks = request.app[PRODUCER_KEY].mine(n, spacing)
    node = request.app[NODE_KEY]
    return {
        "head": node.head_number(),
        "solid": node.solid_number(),
        "blocks": [node.block_id(b).hex() for b in blocks],
    }


async def pause(request: web.Request) -> dict[str, Any]:
    request.app[PRODUCER_KEY].paused = True
    return _status(request)


async def resume(request: web.Request) -> dict[str, Any]:
    request.app[PRODUCER_KEY].paused = False
    return _status(request)


async def params(request: web.Request) -> dict[str, Any]:
    node = request.app[NODE_KEY]
    if request.method == "POST":
        obj = await _body(request)
        values = obj.get("params", obj)
        if not isinstance(values, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in values.values()
        ):
            raise BadRequest("params must map names to integers")
        try:
            node.set_params(values)
        except KeyError as exc:
            raise BadRequest(f"unknown chain parameter {exc}") from None
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
    return {"params": dict(node.chain_parameters())}


async def faults(request: web.Request) -> dict[str, Any]:
    state = request.app[FAULTS_KEY]
    if request.method == "DELETE":
        state.configure(FaultConfig())
    elif request.method == "POST":
        try:
            state.configure(FaultConfig.from_json(await _body(request)))
        except (TypeError, ValueError) as exc:
            raise BadRequest(str(exc)) from None
    return state.status()


async def fork(request: web.Request) -> dict[str, Any]:
    obj = await _body(request)
    k = _nonneg_int(obj, "blocks", 1)
    node = request.app[NODE_KEY]
    try:
        branch = node.fork(k, reinclude=bool(obj.get("reinclude", False)))
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    return {
        "head": node.head_number(),
        "solid": node.solid_number(),
        "blocks": [node.block_id(b).hex() for b in branch],
    }


def _wrap(fn: Any) -> Any:
    async def handler(request: web.Request) -> web.Response:
        try:
            return json_response(await fn(request))
        except BadRequest as exc:
            return json_response_status({"error": str(exc)}, 400)
        except Exception as exc:
            log.exception("control endpoint %s failed", request.path)
            return json_response_status({"error": f"{type(exc).__name__}: {exc}"}, 500)

    return handler


def add_routes(app: web.Application, producer: Producer, accounts_doc: dict[str, Any]) -> None:
    """Register /devnet/* and the fault state (add `fault_middleware` to the app's middlewares)."""
    app[PRODUCER_KEY] = producer
    app[ACCOUNTS_KEY] = accounts_doc
    app[FAULTS_KEY] = Faults()
    r = app.router
    r.add_get("/devnet/status", _wrap(status))
    r.add_get("/devnet/accounts", _wrap(accounts))
    r.add_post("/devnet/faucet", _wrap(faucet))
    r.add_post("/devnet/mine", _wrap(mine))
    r.add_post("/devnet/pause", _wrap(pause))
    r.add_post("/devnet/resume", _wrap(resume))
    r.add_route("GET", "/devnet/params", _wrap(params))
    r.add_route("POST", "/devnet/params", _wrap(params))
    r.add_route("GET", "/devnet/faults", _wrap(faults))
    r.add_route("POST", "/devnet/faults", _wrap(faults))
    r.add_route("DELETE", "/devnet/faults", _wrap(faults))
    r.add_post("/devnet/fork", _wrap(fork))
