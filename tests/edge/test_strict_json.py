"""Strict request parsing at the edge: unknown JSON fields and query strings on whole-body routes are 400s.

grpc_json_transcoder drops unknown JSON fields silently, so the edge checks REST bodies itself before it
(envoy/strict_json.lua with the schemas envoy/render.py generates from the descriptor set). The six clusters
point at the recording upstream (tests/edge/recorder.py), which keeps the bytes of every request that
arrived: "no upstream call" and "reached the upstream unchanged" are exact. The log test runs the real
wallet-manager behind the edge and scans every log line of both for a key that was sent where it must
not go.
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory, timestamp_pb2
from google.protobuf.message import Message
from tronpay.wallet_manager.v1 import wallet_manager_pb2

from tests.edge.endpoints import DOCUMENTED, Endpoint
from tests.edge.http import Reply, call
from tests.edge.recorder import Recorder, recording_upstream
from tests.edge.test_routing import SAMPLES
from tests.harness.envoy import DEV_KEY, SERVICE_KEYS, Edge, EdgeFactory, envoy_binary, render, start_edge
from tests.harness.pki import pki_dir
from tests.harness.services import ServiceFactory
from tests.wallet_manager.service_support import env as wallet_manager_env

BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
#: The shape of a TRON private key (64 hex digits).
SECRET = "5e" * 31 + "c7"
#: Documented routes with a JSON body. The webhook's body is google.api.HttpBody: raw bytes for the
#: service to verify, never parsed at the edge.
BODY_ENDPOINTS = tuple(e for e in DOCUMENTED if e.verb in ("POST", "PUT") and "webhook" not in e.template)


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    with recording_upstream() as rec:
        yield rec


@pytest.fixture(scope="module")
def edge(
    recorder: Recorder, tmp_path_factory: pytest.TempPathFactory, envoy_descriptor: Path
) -> Iterator[Edge]:
    """An edge whose six services are the recorder."""
    ports = {key: recorder.port for key in SERVICE_KEYS}
    with start_edge(ports, tmp_path_factory.mktemp("strict-edge"), descriptor=envoy_descriptor) as e:
        yield e


@pytest.fixture(scope="module")
def methods(envoy_descriptor: Path) -> dict[str, Any]:
    """'VERB /template' -> the public RPC bound to it."""
    return {f"{m.http_verb.upper()} {m.http_path}": m for m in render.load_public_methods(envoy_descriptor)}


def _request_class(method: Any) -> type[Message]:
    """The generated class of the RPC's request message."""
    importlib.import_module(f"tronpay.{method.cluster}.v1.{method.cluster}_pb2")
    found = descriptor_pool.Default().FindMessageTypeByName(method.input_type)
    return message_factory.GetMessageClass(found)


def _path_fields(template: str, path: str) -> dict[str, str]:
    """The fields a path binds: '/api/v1/wallets/{wallet_id}', '/api/v1/wallets/w1' -> {'wallet_id': 'w1'}."""
    names = re.findall(r"\{(\w+)\}", template)
    pattern = re.sub(r"\{\w+\}", "([^/]+)", template)
    match = re.fullmatch(pattern, path.split("?")[0])
    assert match is not None, (template, path)
    return dict(zip(names, match.groups(), strict=True))


def _send(edge: Edge, endpoint: Endpoint, body: Any, path: str | None = None) -> Reply:
    return call(
        edge.rest_url, endpoint.verb, path or SAMPLES[str(endpoint)][0], body=body, headers=edge.auth()
    )


def _assert_rejected(edge: Edge, recorder: Recorder, reply: Reply) -> dict[str, Any]:
    """A 400 in the edge's JSON error shape that reached no service."""
    assert reply.status == 400, reply.body
    assert reply.content_type.startswith("application/json"), reply.headers
    body: dict[str, Any] = reply.json()
    assert set(body) == {"code", "message", "details"} and body["code"] == 3, body
    assert not recorder.with_request_id(reply.request_id), "the request reached the upstream"
    assert edge.access_entry(reply.request_id)["upstream"] is None
    return body


def _violations(body: dict[str, Any]) -> list[str]:
    (bad_request,) = [d for d in body["details"] if d["@type"] == BAD_REQUEST]
    return [v["field"] for v in bad_request["fieldViolations"]]


def _arrived(recorder: Recorder, reply: Reply, request_class: type[Message]) -> Message:
    (arrived,) = recorder.with_request_id(reply.request_id)
    return request_class.FromString(arrived.request)


# --------------------------------------------------------------------------------------------------
# What is checked


def test_every_documented_body_route_is_checked(envoy_descriptor: Path) -> None:
    methods = render.load_public_methods(envoy_descriptor)
    checked = render.strict_json(envoy_descriptor, methods)
    assert {f"{r.method.http_verb.upper()} {r.method.http_path}" for r in checked.routes} == {
        str(e) for e in BODY_ENDPOINTS
    }
    assert all(r.whole for r in checked.routes)  # every documented body route binds the whole request


@pytest.mark.parametrize("endpoint", BODY_ENDPOINTS, ids=str)
def test_unknown_top_level_field_is_rejected_before_the_upstream(
    edge: Edge, recorder: Recorder, endpoint: Endpoint
) -> None:
    _, sample = SAMPLES[str(endpoint)]
    assert sample is not None
    assert _send(edge, endpoint, sample).status == 200  # the sample itself is fine
    reply = _send(edge, endpoint, {**sample, "displayName": "ops", "bogus_field": {"nested": [1, 2]}})
    body = _assert_rejected(edge, recorder, reply)
    assert _violations(body) == ["displayName", "bogus_field"], body
    assert '"displayName"' in body["message"] and '"bogus_field"' in body["message"], body


@pytest.mark.parametrize(
    ("endpoint", "body", "fields"),
    [
        (
            "POST /api/v1/wallets",
            {"request_id": "r1", "wallet": {"name": "ops", "owner_id": "acme"}},
            ["wallet.name"],  # issue 15's example: "name" instead of "displayName"
        ),
        (
            "PUT /api/v1/wallets/{wallet_id}",
            {"requestId": "r1", "wallet": {"displayName": "ops", "policy": {"dailyLimits": "5"}}},
            ["wallet.policy.dailyLimits"],
        ),
        (
            "POST /api/v1/wallets",
            {"request_id": "r1", "tronlinkProof": {"challengeId": "c", "signature": "s", "sig": "s"}},
            ["tronlinkProof.sig"],
        ),
    ],
)
def test_unknown_nested_field_is_rejected_with_its_path(
    edge: Edge, recorder: Recorder, endpoint: str, body: dict[str, Any], fields: list[str]
) -> None:
    (target,) = [e for e in BODY_ENDPOINTS if str(e) == endpoint]
    error = _assert_rejected(edge, recorder, _send(edge, target, body))
    assert _violations(error) == fields, error
    assert f'unknown field "{fields[0]}" in the JSON body' in error["message"], error


def test_arrays_of_messages_are_checked_per_element(edge: Edge, recorder: Recorder) -> None:
    (batch,) = [e for e in BODY_ENDPOINTS if e.template == "/api/v1/payouts/batch"]
    item = {"recipient_address": "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t", "amount": "1"}
    good = {"request_id": "r1", "wallet_id": "w1", "asset": "ASSET_USDT", "items": [item, item]}
    assert _send(edge, batch, good).status == 200
    bad = {**good, "items": [item, {**item, "memo": "x"}, item, {"recipientAddres": "T"}]}
    error = _assert_rejected(edge, recorder, _send(edge, batch, bad))
    assert _violations(error) == ["items[1].memo", "items[3].recipientAddres"], error
    # Repeated messages inside nested messages too.
    (create,) = [e for e in BODY_ENDPOINTS if e.template == "/api/v1/wallets"]
    limits = [{"asset": "ASSET_TRX", "daily_limit": "5"}, {"asset": "ASSET_TRX", "daily": "5"}]
    body = {"request_id": "r1", "wallet": {"owner_id": "acme", "policy": {"limits": limits}}}
    error = _assert_rejected(edge, recorder, _send(edge, create, body))
    assert _violations(error) == ["wallet.policy.limits[1].daily"], error


def test_maps_well_known_types_and_free_form_values_are_not_looked_into(
    edge: Edge, recorder: Recorder
) -> None:
    """Map keys are data; Duration, Timestamp and FieldMask are strings."""
    (process,) = [e for e in BODY_ENDPOINTS if e.template == "/api/v1/payments/process"]
    _, sample = SAMPLES[str(process)]
    assert sample is not None
    body = {**sample, "metadata": {"any key": "v", "order.ref": "w"}, "ttl": "900s"}
    assert _send(edge, process, body).status == 200
    (update,) = [e for e in BODY_ENDPOINTS if e.verb == "PUT"]
    body = {
        "request_id": "r1",
        "wallet": {"display_name": "ops", "create_time": "2026-01-01T00:00:00Z"},
        "updateMask": "displayName",
    }
    assert _send(edge, update, body).status == 200


# --------------------------------------------------------------------------------------------------
# What passes, and that it passes unchanged


@pytest.mark.parametrize("endpoint", BODY_ENDPOINTS, ids=str)
@pytest.mark.parametrize("names", ["proto", "json"])
def test_valid_bodies_reach_the_upstream_unchanged(
    edge: Edge, recorder: Recorder, methods: dict[str, Any], endpoint: Endpoint, names: str
) -> None:
    method = methods[str(endpoint)]
    request_class = _request_class(method)
    path, sample = SAMPLES[str(endpoint)]
    assert sample is not None
    expected = json_format.ParseDict(sample, request_class())
    body = sample if names == "proto" else json_format.MessageToDict(expected)  # lowerCamelCase keys
    assert (body == sample) is (names == "proto")
    reply = _send(edge, endpoint, body)
    assert reply.status == 200, reply.body
    for name, value in _path_fields(endpoint.template, path).items():
        setattr(expected, name, value)
    assert _arrived(recorder, reply, request_class) == expected


def test_escaped_keys_and_strings_are_decoded_like_the_transcoder_does(
    edge: Edge, recorder: Recorder
) -> None:
    endpoint = next(e for e in BODY_ENDPOINTS if e.template == "/api/v1/wallets")
    body = (
        '{"request_id": "r1", "wall\\u0065t": {'
        '"display\\u005fname": "caf\\u00e9 \\ud83d\\ude00 \\"q\\" \\\\ /", "ownerId": "acme"}}'
    )
    reply = _send(edge, endpoint, body)
    assert reply.status == 200, reply.body
    (call_,) = recorder.with_request_id(reply.request_id)
    arrived = wallet_manager_pb2.CreateWalletRequest.FromString(call_.request)
    assert arrived.wallet.display_name == 'café \U0001f600 "q" \\ /'
    assert arrived.wallet.owner_id == "acme"
    # An escaped spelling of an unknown key is still unknown.
    error = _assert_rejected(edge, recorder, _send(edge, endpoint, '{"request_id": "r1", "n\\u0061me": "x"}'))
    assert _violations(error) == ["name"], error


def test_an_empty_body_passes(edge: Edge, recorder: Recorder) -> None:
    endpoint = next(e for e in BODY_ENDPOINTS if e.template == "/api/v1/payouts/cancel")
    reply = _send(edge, endpoint, None)
    assert reply.status == 200, reply.body
    assert len(recorder.with_request_id(reply.request_id)) == 1


def test_native_grpc_passes_untouched(edge: Edge, recorder: Recorder, methods: dict[str, Any]) -> None:
    """A gRPC client's bytes are not JSON and are not looked at: unknown fields (here field 99) pass."""
    method = methods["POST /api/v1/wallets"]
    request = _request_class(method)(request_id="r1").SerializeToString() + b"\x9a\x06\x03abc"
    with grpc.insecure_channel(edge.grpc_target) as channel:
        _, rpc = channel.unary_unary(method.grpc_path).with_call(
            request, metadata=edge.grpc_auth(), timeout=10
        )
    request_id = dict(rpc.initial_metadata())["x-request-id"]
    (arrived,) = recorder.with_request_id(request_id)
    assert arrived.request == request


def test_reads_and_native_grpc_do_not_run_the_check(
    edge: Edge, recorder: Recorder, methods: dict[str, Any]
) -> None:
    """A matcher skips the script for methods without a checked body and for native gRPC (no Lua at all);
    the guard runs only on routes with a checked body."""

    def executions() -> tuple[int, int]:
        time.sleep(0.2)  # the workers' counters reach the admin
        return (
            edge.stat(f"http.edge.lua.{render.STRICT_JSON_FILTER.rpartition('.')[2]}.executions"),
            edge.stat(f"http.edge.lua.{render.STRICT_JSON_GUARD_FILTER.rpartition('.')[2]}.executions"),
        )

    before = executions()
    for verb, path in [
        ("GET", "/api/v1/wallets"),
        ("GET", "/api/v1/wallets/w1"),
        ("DELETE", "/api/v1/wallets/w1"),
    ]:
        assert call(edge.rest_url, verb, path, headers=edge.auth()).status == 200
    assert executions() == before
    create = methods["POST /api/v1/wallets"]
    with grpc.insecure_channel(edge.grpc_target) as channel:
        channel.unary_unary(create.grpc_path)(b"", metadata=edge.grpc_auth(), timeout=10)
    assert executions() == (before[0], before[1] + 1)  # the guard on its route, which lets gRPC pass
    assert _send(edge, next(e for e in BODY_ENDPOINTS if e.template == "/api/v1/wallets"), {}).status == 200
    assert executions() == (before[0] + 1, before[1] + 2)


# --------------------------------------------------------------------------------------------------
# Malformed JSON, depth, keys that are not names, query strings, path forms


@pytest.mark.parametrize(
    "body",
    [
        '{"request_id": ',
        "{'request_id': 'r1'}",
        '{request_id: "r1"}',
        '{"request_id": "r1",}',
        '{"request_id": "r1"} {}',
        '{"amount": NaN}',
        '{"amount": 01}',
        '{"amount": 1.}',
        '{"amount": .5}',
        '{"amount": 1e}',
        '{"request_id": "a\tb"}',
        '{"request_id": "a\\x"}',
        '{"request_id": "\\u12"}',
        '{"request_id": "r1"',
        "\ufeff{}",
        "   ",
    ],
    ids=repr,
)
def test_malformed_json_is_400(edge: Edge, recorder: Recorder, body: str) -> None:
    endpoint = next(e for e in BODY_ENDPOINTS if e.template == "/api/v1/payouts/initiate")
    error = _assert_rejected(edge, recorder, _send(edge, endpoint, body))
    assert error["message"].startswith("malformed JSON body at offset "), error
    assert error["details"] == [], error


def test_nesting_is_bounded(edge: Edge, recorder: Recorder) -> None:
    endpoint = next(e for e in BODY_ENDPOINTS if e.template == "/api/v1/payouts/initiate")
    limit = render.STRICT_JSON_MAX_DEPTH

    def nested(levels: int) -> str:  # the body object is the first level
        return '{"reference": ' + "[" * (levels - 1) + "]" * (levels - 1) + "}"

    within = _send(edge, endpoint, nested(limit))
    # Past the edge's check: the transcoder's own 400 (a list where a string belongs).
    assert within.status == 400 and "nested deeper" not in within.json()["message"], within.body
    error = _assert_rejected(edge, recorder, _send(edge, endpoint, nested(limit + 1)))
    assert error["message"].endswith(f"nested deeper than {limit} levels"), error
    # Far deeper than any stack would like: refused just the same, and the edge stays up.
    _assert_rejected(edge, recorder, _send(edge, endpoint, "[" * 200_000))
    assert edge.admin("/ready")[0] == 200


@pytest.mark.parametrize("key", [SECRET, "abcdef" * 10, "has space", "ünïcode", ""], ids=repr)
def test_keys_that_are_not_field_names_are_not_echoed(edge: Edge, recorder: Recorder, key: str) -> None:
    endpoint = next(e for e in BODY_ENDPOINTS if e.template == "/api/v1/wallets")
    reply = _send(edge, endpoint, {"request_id": "r1", "wallet": {key: 1}})
    error = _assert_rejected(edge, recorder, reply)
    assert _violations(error) == ["wallet.<key not shown>"], error
    if key:
        assert key not in reply.body.decode(), reply.body


@pytest.mark.parametrize("endpoint", BODY_ENDPOINTS, ids=str)
def test_whole_body_routes_take_no_query_string(edge: Edge, recorder: Recorder, endpoint: Endpoint) -> None:
    path, sample = SAMPLES[str(endpoint)]
    # Even a parameter that names a field of the request (the transcoder would bind it).
    for query in ("request_id=r2", f"private_key={SECRET}", "x"):
        reply = _send(edge, endpoint, sample, path=f"{path}?{query}")
        error = _assert_rejected(edge, recorder, reply)
        assert error["message"] == (
            f"{endpoint.verb} {endpoint.template} takes no query parameters: "
            "the JSON body is the whole request"
        ), error
        assert SECRET not in reply.body.decode()


def test_the_webhook_keeps_its_query_parameters(edge: Edge, recorder: Recorder) -> None:
    """Its body is raw (HttpBody), so it is not parsed, and its query binds the other fields."""
    reply = call(
        edge.rest_url,
        "POST",
        "/api/v1/payments/webhook?source=psp&request_id=r1",
        body='{"not": "checked", "at": ["the", "edge"]}',
        headers=edge.auth(),
    )
    assert reply.status == 200, reply.body
    assert len(recorder.with_request_id(reply.request_id)) == 1


@pytest.mark.parametrize("path", ["/api/v1/wallets/", "/api/v1/wallets/w1/"])
def test_path_forms_the_check_does_not_recognise_are_refused(
    edge: Edge, recorder: Recorder, path: str
) -> None:
    """The transcoder accepts a trailing slash; the body check does not know that form, so the guard after
    the transcoder refuses the unchecked body instead of passing it."""
    verb = "POST" if path.count("/") == 4 else "PUT"
    reply = call(edge.rest_url, verb, path, body={"request_id": "r1", "bogus": 1}, headers=edge.auth())
    error = _assert_rejected(edge, recorder, reply)
    assert error["message"].startswith("the JSON body was not checked"), error
    # A percent-encoded letter is normalised by Envoy before any filter: checked like the plain path.
    reply = call(edge.rest_url, "POST", "/api/v1/wal%6cets", body={"bogus": 1}, headers=edge.auth())
    assert _violations(_assert_rejected(edge, recorder, reply)) == ["bogus"]


# --------------------------------------------------------------------------------------------------
# No key in any log


def test_a_key_sent_where_it_does_not_belong_is_in_no_log(
    service_factory: ServiceFactory, envoy_edge_factory: EdgeFactory
) -> None:
    """Through the real wallet-manager: a private key in a query parameter and in unknown body fields never
    reaches the service, and no line of Envoy's access log, Envoy's log or the service's log has it."""
    wallet_manager = service_factory.start("wallet_manager", env=wallet_manager_env())["wallet_manager"]
    edge = envoy_edge_factory({"wallet_manager": wallet_manager.port}, wait_healthy=("wallet_manager",))
    auth = edge.auth("operator")
    wallet = {"display_name": "ops", "owner_id": "acme", "kind": "KIND_HD"}
    attempts = [
        (f"/api/v1/wallets?private_key={SECRET}", {"request_id": "strict-q1", "wallet": wallet}),
        (f"/api/v1/wallets?privateKey={SECRET}&x={SECRET}", {"request_id": "strict-q2", "wallet": wallet}),
        ("/api/v1/wallets", {"request_id": "strict-b1", "wallet": wallet, "privateKeyHex": SECRET}),
        ("/api/v1/wallets", {"request_id": "strict-b2", "wallet": {**wallet, "seed": SECRET}}),
        ("/api/v1/wallets", {"request_id": "strict-b3", "wallet": {**wallet, SECRET: SECRET}}),
    ]
    for path, body in attempts:
        reply = call(edge.rest_url, "POST", path, body=body, headers=auth)
        assert reply.status == 400, reply.body
        assert SECRET not in reply.body.decode()
        assert edge.access_entry(reply.request_id)["upstream"] is None
    # The same wallet without the key is created: the service and its log are there.
    reply = call(
        edge.rest_url,
        "POST",
        "/api/v1/wallets",
        body={"request_id": "strict-ok", "wallet": wallet},
        headers=auth,
    )
    assert reply.status == 200, reply.body
    assert reply.json()["wallet"]["displayName"] == "ops"
    assert edge.access_entry(reply.request_id)["details"] == "via_upstream"
    time.sleep(0.2)  # Envoy flushes its logs every 50 ms here
    logs = {
        "envoy access log": edge.access_log.read_text(),
        "envoy log": edge.log_path.read_text(errors="replace"),
        "wallet-manager log": wallet_manager.log(),
    }
    assert logs["envoy access log"] and logs["wallet-manager log"]  # Envoy's own log: warnings only
    for name, text in logs.items():
        assert SECRET not in text, name


# --------------------------------------------------------------------------------------------------
# Configuration


def _filters(config: dict[str, Any]) -> list[dict[str, Any]]:
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    filters: list[dict[str, Any]] = hcm["http_filters"]
    return filters


def test_the_checks_sit_around_the_transcoder(envoy_descriptor: Path) -> None:
    names = [f["name"] for f in _filters(render.render({"ENVOY_DESCRIPTOR": str(envoy_descriptor)}))]
    at = names.index("envoy.filters.http.grpc_json_transcoder")
    assert names[at - 2 : at + 2] == [
        "envoy.filters.http.buffer",  # the whole body is there
        render.STRICT_JSON_FILTER,
        "envoy.filters.http.grpc_json_transcoder",
        render.STRICT_JSON_GUARD_FILTER,
    ]


def test_the_guard_runs_only_on_routes_with_a_checked_body(envoy_descriptor: Path) -> None:
    config = render.render({"ENVOY_DESCRIPTOR": str(envoy_descriptor)})
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    (vhost,) = hcm["route_config"]["virtual_hosts"]
    checked = render.strict_json(envoy_descriptor, render.load_public_methods(envoy_descriptor)).rpcs
    for route in vhost["routes"]:
        if "direct_response" in route:  # answered by Envoy (documentation, unknown methods): nothing to guard
            continue
        disabled = route.get("typed_per_filter_config", {}).get(render.STRICT_JSON_GUARD_FILTER, {})
        assert disabled.get("disabled", False) is (route["match"]["path"] not in checked), route["name"]


def test_switched_off_only_by_an_explicit_setting(envoy_descriptor: Path) -> None:
    base = {"ENVOY_DESCRIPTOR": str(envoy_descriptor)}
    off = render.render({**base, "EDGE_STRICT_JSON": "off"})
    names = {f["name"] for f in _filters(off)}
    assert not {render.STRICT_JSON_FILTER, render.STRICT_JSON_GUARD_FILTER} & names
    assert render.STRICT_JSON_GUARD_FILTER not in json.dumps(off)  # no per-route switch for a missing filter
    with pytest.raises(ValueError, match="EDGE_STRICT_JSON"):
        render.render({**base, "EDGE_STRICT_JSON": "false"})


@pytest.mark.parametrize("strict", ["on", "off"])
def test_envoy_validates_the_config_with_and_without_the_check(
    tmp_path: Path, envoy_descriptor: Path, strict: str
) -> None:
    jwks = tmp_path / "jwks.json"  # Envoy reads the JWKS and the certificates while validating
    jwks.write_text(json.dumps(DEV_KEY.jwks()))
    env = {
        "ENVOY_DESCRIPTOR": str(envoy_descriptor),
        "EDGE_JWKS_FILE": str(jwks),
        "TLS_DIR": str(pki_dir()),
        "EDGE_STRICT_JSON": strict,
    }
    path = render.write(env, tmp_path / "envoy.json")
    result = subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", str(path), "--log-level", "error"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _synthetic_descriptor(tmp_path: Path) -> Path:
    """A request with a map of messages, a recursive message, a map of scalars and a Timestamp."""
    file = descriptor_pb2.FileDescriptorProto(
        name="t/v1/t.proto", package="t.v1", syntax="proto3", dependency=["google/protobuf/timestamp.proto"]
    )
    node = file.message_type.add(name="Node")
    node.field.add(
        name="child_node", number=1, type=11, label=1, type_name=".t.v1.Node", json_name="childNode"
    )
    node.field.add(
        name="at", number=2, type=11, label=1, type_name=".google.protobuf.Timestamp", json_name="at"
    )
    request = file.message_type.add(name="Req")
    for entry_name, value in (("NodesEntry", ".t.v1.Node"), ("TagsEntry", "")):
        entry = request.nested_type.add(name=entry_name)
        entry.options.map_entry = True
        entry.field.add(name="key", number=1, type=9, label=1, json_name="key")
        if value:
            entry.field.add(name="value", number=2, type=11, type_name=value, label=1, json_name="value")
        else:
            entry.field.add(name="value", number=2, type=9, label=1, json_name="value")
    request.field.add(
        name="nodes", number=1, type=11, label=3, type_name=".t.v1.Req.NodesEntry", json_name="nodes"
    )
    request.field.add(
        name="tags", number=2, type=11, label=3, type_name=".t.v1.Req.TagsEntry", json_name="tags"
    )
    request.field.add(name="custom", number=3, type=9, label=1, json_name="renamed")
    fds = descriptor_pb2.FileDescriptorSet()
    timestamp = fds.file.add()
    timestamp_pb2.DESCRIPTOR.CopyToProto(timestamp)
    fds.file.append(file)
    path = tmp_path / "t.pb"
    path.write_bytes(fds.SerializeToString())
    return path


def test_schema_generation_covers_maps_recursion_and_well_known_types(tmp_path: Path) -> None:
    method = render.Method("t.v1.S", "Do", "post", "/v1/{name}/things:do", "*", "t.v1.Req")
    with pytest.raises(ValueError, match="not supported"):  # custom verbs are not matched by the check
        render.strict_json(_synthetic_descriptor(tmp_path), [method])
    method = render.Method("t.v1.S", "Do", "post", "/v1/{name}/things", "*", "t.v1.Req")
    spec = render.strict_json(_synthetic_descriptor(tmp_path), [method])
    by_name = {m.name: (position, m) for position, m in enumerate(spec.messages, start=1)}
    (route,) = spec.routes
    assert route.pattern == "^/v1/[^/]+/things$" and route.whole
    request_index, request = by_name["t.v1.Req"]
    assert route.schema == request_index
    node_index, node = by_name["t.v1.Node"]
    entry_index, entry = by_name["t.v1.Req.NodesEntry"]
    assert entry.fields is None and entry.any == node_index  # any key, each value a Node
    assert request.fields == {"nodes": entry_index, "tags": 0, "custom": 0, "renamed": 0}
    assert node.fields == {"child_node": node_index, "childNode": node_index, "at": 0}
    assert "t.v1.Req.TagsEntry" not in by_name and "google.protobuf.Timestamp" not in by_name
    lua = render._strict_json_data(spec)
    assert '["childNode"] = ' + str(node_index) in lua and f"any = {node_index}" in lua
