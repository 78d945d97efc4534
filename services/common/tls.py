"""Mutual TLS inside the mesh: each service, the edge and the operator tools hold a certificate from the
cluster CA, and a service knows its peer by that certificate, never by metadata the peer chose.

Files per identity (cert-manager / kubernetes.io/tls Secret keys): ``<TLS_DIR>/<identity>/tls.crt``,
``tls.key`` and ``ca.crt``; `make up` makes development ones (tools/devpki.py). The identity is the
certificate's common name and DNS SAN (a `Peer` value). Servers require a client certificate from the CA;
clients check that the server's certificate names the service they meant to reach (the target name
override), so a stolen certificate of one service cannot impersonate another.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from services.common.access import Peer

FILES = ("tls.crt", "tls.key", "ca.crt")


class TlsError(Exception):
    """The identity's files are missing or unreadable; the message names TLS_DIR and the file."""


@dataclass(frozen=True, slots=True, repr=False)
class Credentials:
    """One identity's certificate chain, private key and the CA it trusts (repr hides the key)."""

    identity: str
    cert: bytes
    key: bytes
    ca: bytes

    @classmethod
    def load(cls, tls_dir: Path, identity: str) -> Credentials:
        """Read ``<tls_dir>/<identity>/{tls.crt,tls.key,ca.crt}``."""
        base = tls_dir / identity
        data: dict[str, bytes] = {}
        for name in FILES:
            try:
                data[name] = (base / name).read_bytes()
            except OSError as exc:
                raise TlsError(
                    f"TLS_DIR: cannot read {base / name} ({exc.strerror or exc.__class__.__name__}); "
                    "`make up` makes development certificates, Kubernetes mounts the identity's Secret"
                ) from None
        return cls(identity, data["tls.crt"], data["tls.key"], data["ca.crt"])

    def __repr__(self) -> str:
        return f"Credentials(identity={self.identity!r})"

    def server(self) -> grpc.ServerCredentials:
        """Server credentials that require a client certificate from the CA."""
        return grpc.ssl_server_credentials(
            [(self.key, self.cert)], root_certificates=self.ca, require_client_auth=True
        )

    def channel(self) -> grpc.ChannelCredentials:
        """Channel credentials presenting this identity and trusting only the CA."""
        return grpc.ssl_channel_credentials(self.ca, self.key, self.cert)


def target_options(peer: str) -> list[tuple[str, Any]]:
    """Channel options that make the client verify the server's certificate names `peer` (whatever host or
    address it dials: 127.0.0.1 in development, a headless Service's pod IPs in Kubernetes)."""
    return [("grpc.ssl_target_name_override", peer), ("grpc.default_authority", peer)]


def peer_of(ctx: grpc.aio.ServicerContext[Any, Any]) -> Peer | None:
    """The calling peer's certificate identity, or None when the call carries none (a plaintext listener)
    or a name that is no `Peer` (a certificate of this CA for something else)."""
    names = ctx.auth_context().get("x509_common_name") or []
    if len(names) != 1:
        return None
    try:
        return Peer(names[0].decode())
    except ValueError:
        return None
