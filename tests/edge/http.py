"""A tiny HTTP/1.1 client for edge tests (stdlib only; loopback, bounded timeouts)."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Reply:
    """One HTTP response."""

    status: int
    headers: dict[str, str]
    body: bytes
    request_id: str  # the id Envoy assigned (x-request-id of the response), for its access log

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    @property
    def content_type(self) -> str:
        """The content-type header, lower-cased ('' when absent)."""
        return self.headers.get("content-type", "").lower()


def call(
    base_url: str,
    method: str,
    path: str,
    *,
    body: bytes | str | dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 20.0,
) -> Reply:
    """Send one request and return the whole reply."""
    url = urlsplit(base_url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=timeout)
    hdrs = dict(headers or {})
    data: bytes | None
    if isinstance(body, dict):
        data = json.dumps(body).encode()
        hdrs.setdefault("content-type", "application/json")
    elif isinstance(body, str):
        data = body.encode()
        hdrs.setdefault("content-type", "application/json")
    else:
        data = body
    try:
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        resp_headers = {k.lower(): v for k, v in resp.getheaders()}
        return Reply(resp.status, resp_headers, resp.read(), resp_headers.get("x-request-id", ""))
    finally:
        conn.close()
