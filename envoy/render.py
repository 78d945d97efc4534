"""Render the Envoy edge configuration (JSON, which Envoy reads as YAML) from the environment.

The edge is one listener that serves two kinds of clients on the same port:

* REST clients: ``/api/v1/...`` JSON requests are turned into gRPC by ``grpc_json_transcoder``;
* other clusters' gRPC clients: ``application/grpc`` requests (HTTP/2, prior knowledge) pass the
  transcoder untouched.

Routing happens on the *gRPC* path ``/<package>.<Service>/<Method>`` for both kinds: the transcoder runs
with ``match_incoming_request_route: false``, rewrites ``:path`` to the gRPC method and clears the route
cache, so the router picks the route of the method it resolved. The routes are generated from the
descriptor set: one exact route per RPC that has a ``google.api.http`` binding (the public contract).
Internal RPCs (no HTTP binding: signing, transaction building, transfer streams) therefore get no route
at the edge, neither over REST nor over native gRPC; the services reach each other directly.

Identity, authorisation and rate limits (the filters, in order):

1. ``header_mutation`` drops a client's copies of the identity metadata (services.common.access.IDENTITY_KEYS)
   and of the transcoder's ``x-envoy-original-path``/``-method``.
2. ``jwt_authn`` verifies the bearer JWT (``Authorization: Bearer`` only, never ``?access_token=``) on every
   path: issuer, audience, expiry (required), ES/RS/PS signature against the JWKS (a local file, or the
   identity provider's URL with its own ``jwks`` cluster). Only ``GET /api/v1/tron/network/status`` (health
   checks) passes without one; a token sent there is still verified. The rule is on ``prefix: /`` with that
   one exact, case-sensitive path carved out. Any failure is 401 ``{"code": 16, ...}`` (gRPC
   UNAUTHENTICATED), including the audience mismatch Envoy itself answers with 403. The token never reaches a
   service (``forward: false``); ``sub`` becomes ``x-tronpay-subject``, ``tenant`` ``x-tronpay-tenant``.
3. A Lua filter sets ``x-tronpay-roles`` to the token's ``roles`` joined with commas (known role names only),
   from the same normalised list RBAC matches. The claim is a JSON array of role names, or one
   space-delimited string (``normalize_payload_in_metadata``); claim_to_headers would pass an array as base64
   JSON, hence the filter.
4. ``buffer`` (413 over ``EDGE_MAX_REQUEST_BYTES``), the strict-JSON check, the transcoder and the check's
   guard. The transcoder drops unknown JSON fields silently (envoyproxy/envoy#46623), so a Lua filter
   (envoy/strict_json.lua, with per-message schemas generated here from the descriptor set: the proto and
   JSON names of each field) parses REST bodies strictly before it and answers 400 ``{"code": 3, "message":
   'unknown field "wallet.name" in the JSON body (...)', "details": [google.rpc.BadRequest naming each
   field path]}`` for unknown keys (names only, never values; keys that do not look like field names are
   not repeated), 400 for malformed JSON or nesting deeper than ``STRICT_JSON_MAX_DEPTH``, and 400 for any
   query string on a route whose body is the whole request (``body: "*"``: no parameter means anything
   there, and a key sent as ``?private_key=`` reaches no service). A guard after the transcoder, on the
   routes of checked RPCs only, refuses a transcoded REST request the check did not pass for that RPC (a
   path form its patterns do not know, such as a trailing slash), so a disagreement fails closed. Reads and
   native gRPC skip the check without running Lua; raw bodies (google.api.HttpBody: the webhook) are not
   parsed.
5. ``rbac``, generated from services.common.access.PUBLIC: one ALLOW policy per public RPC on its gRPC path
   with the matrix's roles (``sourced_metadata`` on the JWT payload, ``list_match``), default deny. It runs
   after the transcoder, so a REST request is judged by the method the transcoder resolved for its verb and
   path: REST and native gRPC share the policy. Denials are 403 ``{"code": 7, "message": "RBAC: access
   denied: <pkg.Service/Method> needs one of the roles <roles>"}`` (the route's metadata), gRPC
   PERMISSION_DENIED. The open path has its own policy (no principal, only when the transcoder resolved
   that REST GET).
6. ``local_ratelimit``: one token bucket per route class (services.common.access.route_class: read, write,
   money) per Envoy instance, shared by all workers; 429 ``{"code": 8, ...}`` with ``Retry-After: 1`` (every
   bucket refills each second), gRPC RESOURCE_EXHAUSTED.

Decisions (documented here because the config is generated):

* ``print_options.always_print_primitive_fields: true`` so zero values are explicit
  (``"nextPageToken": ""``, ``"headBlock": "0"``) and clients need no defaults table;
  ``preserve_proto_field_names: false``: responses use the canonical proto3 JSON names (lowerCamelCase);
  requests accept both spellings either way. ``always_print_enums_as_ints: false`` (enum names).
* ``convert_grpc_status: true``: an upstream ``google.rpc.Status`` (with ``ErrorInfo``/``BadRequest``
  details) becomes the JSON body, and the HTTP status follows Envoy's gRPC→HTTP table. That needs the
  detail types in the descriptor pool: when ``ENVOY_DESCRIPTOR`` lacks google/rpc/status.proto or
  error_details.proto, :func:`write` serves a copy extended with them (``<out>.descriptor.pb``).
* ``request_validation_options``: unknown REST paths are a 404, unknown query parameters a 400,
  a field bound both from the path/query and the body a 400. Query strings on whole-body routes and unknown
  JSON body fields: the strict-JSON check (4. above).
* Envoy's own replies (404/400 from the transcoder, 503 no healthy upstream, 504 timeouts, 413, ...)
  are rendered by ``local_reply_config`` in the same ``{"code", "message", "details"}`` shape as service
  errors. gRPC requests (native, or REST already rewritten to gRPC by the transcoder) are excluded from
  the mappers: Envoy answers them with ``grpc-status``/``grpc-message`` and, for REST, the transcoder
  then renders that status as JSON itself, in exactly the shape of an upstream error. The strict-JSON
  check writes its 400s in this shape itself (with BadRequest details); a mapper keeps them as written.
* Retries: reads (GET bindings) retry on failures that are safe to repeat (connect failure, refused
  stream, reset, ``UNAVAILABLE``); mutating RPCs retry only when the request provably never reached a
  service (connect failure, refused stream). A retry budget caps retries per cluster.
* Every route has one timeout (``EDGE_ROUTE_TIMEOUT``) for REST and native gRPC; a 504 comes back as
  ``{"code": 4, ...}``.
* Admin listens on 127.0.0.1 only.
* The access log records paths without their query string (a key sent there by mistake is never logged)
  and the verified subject.

Environment (all optional): ``EDGE_ADDRESS`` (0.0.0.0), ``EDGE_PORT`` (8080), ``ADMIN_PORT`` (9901),
``<SERVICE>_HOST`` (127.0.0.1), ``<SERVICE>_PORT`` (8085..8090) and ``<SERVICE>_HEALTH_SERVICE`` (the
service's public gRPC service name) for the six services, ``ENVOY_DESCRIPTOR`` (gen/envoy/tronpay.pb),
``EDGE_ROUTE_TIMEOUT`` (15s), ``EDGE_CONNECT_TIMEOUT`` (1s), ``EDGE_HEALTH_INTERVAL`` (5s),
``EDGE_ACCESS_LOG`` (``-`` for stdout, a file path, or ``off``), ``EDGE_MAX_CONNECTIONS`` (10000),
``EDGE_MAX_REQUEST_BYTES`` (4 MiB), ``ENVOY_DESCRIPTOR_MOUNT`` (the descriptor's path on the machine
that runs Envoy, when it differs from ``ENVOY_DESCRIPTOR``, e.g. /etc/envoy/tronpay.pb in Kubernetes),
``ENVOY_CONFIG_OUT`` (.build/envoy/envoy.json), ``EDGE_STRICT_JSON`` (``on``; ``off`` drops the strict-JSON
check, only to measure its cost: benchmarks/bench_edge_strict.py).

Identity: ``EDGE_JWT_ISSUER`` (tronpay-dev), ``EDGE_JWT_AUDIENCES`` (tronpay-api; comma-separated, any may
match), ``EDGE_JWT_CLOCK_SKEW_SECONDS`` (60; 1 to 600), and one JWKS source: ``EDGE_JWKS_FILE`` (default
.data/dev-auth/jwks.json, the development key of tools/devtoken.py) or ``EDGE_JWKS_URI`` (the identity
provider's https JWKS URL; fetched at start-up and every ``EDGE_JWKS_CACHE_DURATION``, 600s; TLS verified
against ``EDGE_JWKS_CA_FILE``, /etc/ssl/certs/ca-certificates.crt). Rate limits per route class and Envoy
instance: ``EDGE_RATE_LIMIT_{READ,WRITE,MONEY}_PER_SECOND`` (tokens added each second: 500, 50, 10) and
``..._BURST`` (bucket size: 1000, 100, 20).

Traces (off unless set): ``OTEL_EXPORTER_OTLP_ENDPOINT`` (the collector's OTLP/gRPC URL, ``http://host:4317``,
the same variable the services read; ``https`` verified against ``EDGE_OTLP_CA_FILE``,
/etc/ssl/certs/ca-certificates.crt) and ``EDGE_TRACE_SAMPLING_PERCENT`` (100). Envoy then makes a span of
every request (continuing a client's ``traceparent``), passes its own to the service in ``traceparent`` and
logs ``trace_id`` in the access log; unset, the rendered config is the same as without this feature.

Mutual TLS to the services: the edge presents its certificate from ``TLS_DIR`` (.data/pki, made by
tools/devpki.py; ``<TLS_DIR>/edge/{tls.crt,tls.key,ca.crt}``, the layout services.common.tls reads) and
accepts an upstream only when its certificate, from the same CA, names that service (SNI and SAN = the
service's dashed name). Clients' TLS on the listener when ``EDGE_TLS_CERT_FILE`` and ``EDGE_TLS_KEY_FILE``
are set (both or neither; HTTP/2 and HTTP/1.1 by ALPN); plaintext otherwise (a TLS-terminating load balancer
in front, or development).

Usage: ``python envoy/render.py [--out PATH]`` prints the path it wrote.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from google.api import annotations_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import descriptor_pb2, descriptor_pool
from google.rpc import error_details_pb2, status_pb2

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as `python envoy/render.py`: the roles x RPCs matrix lives there
    sys.path.append(str(REPO_ROOT))

from services.common import access  # noqa: E402

DEFAULT_DESCRIPTOR = REPO_ROOT / "gen" / "envoy" / "tronpay.pb"
DEFAULT_OUT = REPO_ROOT / ".build" / "envoy" / "envoy.json"

#: Identity defaults: the development key tools/devtoken.py makes on first use (`make token`).
DEFAULT_JWT_ISSUER = "tronpay-dev"
DEFAULT_JWT_AUDIENCE = "tronpay-api"
DEFAULT_JWKS_FILE = REPO_ROOT / ".data" / "dev-auth" / "jwks.json"
DEFAULT_CA_FILE = "/etc/ssl/certs/ca-certificates.crt"
DEFAULT_TLS_DIR = REPO_ROOT / ".data" / "pki"
MESH_IDENTITY = "edge"  # services.common.access.Peer.EDGE
JWT_PROVIDER = "tronpay"
JWT_FILTER = "envoy.filters.http.jwt_authn"
#: The one documented path that needs no token (health checks); GET only, and nothing else.
OPEN_PATH = "/api/v1/tron/network/status"
#: Route metadata namespace: each route names its RPC, the roles the matrix allows and its rate-limit class.
ROUTE_METADATA = "tronpay"
#: Default token buckets per route class and Envoy instance: (tokens added per second, bucket size).
RATE_LIMITS: dict[access.RouteClass, tuple[int, int]] = {
    access.RouteClass.READ: (500, 1000),
    access.RouteClass.WRITE: (50, 100),
    access.RouteClass.MONEY: (10, 20),
}
#: Every bucket is refilled each second, so a client that got 429 may retry after this many seconds.
RETRY_AFTER_SECONDS = 1
#: Headers only Envoy may set: the identity metadata (access.IDENTITY_KEYS) and the transcoder's record of
#: the REST request (the RBAC policy of the open path and the access log trust them).
EDGE_ONLY_HEADERS = (*access.IDENTITY_KEYS, "x-envoy-original-path", "x-envoy-original-method")

#: The six services: proto package key -> default port (DESIGN.md). Env prefix is the key upper-cased.
SERVICES: dict[str, int] = {
    "tron_client": 8085,
    "payout_router": 8086,
    "wallet_manager": 8087,
    "usdt_manager": 8088,
    "trx_staking": 8089,
    "payment_gateway": 8090,
}

#: HTTP status of an Envoy-generated reply -> the google.rpc.Code put in its JSON body. These are the
#: inverse of Envoy's gRPC->HTTP table where one exists, so a client sees the same code for the same
#: condition whether Envoy or a service produced it.
LOCAL_REPLY_CODES: dict[int, int] = {
    400: 3,  # INVALID_ARGUMENT: malformed JSON, unknown query parameter, bad path
    401: 16,  # UNAUTHENTICATED
    403: 7,  # PERMISSION_DENIED
    404: 5,  # NOT_FOUND: no documented path matches
    405: 12,  # UNIMPLEMENTED
    408: 4,  # DEADLINE_EXCEEDED: request not received in time
    413: 8,  # RESOURCE_EXHAUSTED: body over EDGE_MAX_REQUEST_BYTES
    429: 8,  # RESOURCE_EXHAUSTED: circuit breaker / overload
    431: 8,  # RESOURCE_EXHAUSTED: headers too large
    500: 13,  # INTERNAL
    501: 12,  # UNIMPLEMENTED
    502: 14,  # UNAVAILABLE
    503: 14,  # UNAVAILABLE: no healthy upstream, connect failure, overflow
    504: 4,  # DEADLINE_EXCEEDED: upstream timeout
}

TYPE_URL = "type.googleapis.com/"

#: Retry conditions (Envoy ``retry_on``) by kind of RPC.
RETRY_ON_READ = "connect-failure,refused-stream,reset,unavailable"
RETRY_ON_WRITE = "connect-failure,refused-stream"


@dataclass(frozen=True)
class Method:
    """One public RPC: its gRPC path, the cluster serving it and whether it only reads."""

    service: str  # fully qualified service name, e.g. tronpay.tron_client.v1.TronClientService
    name: str
    http_verb: str  # get/post/put/delete/patch/custom
    http_path: str
    http_body: str = ""  # the binding's body: "" (none), "*" (the whole request) or a field name
    input_type: str = ""  # the request message, e.g. tronpay.wallet_manager.v1.CreateWalletRequest

    @property
    def grpc_path(self) -> str:
        """The HTTP/2 path of the RPC, as the transcoder rewrites it."""
        return f"/{self.service}/{self.name}"

    @property
    def cluster(self) -> str:
        """The upstream cluster: the service key of the proto package ``tronpay.<key>.v1``."""
        return self.service.split(".")[1]

    @property
    def read_only(self) -> bool:
        """GET bindings are reads and safe to retry."""
        return self.http_verb == "get"

    @property
    def rpc(self) -> str:
        """The key of the roles x RPCs matrix (services.common.access.PUBLIC): ``pkg.Service/Method``."""
        return f"{self.service}/{self.name}"


@dataclass(frozen=True)
class Upstream:
    """Where one service listens and which grpc.health.v1 service name Envoy checks."""

    key: str
    host: str
    port: int
    health_service: str


def _http_rule(method: descriptor_pb2.MethodDescriptorProto) -> tuple[str, str, str] | None:
    """Return (verb, path, body) of the method's google.api.http rule, or None for an internal RPC."""
    if not method.options.HasExtension(annotations_pb2.http):
        return None
    rule = method.options.Extensions[annotations_pb2.http]
    pattern = rule.WhichOneof("pattern")
    if pattern is None:
        return None
    if pattern == "custom":
        return rule.custom.kind.lower(), rule.custom.path, rule.body
    return pattern, str(getattr(rule, pattern)), rule.body


def load_public_methods(descriptor: Path) -> list[Method]:
    """Read the descriptor set and list every RPC of the six packages that has an HTTP binding."""
    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString(descriptor.read_bytes())
    methods: list[Method] = []
    for file in fds.file:
        parts = file.package.split(".")
        if len(parts) != 3 or parts[0] != "tronpay" or parts[1] not in SERVICES:
            continue
        for service in file.service:
            for method in service.method:
                rule = _http_rule(method)
                if rule is not None:
                    methods.append(
                        Method(
                            f"{file.package}.{service.name}",
                            method.name,
                            *rule,
                            input_type=method.input_type.removeprefix("."),
                        )
                    )
    missing = sorted(set(SERVICES) - {m.cluster for m in methods})
    if missing:
        raise ValueError(f"{descriptor}: no HTTP-bound RPCs for service package(s) {', '.join(missing)}")
    return sorted(methods, key=lambda m: m.grpc_path)


#: Files whose message types must be in the transcoder's descriptor pool: convert_grpc_status renders
#: google.rpc.Status and its details (ErrorInfo, BadRequest, ...) as JSON only when it knows their types;
#: without them Envoy passes the upstream's gRPC error through unconverted (empty body, HTTP 501/400).
STATUS_FILES: tuple[_descriptor.FileDescriptor, ...] = (status_pb2.DESCRIPTOR, error_details_pb2.DESCRIPTOR)


def with_status_types(descriptor: Path, out: Path | None) -> Path:
    """The descriptor set to serve: ``descriptor`` itself when it already holds google.rpc.Status and
    error_details, else a copy at ``out`` extended with those files (and their imports, dependencies
    first) from the installed googleapis-common-protos. With ``out`` None nothing is written."""
    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString(descriptor.read_bytes())
    names = {f.name for f in fds.file}
    added = 0

    def add(file: _descriptor.FileDescriptor) -> None:
        nonlocal added
        if file.name in names:
            return
        for dep in file.dependencies:
            add(dep)
        proto = descriptor_pb2.FileDescriptorProto()
        file.CopyToProto(proto)
        fds.file.append(proto)
        names.add(file.name)
        added += 1

    for file in STATUS_FILES:
        add(file)
    if added == 0 or out is None:
        return descriptor
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(fds.SerializeToString(deterministic=True))
    return out


def _env(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip()
    return value or default


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = _env(env, name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise ValueError(f"{name}={value} is out of range [{low}, {high}]")
    return value


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    return _int(env, name, default, 1, 65535)


def _duration(env: Mapping[str, str], name: str, default: str) -> str:
    raw = _env(env, name, default)
    number = raw[:-2] if raw.endswith("ms") else raw[:-1] if raw.endswith("s") else None
    try:
        seconds = float(number) / (1000 if raw.endswith("ms") else 1) if number is not None else -1.0
    except ValueError:
        seconds = -1.0
    if seconds <= 0:
        raise ValueError(f"{name}={raw!r} must be a positive duration like 15s or 250ms")
    return f"{seconds:.3f}s"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def upstreams(env: Mapping[str, str], methods: list[Method]) -> list[Upstream]:
    """The six upstreams from ``<SERVICE>_HOST``/``<SERVICE>_PORT``; health name = public service."""
    result = []
    for key, default_port in SERVICES.items():
        prefix = key.upper()
        public = sorted({m.service for m in methods if m.cluster == key})
        result.append(
            Upstream(
                key=key,
                host=_env(env, f"{prefix}_HOST", "127.0.0.1"),
                port=_port(env, f"{prefix}_PORT", default_port),
                health_service=_env(env, f"{prefix}_HEALTH_SERVICE", public[0]),
            )
        )
    return result


def _local_reply_config() -> dict[str, Any]:
    """Envoy's own error replies as ``{"code", "message", "details"}`` JSON, for non-gRPC requests."""
    # Envoy decides "is this a gRPC request" from the headers as received, so a REST request keeps
    # getting HTTP local replies even after the transcoder rewrote its content-type to application/grpc;
    # the transcoder marks those with x-envoy-original-path. Native gRPC requests are left alone: Envoy
    # answers them with grpc-status/grpc-message, which is what a gRPC client understands.
    not_grpc = {
        "or_filter": {
            "filters": [
                {
                    "header_filter": {
                        "header": {
                            "name": "content-type",
                            "string_match": {"prefix": "application/grpc"},
                            "invert_match": True,
                            "treat_missing_header_as_empty": True,
                        }
                    }
                },
                {"header_filter": {"header": {"name": "x-envoy-original-path", "present_match": True}}},
            ]
        }
    }

    def status(op: str, value: int, key: str) -> dict[str, Any]:
        comparison = {"op": op, "value": {"default_value": value, "runtime_key": f"edge.lr_{key}"}}
        return {"status_code_filter": {"comparison": comparison}}

    def mapper(
        match: dict[str, Any],
        code: int,
        message: str = "%LOCAL_REPLY_BODY%",
        *,
        extra: tuple[dict[str, Any], ...] = (),
        rewrite_to: int | None = None,
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "filter": {"and_filter": {"filters": [match, not_grpc, *extra]}},
            "body_format_override": {
                "json_format": {"code": code, "message": message, "details": []},
                "content_type": "application/json",
            },
        }
        if rewrite_to is not None:
            out["status_code"] = rewrite_to
        return out

    # jwt_authn answers 403 for a token whose audience is not allowed (401 for every other bad token). A
    # token that failed verification is 401 UNAUTHENTICATED, for REST and native gRPC alike; 403 is RBAC's.
    failed_token = {
        "metadata_filter": {
            "matcher": {
                "filter": JWT_FILTER,
                "path": [{"key": "jwt_failure"}],
                "value": {"present_match": True},
            },
            "match_if_key_not_found": False,  # the default (true) would match every request
        }
    }
    token_403 = status("EQ", 403, "jwt_403")
    strict_json_reply = {
        "metadata_filter": {
            "matcher": {
                "filter": STRICT_JSON_NAMESPACE,
                "path": [{"key": "rejected"}],
                "value": {"present_match": True},
            },
            "match_if_key_not_found": False,
        }
    }
    mappers = [
        # The strict-JSON filters' 400s are already in this shape, with BadRequest details: kept as written.
        {
            "filter": strict_json_reply,
            "body_format_override": {
                "text_format_source": {"inline_string": "%LOCAL_REPLY_BODY%"},
                "content_type": "application/json",
            },
        },
        mapper(token_403, LOCAL_REPLY_CODES[401], extra=(failed_token,), rewrite_to=401),
        {"filter": {"and_filter": {"filters": [token_403, failed_token]}}, "status_code": 401},  # native gRPC
    ]

    # RBAC and the rate limiter answer on a route: their messages name the RPC and what it needs (the route's
    # metadata). "RBAC: access denied: tronpay.wallet_manager.v1.WalletManagerService/DeleteWallet needs
    # one of the roles admin"; "local_rate_limited: money requests over the edge's limit, retry after 1 s".
    def meta(key: str) -> str:
        return f"%METADATA(ROUTE:{ROUTE_METADATA}:{key})%"

    messages = {
        403: f"%LOCAL_REPLY_BODY%: {meta('rpc')} needs one of the roles {meta('roles')}",
        429: f"%LOCAL_REPLY_BODY%: {meta('class')} requests over the edge's limit, "
        f"retry after {RETRY_AFTER_SECONDS} s",
    }
    for code_, grpc_code in LOCAL_REPLY_CODES.items():
        mappers.append(
            mapper(status("EQ", code_, str(code_)), grpc_code, messages.get(code_, "%LOCAL_REPLY_BODY%"))
        )
    # Any other error status Envoy produces: UNKNOWN, same shape.
    mappers.append(mapper(status("GE", 400, "other"), 2))
    return {"mappers": mappers}


def _access_log(env: Mapping[str, str]) -> list[dict[str, Any]]:
    target = _env(env, "EDGE_ACCESS_LOG", "-")
    if target == "off":
        return []
    # Paths without their query string: a query may carry what must never be logged (a key sent by mistake).
    json_format = {
        "time": "%START_TIME%",
        "request_id": "%REQ(X-REQUEST-ID)%",
        "method": "%REQ(X-ENVOY-ORIGINAL-METHOD?:METHOD)%",
        "path": "%REQ_WITHOUT_QUERY(X-ENVOY-ORIGINAL-PATH?:PATH)%",
        "grpc_path": "%REQ_WITHOUT_QUERY(:PATH)%",
        "subject": "%REQ(X-TRONPAY-SUBJECT)%",  # from the verified token only (client copies are dropped)
        "protocol": "%PROTOCOL%",
        "status": "%RESPONSE_CODE%",
        "grpc_status": "%GRPC_STATUS_NUMBER%",
        "flags": "%RESPONSE_FLAGS%",
        "details": "%RESPONSE_CODE_DETAILS%",
        "cluster": "%UPSTREAM_CLUSTER%",
        "upstream": "%UPSTREAM_HOST%",
        "duration_ms": "%DURATION%",
        "bytes_in": "%BYTES_RECEIVED%",
        "bytes_out": "%BYTES_SENT%",
        **({"trace_id": "%TRACE_ID%"} if _otlp_endpoint(env) else {}),
    }
    log_format = {
        "json_format": json_format,
        "formatters": [
            {
                "name": "envoy.formatter.req_without_query",
                "typed_config": {
                    "@type": TYPE_URL + "envoy.extensions.formatter.req_without_query.v3.ReqWithoutQuery"
                },
            }
        ],
    }
    if target == "-":
        typed: dict[str, Any] = {
            "@type": TYPE_URL + "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
            "log_format": log_format,
        }
    else:
        typed = {
            "@type": TYPE_URL + "envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": target,
            "log_format": log_format,
        }
    return [{"name": "envoy.access_loggers.edge", "typed_config": typed}]


def _route(method: Method, env: Mapping[str, str], unguarded: bool) -> dict[str, Any]:
    """The route of one public RPC; ``unguarded``: no checked body, so the strict-JSON guard is off there."""
    retry_on = RETRY_ON_READ if method.read_only else RETRY_ON_WRITE
    per_filter = {
        STRICT_JSON_GUARD_FILTER: {
            "@type": TYPE_URL + "envoy.extensions.filters.http.lua.v3.LuaPerRoute",
            "disabled": True,
        }
    }
    return {
        "name": f"{method.service}.{method.name}",
        **({"typed_per_filter_config": per_filter} if unguarded else {}),
        "match": {"path": method.grpc_path},
        # Read by the rate limiter (class) and by the 403/429 JSON messages (rpc, roles).
        "metadata": {
            "filter_metadata": {
                ROUTE_METADATA: {
                    "rpc": method.rpc,
                    "roles": ", ".join(sorted(access.PUBLIC[method.rpc])),
                    "class": access.route_class(method.rpc).value,
                }
            }
        },
        "route": {
            "cluster": method.cluster,
            # One upper bound for REST and native gRPC alike. A gRPC client's own deadline still reaches
            # the service in its grpc-timeout header. (grpc_timeout_header_max is deliberately not set:
            # with it, a request without grpc-timeout, which includes every transcoded REST request,
            # would have no timeout at all.)
            "timeout": _duration(env, "EDGE_ROUTE_TIMEOUT", "15s"),
            "retry_policy": {
                "retry_on": retry_on,
                "num_retries": 2,
                "retry_host_predicate": [
                    {
                        "name": "envoy.retry_host_predicates.previous_hosts",
                        "typed_config": {
                            "@type": TYPE_URL
                            + "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
                        },
                    }
                ],
                "host_selection_retry_max_attempts": 3,
            },
        },
    }


#: Server reflection through the edge; every service answers the edge's certificate with the public catalogue
#: (services/common/reflection.py), so any one cluster will do.
REFLECTION_PATH = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
REFLECTION_CLUSTER = "tron_client"


#: The API's documentation, open without a token (it describes the public contract and holds no data):
#: the OpenAPI document generated from the protos (tools/protogen.py) and a pinned Swagger UI (npm).
OPENAPI_PATH = "/api/v1/openapi.json"
DOCS_PATH = "/api/docs"
DEFAULT_OPENAPI_FILE = REPO_ROOT / "gen" / "openapi" / "openapi.json"
DEFAULT_SWAGGER_UI_DIR = REPO_ROOT / "node_modules" / "swagger-ui-dist"
DOCS_MAX_BYTES = 4 * 1024 * 1024  # Envoy holds direct responses in memory; the UI bundle is ~1.7 MB
DOCS_PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>TRON payment cluster API</title>
<link rel="stylesheet" href="{DOCS_PATH}/swagger-ui.css"></head>
<body><div id="ui"></div><script src="{DOCS_PATH}/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({{url: "{OPENAPI_PATH}", dom_id: "#ui", persistAuthorization: false}});</script>
</body></html>
"""


def docs_files(env: Mapping[str, str]) -> tuple[Path | None, Path | None]:
    """``EDGE_OPENAPI_FILE`` and ``EDGE_SWAGGER_UI_DIR`` (``off`` serves none); both must exist when on."""
    found: list[Path | None] = []
    for name, default in (
        ("EDGE_OPENAPI_FILE", DEFAULT_OPENAPI_FILE),
        ("EDGE_SWAGGER_UI_DIR", DEFAULT_SWAGGER_UI_DIR),
    ):
        value = _env(env, name, str(default))
        found.append(None if value == "off" else Path(value))
    return found[0], found[1]


def _docs_routes(env: Mapping[str, str]) -> list[dict[str, Any]]:
    """GET routes answered by Envoy itself: no token, no transcoding, no RBAC (jwt_authn lets them pass)."""
    openapi, ui = docs_files(env)
    skip = {
        name: {"@type": TYPE_URL + "envoy.config.route.v3.FilterConfig", "disabled": True}
        for name in ("envoy.filters.http.grpc_json_transcoder", "envoy.filters.http.rbac")
    }
    served: list[tuple[str, str, dict[str, Any]]] = []
    if openapi is not None:
        served.append((OPENAPI_PATH, "application/json", {"filename": str(openapi)}))
    if ui is not None:
        served += [
            (DOCS_PATH, "text/html; charset=utf-8", {"inline_string": DOCS_PAGE}),
            (f"{DOCS_PATH}/swagger-ui.css", "text/css", {"filename": str(ui / "swagger-ui.css")}),
            (
                f"{DOCS_PATH}/swagger-ui-bundle.js",
                "text/javascript",
                {"filename": str(ui / "swagger-ui-bundle.js")},
            ),
        ]
    return [
        {
            "name": f"docs {path}",
            "match": {"path": path, "headers": [{"name": ":method", "string_match": {"exact": "GET"}}]},
            "metadata": {"filter_metadata": {ROUTE_METADATA: {"class": access.RouteClass.READ.value}}},
            "typed_per_filter_config": skip,
            "direct_response": {"status": 200, "body": body},
            "response_headers_to_add": [
                {
                    "header": {"key": "content-type", "value": content_type},
                    "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                },
                {
                    "header": {"key": "cache-control", "value": "no-cache"},
                    "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                },
            ],
        }
        for path, content_type, body in served
    ]


def docs_paths(env: Mapping[str, str]) -> list[str]:
    """The paths :func:`_docs_routes` serves (jwt_authn lets them pass without a token)."""
    return [route["match"]["path"] for route in _docs_routes(env)]


def _discovery_routes(env: Mapping[str, str], guarded: bool) -> list[dict[str, Any]]:
    """Reflection for any caller with a verified token, and an immediate UNIMPLEMENTED for a native gRPC
    call to any other method (grpcurl's reflection v1 probe included, so it falls back to v1alpha) instead
    of RBAC's PERMISSION_DENIED, which would read as "you may not" where the truth is "there is none"."""
    any_token = {
        "@type": TYPE_URL + "envoy.extensions.filters.http.rbac.v3.RBACPerRoute",
        "rbac": {
            "rules": {
                "action": "ALLOW",
                "policies": {
                    "any caller with a verified token": {
                        "permissions": [{"any": True}],
                        "principals": [_has_role(role) for role in access.Role],
                    }
                },
            }
        },
    }
    per_filter: dict[str, Any] = {
        "envoy.filters.http.rbac": any_token,
        # Reflection is a bidirectional stream, and so may be an unknown method: buffering the request until
        # its end would hold it for good (grpcurl keeps the stream open for its next question). Reflection
        # messages are symbol names, a few bytes each; an unknown method's body is never read.
        "envoy.filters.http.buffer": {
            "@type": TYPE_URL + "envoy.extensions.filters.http.buffer.v3.BufferPerRoute",
            "disabled": True,
        },
    }
    if guarded:  # gRPC bodies are not JSON: the strict-JSON guard has nothing to check here
        per_filter[STRICT_JSON_GUARD_FILTER] = {
            "@type": TYPE_URL + "envoy.extensions.filters.http.lua.v3.LuaPerRoute",
            "disabled": True,
        }
    metadata = {"filter_metadata": {ROUTE_METADATA: {"class": access.RouteClass.READ.value}}}
    grpc_only = [{"name": "content-type", "string_match": {"prefix": "application/grpc"}}]
    return [
        {
            "name": "reflection",
            "match": {"path": REFLECTION_PATH, "headers": grpc_only},
            "metadata": metadata,
            "typed_per_filter_config": per_filter,
            "route": {"cluster": REFLECTION_CLUSTER, "timeout": _duration(env, "EDGE_ROUTE_TIMEOUT", "15s")},
        },
        {
            "name": "unknown gRPC method",
            "match": {"prefix": "/", "headers": grpc_only},
            "metadata": metadata,
            "typed_per_filter_config": per_filter,
            # Envoy answers a gRPC request's 404 with grpc-status 12 UNIMPLEMENTED and this grpc-message.
            "direct_response": {"status": 404, "body": {"inline_string": "no such public gRPC method"}},
        },
    ]


def _tls_socket(kind: str, context: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {"@type": TYPE_URL + f"envoy.extensions.transport_sockets.tls.v3.{kind}", **context},
    }


def _mesh_tls(upstream: Upstream, env: Mapping[str, str]) -> dict[str, Any]:
    """The edge's certificate to the service, and only a certificate of the cluster CA naming it accepted."""
    files = Path(_env(env, "TLS_DIR", str(DEFAULT_TLS_DIR))) / MESH_IDENTITY
    peer = upstream.key.replace("_", "-")
    return _tls_socket(
        "UpstreamTlsContext",
        {
            "sni": peer,
            "common_tls_context": {
                "alpn_protocols": ["h2"],
                "tls_certificates": [
                    {
                        "certificate_chain": {"filename": str(files / "tls.crt")},
                        "private_key": {"filename": str(files / "tls.key")},
                    }
                ],
                "validation_context": {
                    "trusted_ca": {"filename": str(files / "ca.crt")},
                    "match_typed_subject_alt_names": [{"san_type": "DNS", "matcher": {"exact": peer}}],
                },
            },
        },
    )


def _edge_tls(env: Mapping[str, str]) -> dict[str, Any] | None:
    """TLS for clients on the listener when a certificate is configured."""
    cert, key = env.get("EDGE_TLS_CERT_FILE", ""), env.get("EDGE_TLS_KEY_FILE", "")
    if not cert and not key:
        return None
    if not (cert and key):
        raise ValueError("EDGE_TLS_CERT_FILE and EDGE_TLS_KEY_FILE go together")
    return _tls_socket(
        "DownstreamTlsContext",
        {
            "common_tls_context": {
                "alpn_protocols": ["h2", "http/1.1"],
                "tls_params": {"tls_minimum_protocol_version": "TLSv1_2"},
                "tls_certificates": [
                    {"certificate_chain": {"filename": cert}, "private_key": {"filename": key}}
                ],
            }
        },
    )


def _cluster(upstream: Upstream, env: Mapping[str, str]) -> dict[str, Any]:
    interval = _duration(env, "EDGE_HEALTH_INTERVAL", "5s")
    return {
        "name": upstream.key,
        "transport_socket": _mesh_tls(upstream, env),
        # An IP literal needs no resolution; a name (a headless Service in Kubernetes) is resolved
        # continuously so every pod becomes an endpoint and HTTP/2 streams are balanced per request.
        "type": "STATIC" if _is_ip(upstream.host) else "STRICT_DNS",
        "dns_lookup_family": "V4_PREFERRED",
        "lb_policy": "ROUND_ROBIN",
        "connect_timeout": _duration(env, "EDGE_CONNECT_TIMEOUT", "1s"),
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": TYPE_URL + "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {
                    "http2_protocol_options": {
                        "connection_keepalive": {"interval": "30s", "timeout": "5s"},
                    }
                },
            }
        },
        "load_assignment": {
            "cluster_name": upstream.key,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {
                                    "socket_address": {"address": upstream.host, "port_value": upstream.port}
                                }
                            }
                        }
                    ]
                }
            ],
        },
        "health_checks": [
            {
                "timeout": "1s",
                "interval": interval,
                "interval_jitter": "0.5s",
                # The default (60s) would keep a host that failed its first check out for a minute.
                "no_traffic_interval": interval,
                "unhealthy_threshold": 2,
                "healthy_threshold": 1,
                "grpc_health_check": {"service_name": upstream.health_service},
            }
        ],
        "circuit_breakers": {
            "thresholds": [
                {
                    "priority": "DEFAULT",
                    "max_connections": 1024,
                    "max_pending_requests": 1024,
                    "max_requests": 1024,
                    "max_retries": 16,
                    "retry_budget": {"budget_percent": {"value": 20.0}, "min_retry_concurrency": 3},
                }
            ]
        },
        "outlier_detection": {
            "consecutive_gateway_failure": 5,
            "consecutive_5xx": 0,
            "interval": "5s",
            "base_ejection_time": "15s",
            "max_ejection_percent": 50,
            "split_external_local_origin_errors": True,
        },
    }


def _csv(env: Mapping[str, str], name: str, default: str) -> list[str]:
    values = [v.strip() for v in _env(env, name, default).split(",") if v.strip()]
    if not values:
        raise ValueError(f"{name} needs at least one value")
    return values


def _strip_edge_headers() -> dict[str, Any]:
    """First filter: a client's copies of the identity metadata (and of the transcoder's headers) go."""
    return {
        "name": "envoy.filters.http.header_mutation",
        "typed_config": {
            "@type": TYPE_URL + "envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
            "mutations": {"request_mutations": [{"remove": name} for name in EDGE_ONLY_HEADERS]},
        },
    }


def _jwks_source(env: Mapping[str, str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The provider's JWKS (``local_jwks`` file or ``remote_jwks`` URL) and the clusters it needs."""
    uri = _env(env, "EDGE_JWKS_URI", "")
    if not uri:
        return {"local_jwks": {"filename": _env(env, "EDGE_JWKS_FILE", str(DEFAULT_JWKS_FILE))}}, []
    if env.get("EDGE_JWKS_FILE", "").strip():
        raise ValueError("EDGE_JWKS_URI and EDGE_JWKS_FILE are exclusive: give one JWKS source")
    url = urlsplit(uri)
    if url.scheme not in ("https", "http") or not url.hostname:
        raise ValueError(f"EDGE_JWKS_URI={uri!r} must be an http(s) URL")
    tls = url.scheme == "https"
    port = url.port or (443 if tls else 80)
    cluster: dict[str, Any] = {
        "name": "jwks",
        "type": "STATIC" if _is_ip(url.hostname) else "STRICT_DNS",
        "dns_lookup_family": "V4_PREFERRED",
        "connect_timeout": _duration(env, "EDGE_CONNECT_TIMEOUT", "1s"),
        "load_assignment": {
            "cluster_name": "jwks",
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {"socket_address": {"address": url.hostname, "port_value": port}}
                            }
                        }
                    ]
                }
            ],
        },
    }
    if tls:
        cluster["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": TYPE_URL + "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "sni": url.hostname,
                "common_tls_context": {
                    "validation_context": {
                        "trusted_ca": {"filename": _env(env, "EDGE_JWKS_CA_FILE", DEFAULT_CA_FILE)},
                        "match_typed_subject_alt_names": [
                            {"san_type": "DNS", "matcher": {"exact": url.hostname}}
                        ],
                    }
                },
            },
        }
    remote = {
        "http_uri": {"uri": uri, "cluster": "jwks", "timeout": "5s"},
        "cache_duration": _duration(env, "EDGE_JWKS_CACHE_DURATION", "600s"),
        # Fetched at start-up and refreshed before it expires, so no request waits for the identity provider.
        "async_fetch": {},
        "retry_policy": {"num_retries": 3, "retry_back_off": {"base_interval": "0.5s", "max_interval": "5s"}},
    }
    return {"remote_jwks": remote}, [cluster]


def _jwt_authn(env: Mapping[str, str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Bearer JWT on every path but ``GET OPEN_PATH`` (where a token is optional, and checked if sent)."""
    jwks, clusters = _jwks_source(env)
    provider = {
        "issuer": _env(env, "EDGE_JWT_ISSUER", DEFAULT_JWT_ISSUER),
        "audiences": _csv(env, "EDGE_JWT_AUDIENCES", DEFAULT_JWT_AUDIENCE),
        **jwks,
        # Only the Authorization header: the default also reads ?access_token=, which would put tokens
        # into URLs (and logs).
        # (Envoy matches the scheme case-sensitively; both usual spellings are accepted.)
        "from_headers": [
            {"name": "authorization", "value_prefix": "Bearer "},
            {"name": "authorization", "value_prefix": "bearer "},
        ],
        "forward": False,  # the services never see the token
        "require_expiration": True,
        # No jwt_cache_config: Envoy's cache re-checks a cached token's expiry with its built-in 60 s skew,
        # not clock_skew_seconds, so an expired token would pass for up to a minute. An ES256 check costs
        # about 80 us of CPU per request here, which the edge can afford.
        # At least 1: Envoy reads 0 as "unset" and allows its default of 60 s.
        "clock_skew_seconds": _int(env, "EDGE_JWT_CLOCK_SKEW_SECONDS", 60, 1, 600),
        "claim_to_headers": [
            {"header_name": access.SUBJECT_KEY, "claim_name": "sub"},
            {"header_name": access.TENANT_KEY, "claim_name": "tenant"},
        ],
        # For RBAC (sourced_metadata + list_match) and the roles header: a space-delimited string claim
        # becomes a list; a JSON array stays one.
        "payload_in_metadata": "jwt_payload",
        # Recorded so local_reply_config can tell a failed token from an RBAC denial (see there).
        "failed_status_in_metadata": "jwt_failure",
        "normalize_payload_in_metadata": {"space_delimited_claims": ["roles"]},
    }
    rules = [
        {
            # Exact path, GET only, case-sensitive: /API/... or any other path falls to the rule below.
            "match": {"path": OPEN_PATH, "headers": [{"name": ":method", "string_match": {"exact": "GET"}}]},
            "requires": {
                "requires_any": {"requirements": [{"provider_name": JWT_PROVIDER}, {"allow_missing": {}}]}
            },
        },
        # The documentation (a GET of its exact paths) needs no token.
        *(
            {"match": {"path": path, "headers": [{"name": ":method", "string_match": {"exact": "GET"}}]}}
            for path in docs_paths(env)
        ),
        {"match": {"prefix": "/"}, "requires": {"provider_name": JWT_PROVIDER}},
    ]
    config = {
        "name": JWT_FILTER,
        "typed_config": {
            "@type": TYPE_URL + "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {JWT_PROVIDER: provider},
            "rules": rules,
        },
    }
    return config, clusters


#: jwt_authn's claim_to_headers would pass a JSON array claim as base64 JSON, so the roles header is set
#: here from the same normalised list RBAC matches: known role names (services.common.access.Role), joined
#: with commas, as services.common.access.parse_roles reads them. No verified roles, no header.
ROLES_LUA = """\
local KNOWN = {%(known)s}
function envoy_on_request(handle)
  local jwt = handle:streamInfo():dynamicMetadata():get("%(filter)s")
  local roles = jwt and jwt["jwt_payload"] and jwt["jwt_payload"]["roles"]
  if type(roles) ~= "table" then return end
  local out = {}
  for _, role in ipairs(roles) do
    if KNOWN[role] then out[#out + 1] = role end
  end
  if #out > 0 then handle:headers():replace("%(header)s", table.concat(out, ",")) end
end
"""


def _roles_header() -> dict[str, Any]:
    known = ", ".join(f'["{role.value}"] = true' for role in access.Role)
    code = ROLES_LUA % {"known": known, "filter": JWT_FILTER, "header": access.ROLES_KEY}
    return {
        "name": "envoy.filters.http.lua",
        "typed_config": {
            "@type": TYPE_URL + "envoy.extensions.filters.http.lua.v3.Lua",
            "default_source_code": {"inline_string": code},
        },
    }


def _has_role(role: access.Role) -> dict[str, Any]:
    return {
        "sourced_metadata": {
            "metadata_source": "DYNAMIC",
            "metadata_matcher": {
                "filter": JWT_FILTER,
                "path": [{"key": "jwt_payload"}, {"key": "roles"}],
                "value": {"list_match": {"one_of": {"string_match": {"exact": role.value}}}},
            },
        }
    }


def _rbac(methods: list[Method]) -> dict[str, Any]:
    """One ALLOW policy per public RPC from access.PUBLIC (its gRPC path, any of its roles); default deny.

    RBAC runs after the transcoder, so a REST request is matched by the gRPC method the transcoder resolved
    for its verb and path: REST and native gRPC share one policy and no path template is re-interpreted.
    """
    bound = {m.rpc for m in methods}
    if bound != set(access.PUBLIC):
        raise ValueError(
            "the HTTP-bound RPCs and services.common.access.PUBLIC differ: "
            f"unlisted {sorted(bound - set(access.PUBLIC))}, unbound {sorted(set(access.PUBLIC) - bound)}"
        )
    policies: dict[str, Any] = {
        m.rpc: {
            "permissions": [{"url_path": {"path": {"exact": m.grpc_path}}}],
            "principals": [_has_role(role) for role in sorted(access.PUBLIC[m.rpc])],
        }
        for m in methods
    }
    (open_method,) = [m for m in methods if m.http_verb == "get" and m.http_path == OPEN_PATH]
    # Without a token only GET OPEN_PATH passes jwt_authn; the transcoder records it (client copies of the
    # header were dropped first), so a native gRPC call cannot pose as it.
    policies[f"open: GET {OPEN_PATH}"] = {
        "permissions": [
            {
                "and_rules": {
                    "rules": [
                        {"url_path": {"path": {"exact": open_method.grpc_path}}},
                        {
                            "header": {
                                "name": "x-envoy-original-path",
                                "string_match": {"safe_regex": {"regex": f"^{OPEN_PATH}(\\?.*)?$"}},
                            }
                        },
                    ]
                }
            }
        ],
        "principals": [{"any": True}],
    }
    return {
        "name": "envoy.filters.http.rbac",
        "typed_config": {
            "@type": TYPE_URL + "envoy.extensions.filters.http.rbac.v3.RBAC",
            "rules": {"action": "ALLOW", "policies": policies},
        },
    }


def rate_limits(env: Mapping[str, str]) -> dict[access.RouteClass, tuple[int, int]]:
    """Per route class: (tokens per second, burst) from ``EDGE_RATE_LIMIT_<CLASS>_PER_SECOND``/``_BURST``."""
    out = {}
    for klass, (rate, burst) in RATE_LIMITS.items():
        prefix = f"EDGE_RATE_LIMIT_{klass.name}"
        out[klass] = (
            _int(env, f"{prefix}_PER_SECOND", rate, 1, 1_000_000),
            _int(env, f"{prefix}_BURST", burst, 1, 1_000_000),
        )
    return out


def _rate_limit(env: Mapping[str, str]) -> dict[str, Any]:
    """A token bucket per route class (the route's metadata), shared by all workers of this Envoy."""
    percent = {"numerator": 100, "denominator": "HUNDRED"}
    return {
        "name": "envoy.filters.http.local_ratelimit",
        "typed_config": {
            "@type": TYPE_URL + "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
            "stat_prefix": "edge_rate_limit",
            "filter_enabled": {"default_value": percent, "runtime_key": "edge.rate_limit_enabled"},
            "filter_enforced": {"default_value": percent, "runtime_key": "edge.rate_limit_enforced"},
            "rate_limits": [
                {
                    "actions": [
                        {
                            "metadata": {
                                "descriptor_key": "route_class",
                                "metadata_key": {"key": ROUTE_METADATA, "path": [{"key": "class"}]},
                                "source": "ROUTE_ENTRY",
                            }
                        }
                    ]
                }
            ],
            "descriptors": [
                {
                    "entries": [{"key": "route_class", "value": klass.value}],
                    "token_bucket": {
                        "max_tokens": burst,
                        "tokens_per_fill": rate,
                        "fill_interval": f"{RETRY_AFTER_SECONDS}s",
                    },
                }
                for klass, (rate, burst) in rate_limits(env).items()
            ],
            "local_rate_limit_per_downstream_connection": False,
            "rate_limited_as_resource_exhausted": True,  # native gRPC: RESOURCE_EXHAUSTED, not UNAVAILABLE
            "response_headers_to_add": [
                {
                    "header": {"key": "retry-after", "value": str(RETRY_AFTER_SECONDS)},
                    "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                }
            ],
        },
    }


def _body_limit(env: Mapping[str, str]) -> int:
    # 4 MiB by default: a batch payout of 10000 recipients is about 1 MB of JSON.
    return _int(env, "EDGE_MAX_REQUEST_BYTES", 4 * 1024 * 1024, 1024, 64 * 1024 * 1024)


def _buffer(env: Mapping[str, str]) -> dict[str, Any]:
    """Whole requests are buffered up to a limit; bigger ones get 413. (The transcoder streams request
    bodies, so without this a client could push an unbounded JSON body through to a service.)"""
    return {
        "name": "envoy.filters.http.buffer",
        "typed_config": {
            "@type": TYPE_URL + "envoy.extensions.filters.http.buffer.v3.Buffer",
            "max_request_bytes": _body_limit(env),
        },
    }


#: Strict JSON request bodies (the transcoder drops unknown fields silently: envoyproxy/envoy#46623). The
#: hand-written script; :func:`strict_json` puts the data generated from the descriptor set in front of it.
STRICT_JSON_LUA = REPO_ROOT / "envoy" / "strict_json.lua"
STRICT_JSON_FILTER = "tronpay.strict_json"
STRICT_JSON_GUARD_FILTER = "tronpay.strict_json_guard"
#: The matcher action that skips a filter (reads and native gRPC skip the check).
_SKIP_FILTER = "envoy.extensions.filters.common.matcher.action.v3.SkipFilter"
#: Dynamic metadata namespace of both filters: "rpc" (the gRPC path whose body was checked), "rejected"
#: (their own 400, passed through by local_reply_config as the JSON they wrote).
STRICT_JSON_NAMESPACE = "tronpay.strict_json"
#: Nesting bound of arrays and objects in a checked body (the deepest request today nests 4 levels).
STRICT_JSON_MAX_DEPTH = 32
#: google.protobuf types with their own JSON form (strings, numbers, free-form objects): never checked.
WELL_KNOWN_JSON = frozenset(
    f"google.protobuf.{name}"
    for name in (
        "Any",
        "Duration",
        "FieldMask",
        "Struct",
        "Value",
        "ListValue",
        "Timestamp",
        "DoubleValue",
        "FloatValue",
        "Int64Value",
        "UInt64Value",
        "Int32Value",
        "UInt32Value",
        "BoolValue",
        "StringValue",
        "BytesValue",
    )
)
#: A body of this type is passed to the service as raw bytes, not parsed as JSON: not checked.
RAW_BODY = "google.api.HttpBody"
#: A path template segment this renderer can match: a literal, or one whole segment bound to a variable.
_LITERAL_SEGMENT = re.compile(r"[A-Za-z0-9._~-]+")
_VARIABLE_SEGMENT = re.compile(r"\*|\{[A-Za-z_][A-Za-z0-9_.]*(=\*)?\}")


@dataclass(frozen=True)
class BodyRoute:
    """A REST route whose JSON body the strict-JSON filter checks."""

    method: Method
    pattern: str  # Lua pattern of the path without its query string
    schema: int  # index into StrictJson.messages (1-based, as in Lua), 0 for a body that is a scalar

    @property
    def whole(self) -> bool:
        """The body is the whole request, so no query parameter means anything."""
        return self.method.http_body == "*"


@dataclass(frozen=True)
class MessageSchema:
    """The JSON keys one message accepts -> the schema of their values (0: not checked); or, for a map of
    messages, ``any``: every key accepted, each value checked against that schema."""

    name: str
    fields: dict[str, int] | None = None
    any: int = 0


@dataclass(frozen=True)
class StrictJson:
    """What the strict-JSON filter knows, generated from the descriptor set."""

    messages: list[MessageSchema]
    routes: list[BodyRoute]

    @property
    def rpcs(self) -> frozenset[str]:
        """The gRPC paths whose REST bodies are checked (where the guard after the transcoder runs)."""
        return frozenset(r.method.grpc_path for r in self.routes)


def _path_pattern(template: str) -> str:
    """The Lua pattern matching a path of a google.api.http template (literal and single-segment variable
    segments only: anything else raises, so a new kind of binding cannot slip past the check unnoticed)."""
    segments = template.split("/")
    if segments[0] != "" or len(segments) < 2:
        raise ValueError(f"strict JSON: path template {template!r} does not start with '/'")
    parts = []
    for segment in segments[1:]:
        if _VARIABLE_SEGMENT.fullmatch(segment):
            parts.append("[^/]+")
        elif _LITERAL_SEGMENT.fullmatch(segment):
            parts.append("".join(c if c.isalnum() else "%" + c for c in segment))
        else:
            raise ValueError(
                f"strict JSON: path template {template!r}: segment {segment!r} is not supported by "
                "envoy/render.py's body check (literal or {variable} segments only)"
            )
    return "^/" + "/".join(parts) + "$"


def strict_json(descriptor: Path, methods: list[Method]) -> StrictJson:
    """Schemas of the request bodies of every REST route with a JSON body.

    Each message lists the keys the transcoder accepts for it: the proto field name and its json_name.
    A message-typed field points at its message's schema (also when repeated: every element is checked);
    a map with message values at a schema that accepts any key; scalars, enums, maps of scalars and the
    well-known types with their own JSON form (Timestamp, Struct, Any, ...) are not looked into.
    """
    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString(descriptor.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for file in fds.file:
        pool.Add(file)
    messages: list[MessageSchema] = []
    index: dict[str, int] = {}

    def schema(message: _descriptor.Descriptor) -> int:
        if message.full_name in index:
            return index[message.full_name]
        messages.append(MessageSchema(message.full_name))  # a placeholder, so recursive types terminate
        index[message.full_name] = position = len(messages)
        fields: dict[str, int] = {}
        for field in message.fields:
            fields[field.name] = fields[field.json_name] = field_schema(field)
        messages[position - 1] = MessageSchema(message.full_name, fields=fields)
        return position

    def field_schema(field: _descriptor.FieldDescriptor) -> int:
        message = field.message_type
        if message is None or message.full_name in WELL_KNOWN_JSON:
            return 0
        if not message.GetOptions().map_entry:
            return schema(message)
        # A map: its keys are data. Only message values are looked into (a schema accepting any key).
        value = field_schema(message.fields_by_name["value"])
        if value == 0:
            return 0
        if message.full_name not in index:
            messages.append(MessageSchema(message.full_name, any=value))
            index[message.full_name] = len(messages)
        return index[message.full_name]

    routes = []
    for method in methods:
        if not method.http_body:
            continue
        request = pool.FindMessageTypeByName(method.input_type)
        field = None if method.http_body == "*" else request.fields_by_name[method.http_body]
        body = request if field is None else field.message_type
        if body is not None and body.full_name == RAW_BODY:
            continue
        target = schema(request) if field is None else field_schema(field)
        routes.append(BodyRoute(method, _path_pattern(method.http_path), target))
    # Literal paths first: where a literal and a variable segment could both match, the transcoder prefers
    # the literal (and the guard would refuse any disagreement).
    routes.sort(key=lambda r: (r.method.http_path.count("{"), r.method.http_path, r.method.http_verb))
    return StrictJson(messages, routes)


def _lua_string(value: str) -> str:
    """A Lua string literal of an ASCII name, template or pattern."""
    if not value.isascii() or not value.isprintable():
        raise ValueError(f"strict JSON: {value!r} is not printable ASCII")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _strict_json_data(spec: StrictJson) -> str:
    """The generated Lua data the script in STRICT_JSON_LUA reads (see its header)."""
    lines = [
        "-- Generated by envoy/render.py from the descriptor set: the data envoy/strict_json.lua reads.",
        f"local NAMESPACE = {_lua_string(STRICT_JSON_NAMESPACE)}",
        f"local ERROR_TYPE = {_lua_string(TYPE_URL + 'google.rpc.BadRequest')}",
        f"local MAX_DEPTH = {STRICT_JSON_MAX_DEPTH}",
        "local MESSAGES = {",
    ]
    for position, message in enumerate(spec.messages, start=1):
        if message.fields is None:
            body = f"any = {message.any}"
        else:
            keys = ", ".join(f"[{_lua_string(k)}] = {v}" for k, v in sorted(message.fields.items()))
            body = f"fields = {{{keys}}}"
        lines.append(f"  {{name = {_lua_string(message.name)}, {body}}}, -- {position}")
    lines.append("}")
    lines.append("local ROUTES = {")
    for route in spec.routes:
        m = route.method
        lines.append(
            f"  {{method = {_lua_string(m.http_verb.upper())}, pattern = {_lua_string(route.pattern)}, "
            f"template = {_lua_string(m.http_path)}, rpc = {_lua_string(m.grpc_path)}, "
            f"body = {route.schema}, whole = {'true' if route.whole else 'false'}}},"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def _lua(name: str, code: str) -> dict[str, Any]:
    return {
        "name": name,
        "typed_config": {
            "@type": TYPE_URL + "envoy.extensions.filters.http.lua.v3.Lua",
            "default_source_code": {"inline_string": code},
            # http.edge.lua.<name>.executions and .errors (script errors).
            "stat_prefix": name.rpartition(".")[2],
        },
    }


def _strict_json_filter(spec: StrictJson) -> dict[str, Any]:
    """Before the transcoder: query strings and unknown JSON keys of REST bodies (envoy/strict_json.lua).

    Requests whose method no checked route has (reads) and native gRPC requests skip the script without
    starting it (an ExtensionWithMatcher), so they do not pay for a Lua coroutine. The guard after the
    transcoder still refuses any REST body that was not checked.
    """
    verbs = sorted({route.method.http_verb.upper() for route in spec.routes})

    def header(name: str, match: dict[str, Any]) -> dict[str, Any]:
        return {
            "single_predicate": {
                "input": {
                    "name": name,
                    "typed_config": {
                        "@type": TYPE_URL + "envoy.type.matcher.v3.HttpRequestHeaderMatchInput",
                        "header_name": name,
                    },
                },
                "value_match": match,
            }
        }

    skip = {"action": {"name": "skip", "typed_config": {"@type": TYPE_URL + _SKIP_FILTER}}}
    not_a_checked_verb = {
        "not_matcher": header(
            ":method", {"safe_regex": {"google_re2": {}, "regex": f"^({'|'.join(verbs)})$"}}
        )
    }
    return {
        "name": STRICT_JSON_FILTER,
        "typed_config": {
            "@type": TYPE_URL + "envoy.extensions.common.matching.v3.ExtensionWithMatcher",
            "xds_matcher": {
                "matcher_list": {
                    "matchers": [
                        {"predicate": not_a_checked_verb, "on_match": skip},
                        {
                            "predicate": header("content-type", {"exact": "application/grpc"}),
                            "on_match": skip,
                        },
                    ]
                }
            },
            "extension_config": _lua(
                STRICT_JSON_FILTER, _strict_json_data(spec) + STRICT_JSON_LUA.read_text()
            ),
        },
    }


#: After the transcoder, enabled only on the routes of RPCs with a checked body (LuaPerRoute disables it on
#: the others): a REST request the transcoder resolved to the route's RPC passes only if the strict-JSON
#: filter checked it for that same RPC. A path form the filter's patterns did not recognise (the transcoder's
#: matcher is the reference), or an error in the script, therefore refuses the request instead of letting
#: an unchecked body through. Native gRPC requests are not transcoded (no x-envoy-original-path) and pass.
STRICT_JSON_GUARD_LUA = """\
function envoy_on_request(handle)
  local headers = handle:headers()
  if headers:get("x-envoy-original-path") == nil then return end
  local checked = handle:streamInfo():dynamicMetadata():get("%(namespace)s")
  if checked and checked["rpc"] == headers:get(":path") then return end
  handle:streamInfo():dynamicMetadata():set("%(namespace)s", "rejected", true)
  handle:respond({[":status"] = "400", ["content-type"] = "application/json"}, %(body)s)
end
"""

#: The guard's answer: the request's path is not one the body check recognised.
STRICT_JSON_GUARD_REPLY = {
    "code": LOCAL_REPLY_CODES[400],
    "message": "the JSON body was not checked: send the request to the endpoint's documented path "
    "(without a trailing slash)",
    "details": [],
}


def _strict_json_guard() -> dict[str, Any]:
    body = json.dumps(STRICT_JSON_GUARD_REPLY, separators=(",", ":"))
    code = STRICT_JSON_GUARD_LUA % {"namespace": STRICT_JSON_NAMESPACE, "body": _lua_string(body)}
    return _lua(STRICT_JSON_GUARD_FILTER, code)


def _strict_json_enabled(env: Mapping[str, str]) -> bool:
    """``EDGE_STRICT_JSON``: ``on`` (default) or ``off`` (only to measure the filters' cost: unknown fields
    are then dropped silently and whole-body routes take query parameters again)."""
    value = _env(env, "EDGE_STRICT_JSON", "on")
    if value not in ("on", "off"):
        raise ValueError(f"EDGE_STRICT_JSON={value!r} must be on or off")
    return value == "on"


def _transcoder(descriptor: Path, methods: list[Method], env: Mapping[str, str]) -> dict[str, Any]:
    return {
        "name": "envoy.filters.http.grpc_json_transcoder",
        "typed_config": {
            "@type": TYPE_URL + "envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder",
            "proto_descriptor": str(descriptor),
            "services": sorted({m.service for m in methods}),
            "match_incoming_request_route": False,
            "auto_mapping": False,
            "convert_grpc_status": True,
            "print_options": {
                "add_whitespace": False,
                "always_print_primitive_fields": True,
                "always_print_enums_as_ints": False,
                "preserve_proto_field_names": False,
            },
            "request_validation_options": {
                "reject_unknown_method": True,
                "reject_unknown_query_parameters": True,
                "reject_binding_body_field_collisions": True,
            },
            "case_insensitive_enum_parsing": False,
            "max_request_body_size": _body_limit(env),
            "max_response_body_size": 8388608,
        },
    }


def _otlp_endpoint(env: Mapping[str, str]) -> str:
    return _env(env, "OTEL_EXPORTER_OTLP_ENDPOINT", "")


def _tracing(env: Mapping[str, str]) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """OpenTelemetry spans of every request, over OTLP/gRPC to ``OTEL_EXPORTER_OTLP_ENDPOINT`` (the variable
    the services read), and the ``otlp`` cluster; nothing when it is unset. Envoy continues a client's
    ``traceparent`` or starts the trace, and sends the upstream its own span as ``traceparent``."""
    endpoint = _otlp_endpoint(env)
    if not endpoint:
        return None, []
    url = urlsplit(endpoint)
    if url.scheme not in ("https", "http") or not url.hostname or url.path not in ("", "/"):
        raise ValueError(f"OTEL_EXPORTER_OTLP_ENDPOINT={endpoint!r} must be an http(s)://host:port URL")
    tls = url.scheme == "https"
    cluster: dict[str, Any] = {
        "name": "otlp",
        "type": "STATIC" if _is_ip(url.hostname) else "STRICT_DNS",
        "dns_lookup_family": "V4_PREFERRED",
        "connect_timeout": _duration(env, "EDGE_CONNECT_TIMEOUT", "1s"),
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": TYPE_URL + "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        },
        "load_assignment": {
            "cluster_name": "otlp",
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {
                                    "socket_address": {
                                        "address": url.hostname,
                                        "port_value": url.port or (443 if tls else 4317),
                                    }
                                }
                            }
                        }
                    ]
                }
            ],
        },
    }
    if tls:
        cluster["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": TYPE_URL + "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "sni": url.hostname,
                "common_tls_context": {
                    "alpn_protocols": ["h2"],
                    "validation_context": {
                        "trusted_ca": {"filename": _env(env, "EDGE_OTLP_CA_FILE", DEFAULT_CA_FILE)},
                        "match_typed_subject_alt_names": [
                            {"san_type": "DNS", "matcher": {"exact": url.hostname}}
                        ],
                    },
                },
            },
        }
    tracing = {
        "random_sampling": {"value": _int(env, "EDGE_TRACE_SAMPLING_PERCENT", 100, 0, 100)},
        "provider": {
            "name": "envoy.tracers.opentelemetry",
            "typed_config": {
                "@type": TYPE_URL + "envoy.config.trace.v3.OpenTelemetryConfig",
                "grpc_service": {"envoy_grpc": {"cluster_name": "otlp"}, "timeout": "1s"},
                "service_name": "edge",
            },
        },
    }
    return tracing, [cluster]


def render(env: Mapping[str, str], descriptor_out: Path | None = None) -> dict[str, Any]:
    """Build the whole Envoy bootstrap from the environment.

    ``descriptor_out`` is where a descriptor set extended with the google.rpc status types is written
    when ``ENVOY_DESCRIPTOR`` lacks them (see :func:`with_status_types`); None renders without writing.
    """
    source = Path(_env(env, "ENVOY_DESCRIPTOR", str(DEFAULT_DESCRIPTOR))).resolve()
    if not source.is_file():
        raise FileNotFoundError(f"descriptor set {source} does not exist (run `make gen`)")
    methods = load_public_methods(source)
    descriptor = with_status_types(source, descriptor_out)
    # Rendering for another machine (a Kubernetes ConfigMap): the descriptor will be mounted elsewhere.
    mounted = _env(env, "ENVOY_DESCRIPTOR_MOUNT", "")
    if mounted:
        if descriptor != source:
            raise ValueError("ENVOY_DESCRIPTOR_MOUNT needs a descriptor set that has google/rpc/status.proto")
        descriptor = Path(mounted)
    ups = upstreams(env, methods)
    strict = strict_json(source, methods) if _strict_json_enabled(env) else None
    jwt_authn, identity_clusters = _jwt_authn(env)
    tracing, tracing_clusters = _tracing(env)
    edge_tls = _edge_tls(env)
    hcm = {
        "@type": TYPE_URL
        + "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "edge",
        "codec_type": "AUTO",  # HTTP/1.1 REST and HTTP/2 (h2c prior knowledge) gRPC on one port
        "use_remote_address": True,
        "normalize_path": True,
        "merge_slashes": True,
        "path_with_escaped_slashes_action": "REJECT_REQUEST",
        "server_name": "tronpay-edge",
        # Every client is external: Envoy sets its own x-request-id (passed to services as metadata,
        # logged by both sides) and returns it so a caller can quote it.
        "preserve_external_request_id": False,
        "always_set_request_id_in_response": True,
        "request_headers_timeout": "10s",
        "stream_idle_timeout": "300s",
        "common_http_protocol_options": {
            "idle_timeout": "300s",
            "headers_with_underscores_action": "REJECT_REQUEST",
        },
        # Envoy's edge recommendations: bounded HTTP/2 windows and streams per client connection.
        "http2_protocol_options": {
            "max_concurrent_streams": 100,
            "initial_stream_window_size": 65536,
            "initial_connection_window_size": 1048576,
        },
        "access_log": _access_log(env),
        **({"tracing": tracing} if tracing else {}),
        "local_reply_config": _local_reply_config(),
        "route_config": {
            "name": "edge",
            "max_direct_response_body_size_bytes": DOCS_MAX_BYTES,
            "virtual_hosts": [
                {
                    "name": "tronpay",
                    "domains": ["*"],
                    "routes": [
                        *(
                            _route(m, env, unguarded=strict is not None and m.grpc_path not in strict.rpcs)
                            for m in methods
                        ),
                        *_docs_routes(env),
                        *_discovery_routes(env, guarded=strict is not None),
                    ],
                }
            ],
        },
        # Identity first (an unauthenticated request costs a header check), then the body and the transcoder,
        # then authorisation and rate limits on the route of the gRPC method the request resolved to.
        "http_filters": [
            _strip_edge_headers(),
            jwt_authn,
            _roles_header(),
            _buffer(env),
            *([_strict_json_filter(strict)] if strict else []),
            _transcoder(descriptor, methods, env),
            *([_strict_json_guard()] if strict else []),
            _rbac(methods),
            _rate_limit(env),
            {
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": TYPE_URL + "envoy.extensions.filters.http.router.v3.Router"},
            },
        ],
    }
    return {
        "node": {"id": "tronpay-edge", "cluster": "tronpay-edge"},
        # A hard cap on client connections, so a flood cannot exhaust file descriptors or memory.
        "overload_manager": {
            "resource_monitors": [
                {
                    "name": "envoy.resource_monitors.global_downstream_max_connections",
                    "typed_config": {
                        "@type": TYPE_URL + "envoy.extensions.resource_monitors.downstream_connections.v3."
                        "DownstreamConnectionsConfig",
                        "max_active_downstream_connections": _int(
                            env, "EDGE_MAX_CONNECTIONS", 10000, 1, 10_000_000
                        ),
                    },
                }
            ]
        },
        "admin": {
            "address": {
                "socket_address": {"address": "127.0.0.1", "port_value": _port(env, "ADMIN_PORT", 9901)}
            },
        },
        "static_resources": {
            "listeners": [
                {
                    "name": "edge",
                    "per_connection_buffer_limit_bytes": 32768,
                    "address": {
                        "socket_address": {
                            "address": _env(env, "EDGE_ADDRESS", "0.0.0.0"),
                            "port_value": _port(env, "EDGE_PORT", 8080),
                        }
                    },
                    "filter_chains": [
                        {
                            "filters": [
                                {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}
                            ],
                            **({"transport_socket": edge_tls} if edge_tls else {}),
                        }
                    ],
                }
            ],
            "clusters": [*(_cluster(u, env) for u in ups), *identity_clusters, *tracing_clusters],
        },
    }


def write(env: Mapping[str, str], out: Path) -> Path:
    """Render and write the config atomically; return its path."""
    config = render(env, descriptor_out=out.with_name(out.stem + ".descriptor.pb"))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(config, indent=2) + "\n")
    tmp.replace(out)
    return out


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: render to --out (default ENVOY_CONFIG_OUT or .build/envoy/envoy.json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("ENVOY_CONFIG_OUT") or DEFAULT_OUT))
    args = parser.parse_args(argv)
    try:
        path = write(os.environ, args.out)
    except (ValueError, FileNotFoundError) as exc:
        print(f"envoy/render.py: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
