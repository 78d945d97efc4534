"""The tests' mesh PKI: one development CA per test run (tools/devpki.py) and mutual-TLS channels to services.

Every service a test starts gets ``TLS_DIR`` = `pki_dir()`. A test talks to a service as one of the cluster's
identities: `channel(target, "wallet-manager", identity="usdt-manager")`, or as the edge acting for a token's
roles (the default: identity "edge", roles admin), which is how a request arrives from Envoy.
Extra identities for negative tests: ``intruder`` (our CA, a name that is no peer), ``recorder`` (the edge
tests' fake upstream: a certificate naming all six services), and `foreign_dir()` (another CA).
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import grpc

from services.common.access import ROLES_KEY, SUBJECT_KEY, TENANT_KEY
from services.common.settings import ServiceName
from services.common.tls import Credentials, target_options
from tools import devpki

SERVICE_PEERS = tuple(s.dashed for s in ServiceName)
TEST_SUBJECT = "test-admin"


def _make(extra: dict[str, tuple[str, ...]]) -> Path:
    directory = Path(tempfile.mkdtemp(prefix="tronpay-pki-"))
    atexit.register(shutil.rmtree, directory, True)
    devpki.ensure(directory, (*devpki.IDENTITIES, *extra), extra)
    return directory


@functools.cache
def pki_dir() -> Path:
    """This run's CA and every identity's files (made on first use, removed at exit)."""
    return _make({"intruder": (), "recorder": SERVICE_PEERS})


@functools.cache
def foreign_dir() -> Path:
    """Another CA with the same identity names: what a certificate from outside the cluster looks like."""
    return _make({})


def credentials(identity: str, directory: Path | None = None) -> Credentials:
    """An identity's certificate, key and CA."""
    return Credentials.load(directory or pki_dir(), identity)


class _Identity(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Adds the end-user identity metadata the edge (or a calling service) would forward."""

    def __init__(self, metadata: list[tuple[str, str]]) -> None:
        self._metadata = metadata

    def _details(self, details: Any) -> Any:
        return details._replace(metadata=[*(details.metadata or ()), *self._metadata])

    def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)


def identity_metadata(
    roles: Iterable[str] = ("admin",), subject: str = TEST_SUBJECT, tenant: str = ""
) -> list[tuple[str, str]]:
    """Identity metadata as the edge sets it from a token."""
    out = [(SUBJECT_KEY, subject)] if subject else []
    if roles:
        out.append((ROLES_KEY, ",".join(roles)))
    if tenant:
        out.append((TENANT_KEY, tenant))
    return out


def channel(
    target: str,
    service: str,
    *,
    identity: str = "edge",
    roles: Iterable[str] = ("admin",),
    subject: str = TEST_SUBJECT,
    tenant: str = "",
    directory: Path | None = None,
) -> grpc.Channel:
    """A sync mutual-TLS channel to `service` (dashed name) at `target`, presenting `identity`'s certificate
    and sending the end-user identity (roles/subject/tenant; empty ones are left out)."""
    creds = credentials(identity, directory)
    ch = grpc.secure_channel(target, creds.channel(), options=target_options(service))
    md = identity_metadata(roles, subject, tenant)
    return grpc.intercept_channel(ch, _Identity(md)) if md else ch


class _AioIdentity(grpc.aio.UnaryUnaryClientInterceptor, grpc.aio.UnaryStreamClientInterceptor):
    """`_Identity` for asyncio channels."""

    def __init__(self, metadata: list[tuple[str, str]]) -> None:
        self._metadata = metadata

    def _details(self, d: Any) -> Any:
        return grpc.aio.ClientCallDetails(
            d.method, d.timeout, grpc.aio.Metadata(*(d.metadata or ()), *self._metadata), d.credentials,
            d.wait_for_ready,
        )  # fmt: skip

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


def aio_channel(
    target: str,
    service: str,
    *,
    identity: str = "edge",
    roles: Iterable[str] = ("admin",),
    subject: str = TEST_SUBJECT,
    tenant: str = "",
    directory: Path | None = None,
) -> grpc.aio.Channel:
    """`channel` for asyncio."""
    creds = credentials(identity, directory)
    md = identity_metadata(roles, subject, tenant)
    interceptors = [_AioIdentity(md)] if md else None
    return grpc.aio.secure_channel(
        target, creds.channel(), options=target_options(service), interceptors=interceptors
    )
