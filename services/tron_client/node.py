"""A small async client for ONE TRON full node's HTTP API (java-tron / TronGrid / any compatible node).

pool.py spreads calls over several of these. Every call has a timeout; the API key goes in
TRON-PRO-API-KEY; failures become `NodeError` (an `Unavailable`, so retryable) carrying the kind of
failure, the Retry-After of a 429 and the node's display URL (never the key).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import orjson
from pydantic import SecretStr

from services.common.errors import Unavailable

JSON = dict[str, Any]

# Failure kinds (also the `kind` label of the per-node error metric).
TRANSPORT = "transport"  # refused, reset, closed without answer, DNS
TIMEOUT = "timeout"
HTTP_5XX = "http_5xx"
HTTP_4XX = "http_4xx"  # e.g. 401/403 for a bad API key, 404 for an unsupported path
RATE_LIMITED = "rate_limited"  # 429
BAD_RESPONSE = "bad_response"  # not a JSON object
DEFAULT_RETRY_AFTER = 1.0
MAX_RETRY_AFTER = 120.0


class NodeError(Unavailable):
    """A node could not answer a call; `kind` says how, `retry_after` (seconds) comes with a 429."""

    def __init__(
        self, message: str, *, kind: str, node: str, path: str, retry_after: float = 0.0, status: int = 0
    ) -> None:
        reason = "NODE_RATE_LIMITED" if kind == RATE_LIMITED else "NODE_UNAVAILABLE"
        if kind == BAD_RESPONSE:
            reason = "NODE_BAD_RESPONSE"
        meta = {"node": node, "path": path, "kind": kind}
        if status:
            meta["http_status"] = str(status)
        super().__init__(message, reason=reason, metadata=meta)
        self.kind = kind
        self.retry_after = retry_after


def display_url(url: str) -> str:
    """The URL without credentials (userinfo, query, fragment), as shown in status, logs and metrics."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def parse_retry_after(value: str | None) -> float:
    """Seconds from a Retry-After header (delta-seconds; HTTP dates fall back to the default)."""
    try:
        seconds = float(value) if value is not None else DEFAULT_RETRY_AFTER
    except ValueError:
        seconds = DEFAULT_RETRY_AFTER
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class NodeClient:
    """HTTP client for one node URL (the pool measures latency and health)."""

    def __init__(self, base_url: str, api_key: SecretStr, timeout_seconds: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.display_url = display_url(self.base_url)
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if api_key.get_secret_value():
            headers["TRON-PRO-API-KEY"] = api_key.get_secret_value()
        self.timeout_seconds = timeout_seconds
        self._headers = headers
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        # Created lazily: a ClientSession must be made inside the running loop.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self._headers, connector=aiohttp.TCPConnector(limit=64, ttl_dns_cache=300)
            )
        return self._session

    async def call(
        self, path: str, body: JSON | None = None, deadline_s: float | None = None, *, array_ok: bool = False
    ) -> Any:
        """POST a java-tron API path (e.g. 'wallet/getnowblock') and return its JSON object (or, with
        array_ok, also an array, as gettransactioninfobyblocknum answers). orjson: block answers are big."""
        url = f"{self.base_url}/{path.lstrip('/')}"
        total = min(deadline_s or self.timeout_seconds, self.timeout_seconds)
        client_timeout = aiohttp.ClientTimeout(total=total, connect=min(total, 3.0))
        node = self.display_url
        try:
            payload = orjson.dumps(body or {})
            async with self._http().post(url, data=payload, timeout=client_timeout) as resp:
                if resp.status == 429:
                    raise NodeError(
                        "TRON node is rate limiting",
                        kind=RATE_LIMITED,
                        node=node,
                        path=path,
                        status=429,
                        retry_after=parse_retry_after(resp.headers.get("Retry-After")),
                    )
                if resp.status >= 400:
                    kind = HTTP_5XX if resp.status >= 500 else HTTP_4XX
                    raise NodeError(
                        f"TRON node answered HTTP {resp.status}",
                        kind=kind,
                        node=node,
                        path=path,
                        status=resp.status,
                    )
                data = orjson.loads(await resp.read())
        except TimeoutError as exc:
            raise NodeError("TRON node timed out", kind=TIMEOUT, node=node, path=path) from exc
        except aiohttp.ClientError as exc:
            raise NodeError(
                f"TRON node unreachable ({exc.__class__.__name__})", kind=TRANSPORT, node=node, path=path
            ) from exc
        except orjson.JSONDecodeError as exc:
            raise NodeError(
                "TRON node sent an unexpected answer", kind=BAD_RESPONSE, node=node, path=path
            ) from exc
        if not (isinstance(data, dict) or (array_ok and isinstance(data, list))):
            raise NodeError("TRON node sent an unexpected answer", kind=BAD_RESPONSE, node=node, path=path)
        return data

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
