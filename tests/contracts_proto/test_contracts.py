"""Contract checks: gen freshness, buf lint/format/breaking, documented REST bindings, request_id, validation.

The documented endpoints of the foundation issue are written out below together with the RPC each one maps
to; the test compares them with the google.api.http rules in the committed Envoy descriptor
(gen/envoy/tronpay.pb), in both directions, so an endpoint can neither go missing nor appear undocumented.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import protovalidate
import pytest
from buf.validate import validate_pb2
from google.api import annotations_pb2, field_behavior_pb2, http_pb2
from google.protobuf import descriptor, descriptor_pb2
from tronpay.common.v1 import common_pb2
from tronpay.payment_gateway.v1 import payment_gateway_pb2
from tronpay.payout_router.v1 import payout_router_pb2
from tronpay.tron_client.v1 import tron_client_pb2
from tronpay.trx_staking.v1 import trx_staking_pb2
from tronpay.usdt_manager.v1 import usdt_manager_pb2
from tronpay.wallet_manager.v1 import wallet_manager_pb2

REPO = Path(__file__).resolve().parents[2]
DESCRIPTOR_SET = REPO / "gen" / "envoy" / "tronpay.pb"
SERVICE_MODULES = {
    "tron_client": tron_client_pb2,
    "wallet_manager": wallet_manager_pb2,
    "usdt_manager": usdt_manager_pb2,
    "payout_router": payout_router_pb2,
    "trx_staking": trx_staking_pb2,
    "payment_gateway": payment_gateway_pb2,
}
ADDRESS = "TLa2f6VPqDgRE67v1736s7bJ8Ray5wYjU7"

TC = "tronpay.tron_client.v1.TronClientService"
WM = "tronpay.wallet_manager.v1.WalletManagerService"
UM = "tronpay.usdt_manager.v1.UsdtManagerService"
PR = "tronpay.payout_router.v1.PayoutRouterService"
TS = "tronpay.trx_staking.v1.TrxStakingService"
PG = "tronpay.payment_gateway.v1.PaymentGatewayService"

# (HTTP method, path template) -> fully qualified RPC. The paths are the list, verbatim.
DOCUMENTED: dict[tuple[str, str], str] = {
    ("GET", "/api/v1/tron/network/info"): f"{TC}.GetNetworkInfo",
    ("GET", "/api/v1/tron/network/status"): f"{TC}.GetNetworkStatus",
    ("GET", "/api/v1/tron/network/height"): f"{TC}.GetNetworkHeight",
    ("GET", "/api/v1/tron/network/fees"): f"{TC}.GetNetworkFees",
    ("GET", "/api/v1/wallets"): f"{WM}.ListWallets",
    ("POST", "/api/v1/wallets"): f"{WM}.CreateWallet",
    ("GET", "/api/v1/wallets/{wallet_id}"): f"{WM}.GetWallet",
    ("PUT", "/api/v1/wallets/{wallet_id}"): f"{WM}.UpdateWallet",
    ("DELETE", "/api/v1/wallets/{wallet_id}"): f"{WM}.DeleteWallet",
    ("GET", "/api/v1/wallets/{wallet_id}/balance"): f"{WM}.GetWalletBalance",
    ("GET", "/api/v1/wallets/{wallet_id}/transactions"): f"{WM}.ListWalletTransactions",
    ("POST", "/api/v1/usdt/transfer"): f"{UM}.CreateTransfer",
    ("GET", "/api/v1/usdt/balance/{address}"): f"{UM}.GetBalance",
    ("GET", "/api/v1/usdt/transactions/{address}"): f"{UM}.ListTransactions",
    ("POST", "/api/v1/usdt/approve"): f"{UM}.Approve",
    ("GET", "/api/v1/usdt/allowance"): f"{UM}.GetAllowance",
    ("POST", "/api/v1/payouts/initiate"): f"{PR}.InitiatePayout",
    ("GET", "/api/v1/payouts/{payout_id}"): f"{PR}.GetPayout",
    ("POST", "/api/v1/payouts/batch"): f"{PR}.CreatePayoutBatch",
    ("GET", "/api/v1/payouts/history"): f"{PR}.ListPayouts",
    ("POST", "/api/v1/payouts/cancel"): f"{PR}.CancelPayout",
    ("POST", "/api/v1/staking/stake"): f"{TS}.Stake",
    ("POST", "/api/v1/staking/unstake"): f"{TS}.Unstake",
    ("GET", "/api/v1/staking/status/{address}"): f"{TS}.GetStakingStatus",
    ("GET", "/api/v1/staking/rewards/{address}"): f"{TS}.GetStakingRewards",
    ("POST", "/api/v1/staking/withdraw"): f"{TS}.Withdraw",
    ("POST", "/api/v1/payments/process"): f"{PG}.CreatePayment",
    ("GET", "/api/v1/payments/{payment_id}"): f"{PG}.GetPayment",
    ("POST", "/api/v1/payments/refund"): f"{PG}.RefundPayment",
    ("GET", "/api/v1/payments/reconciliation"): f"{PG}.GetReconciliation",
    ("POST", "/api/v1/payments/webhook"): f"{PG}.ReceiveWebhook",
}

# RPCs whose name starts with one of these verbs only read; every other RPC mutates state.
READ_VERBS = ("Get", "List", "Stream", "Estimate", "TriggerConstant", "Verify", "Check", "Build")
# Mutating RPCs whose request_id may be empty: the sender cannot supply one.
OPTIONAL_REQUEST_ID = {
    f"{PG}.ReceiveWebhook",  # third-party sender; the event id in the body is the key
}


def _make(*targets: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *targets], cwd=REPO, capture_output=True, text=True
    )


def _descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    return descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes())


def _http_bindings() -> dict[tuple[str, str], tuple[str, http_pb2.HttpRule]]:
    bindings: dict[tuple[str, str], tuple[str, http_pb2.HttpRule]] = {}
    for file in _descriptor_set().file:
        if not file.package.startswith("tronpay."):
            continue
        for service in file.service:
            for method in service.method:
                if not method.options.HasExtension(annotations_pb2.http):
                    continue
                rule = method.options.Extensions[annotations_pb2.http]
                assert not rule.additional_bindings, f"{method.name}: additional bindings are not documented"
                verb = rule.WhichOneof("pattern")
                assert verb is not None
                key = (verb.upper(), getattr(rule, verb))
                assert key not in bindings, f"{key} is bound twice"
                bindings[key] = (f"{file.package}.{service.name}.{method.name}", rule)
    return bindings


def _all_methods() -> list[descriptor.MethodDescriptor]:
    return [
        m
        for mod in SERVICE_MODULES.values()
        for s in mod.DESCRIPTOR.services_by_name.values()
        for m in s.methods
    ]


# -- tool checks ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", ["gen-check", "proto-lint", "proto-breaking"])
def test_make_target_passes(target: str) -> None:
    proc = _make(target)
    assert proc.returncode == 0, f"make {target} failed:\n{proc.stdout}\n{proc.stderr}"


def test_generated_packages_import_from_any_cwd(tmp_path: Path) -> None:
    code = "; ".join(f"import tronpay.{name}.v1.{name}_pb2_grpc" for name in SERVICE_MODULES)
    code += "; import tronpay.common.v1.common_pb2, buf.validate.validate_pb2"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_validate_proto_is_not_vendored() -> None:
    """buf/validate/validate.proto comes from the installed protovalidate at build time, never from git."""
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert "validate.proto" not in tracked
    assert not [f for f in tracked.splitlines() if f.startswith(("google/", "proto/google/", "proto/buf/"))]
    assert "AddSerializedFile(_serialized)" in (REPO / "gen/buf/validate/validate_pb2.py").read_text()


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway clone of the committed repository, where contract changes are tried out."""
    path = tmp_path_factory.mktemp("clone") / "repo"
    subprocess.run(["git", "clone", "-q", str(REPO), str(path)], check=True)
    (path / "node_modules").symlink_to(REPO / "node_modules")
    return path


def _breaking_in(clone: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "tools/protogen.py", "breaking"], cwd=clone, capture_output=True, text=True
    )


def test_breaking_check_catches_a_breaking_change(clone: Path) -> None:
    proto = clone / "proto/tronpay/usdt_manager/v1/usdt_manager.proto"
    original = proto.read_text()
    try:
        proto.write_text(original.replace("int64 amount = 5 [(buf.validate.field).int64.gt = 0];", ""))
        assert proto.read_text() != original
        proc = _breaking_in(clone)
        assert proc.returncode != 0, proc.stdout + proc.stderr
        assert "comparing with HEAD" in proc.stdout
    finally:
        proto.write_text(original)


def test_breaking_check_accepts_an_added_field(clone: Path) -> None:
    proto = clone / "proto/tronpay/usdt_manager/v1/usdt_manager.proto"
    original = proto.read_text()
    try:
        proto.write_text(
            original.replace(
                "message GetBalanceRequest {", "message GetBalanceRequest {\n  // New.\n  bool extra = 99;", 1
            )
        )
        proc = _breaking_in(clone)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    finally:
        proto.write_text(original)


def _tool_in(clone: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "tools/protogen.py", *args], cwd=clone, capture_output=True, text=True
    )


def test_lint_catches_a_missing_comment_and_bad_format(clone: Path) -> None:
    proto = clone / "proto/tronpay/trx_staking/v1/trx_staking.proto"
    original = proto.read_text()
    try:
        proto.write_text(original.replace("  // Address.\n  string address = 1", "  string address = 1", 1))
        proc = _tool_in(clone, "lint")
        assert proc.returncode != 0 and "should have a non-empty comment" in proc.stdout, proc.stdout
        proto.write_text(original.replace("message StakingStatus {", "message   StakingStatus{", 1))
        proc = _tool_in(clone, "lint")
        assert proc.returncode != 0 and "format proto -d --exit-code: FAILED" in proc.stdout, proc.stdout
    finally:
        proto.write_text(original)


def test_gen_check_catches_stale_code(clone: Path) -> None:
    generated = clone / "gen/tronpay/trx_staking/v1/trx_staking_pb2.py"
    original = generated.read_bytes()
    try:
        generated.write_bytes(original + b"# edited\n")
        proc = _tool_in(clone, "check")
        assert (
            proc.returncode == 1 and "stale:   gen/tronpay/trx_staking/v1/trx_staking_pb2.py" in proc.stderr
        )
    finally:
        generated.write_bytes(original)
    assert _tool_in(clone, "check").returncode == 0


# -- REST surface ------------------------------------------------------------------------------------------
def test_every_documented_endpoint_is_bound_exactly() -> None:
    bindings = _http_bindings()
    actual = {key: rpc for key, (rpc, _) in bindings.items()}
    missing = {k: v for k, v in DOCUMENTED.items() if actual.get(k) != v}
    extra = {k: v for k, v in actual.items() if k not in DOCUMENTED}
    assert not missing, f"documented endpoints not bound as expected: {missing}"
    assert not extra, f"REST bindings that are not documented: {extra}"


def test_bodies_follow_the_method() -> None:
    for (verb, path), (rpc, rule) in _http_bindings().items():
        if verb in ("GET", "DELETE"):
            assert rule.body == "", f"{verb} {path} ({rpc}) must not have a body"
        elif rpc.endswith(".ReceiveWebhook"):
            assert rule.body == "body", "the incoming webhook keeps its raw body (google.api.HttpBody)"
        else:
            assert rule.body == "*", f"{verb} {path} ({rpc}) must take the whole request as body"


def test_path_variables_are_request_fields() -> None:
    by_name = {m.full_name: m for m in _all_methods()}
    for (_, path), (rpc, _) in _http_bindings().items():
        method = by_name[rpc]
        for segment in path.split("/"):
            if segment.startswith("{"):
                name = segment.strip("{}")
                field = method.input_type.fields_by_name.get(name)
                assert field is not None and field.type == field.TYPE_STRING, f"{rpc}: {{{name}}}"


def test_envoy_descriptor_has_error_detail_types() -> None:
    names = {f.name for f in _descriptor_set().file}
    assert {"google/rpc/status.proto", "google/rpc/error_details.proto", "google/api/httpbody.proto"} <= names


# -- conventions -------------------------------------------------------------------------------------------
def _rules(field: descriptor.FieldDescriptor) -> Any:
    """The field's buf.validate.FieldRules."""
    return field.GetOptions().Extensions[validate_pb2.field]


def _output_only(field: descriptor.FieldDescriptor) -> bool:
    behaviors = field.GetOptions().Extensions[field_behavior_pb2.field_behavior]
    return field_behavior_pb2.OUTPUT_ONLY in behaviors


def test_every_mutating_rpc_has_request_id() -> None:
    mutating = [m for m in _all_methods() if not m.name.startswith(READ_VERBS)]
    assert len(mutating) > 25
    for method in mutating:
        field = method.input_type.fields_by_name.get("request_id")
        assert field is not None, f"{method.full_name} mutates but has no request_id"
        assert field.type == field.TYPE_STRING
        rules = _rules(field)
        assert rules.string.pattern, f"{method.full_name}.request_id has no validation rule"
        optional = rules.ignore == validate_pb2.IGNORE_IF_ZERO_VALUE
        assert optional == (method.full_name in OPTIONAL_REQUEST_ID), method.full_name


def test_http_mutations_are_not_read_verbs() -> None:
    for (verb, _), (rpc, _) in _http_bindings().items():
        assert (verb == "GET") == rpc.rsplit(".", 1)[1].startswith(READ_VERBS), rpc


def _request_messages() -> list[descriptor.Descriptor]:
    out: list[descriptor.Descriptor] = []
    for mod in SERVICE_MODULES.values():
        out += [m for name, m in mod.DESCRIPTOR.message_types_by_name.items() if name.endswith("Request")]
    return out


def _walk(message: descriptor.Descriptor, seen: set[str]) -> list[descriptor.FieldDescriptor]:
    """Fields of message and of the messages it contains (our packages only)."""
    if message.full_name in seen or not message.full_name.startswith("tronpay."):
        return []
    seen.add(message.full_name)
    fields = list(message.fields)
    for f in message.fields:
        if f.message_type is not None:
            fields += _walk(f.message_type, seen)
    return fields


def test_request_fields_with_a_constraint_are_annotated() -> None:
    """Addresses, ids, amounts and page sizes reachable from a request message carry protovalidate rules."""
    address_pattern = "^T[1-9A-HJ-NP-Za-km-z]{33}$"
    checked = 0
    for request in _request_messages():
        for field in _walk(request, set()):
            owner = field.containing_type
            assert owner is not None
            if owner.GetOptions().map_entry or _output_only(field):
                continue
            rules = _rules(field)
            name = field.name
            where = f"{owner.full_name}.{name}"
            if name.endswith("address") and field.type == field.TYPE_STRING:
                if field.label == field.LABEL_REPEATED:  # type: ignore[attr-defined]
                    assert rules.repeated.items.string.pattern == address_pattern, where
                else:
                    assert rules.string.pattern == address_pattern, where
                checked += 1
            elif name.endswith("addresses"):
                assert rules.repeated.items.string.pattern == address_pattern, where
                checked += 1
            elif name == "page_size":
                assert rules.int32.lte == 1000 and rules.int32.gte == 0, where
                checked += 1
            elif name == "page_token":
                assert rules.string.max_len > 0, where
                checked += 1
            elif (name.startswith("amount") or name.endswith("_sun")) and field.type == field.TYPE_INT64:
                assert rules.int64.HasField("gt") or rules.int64.HasField("gte"), where
                checked += 1
            elif name.endswith("_id") and field.type == field.TYPE_STRING:
                assert rules.string.pattern or rules.string.max_len, where
                checked += 1
    assert checked > 100


def test_amounts_are_int64_and_times_are_timestamps() -> None:
    for mod in [*SERVICE_MODULES.values()]:
        for message in mod.DESCRIPTOR.message_types_by_name.values():
            for field in _walk(message, set()):
                if field.name.startswith("amount") or field.name.endswith("_sun"):
                    assert field.type == field.TYPE_INT64, field.full_name
                if field.name.endswith("_time"):
                    assert field.message_type is not None, field.full_name
                    assert field.message_type.full_name == "google.protobuf.Timestamp", field.full_name
                assert field.type not in (field.TYPE_FLOAT, field.TYPE_DOUBLE) or field.name == "score", field


def test_state_enums_start_unspecified() -> None:
    for mod in SERVICE_MODULES.values():
        enums = list(mod.DESCRIPTOR.enum_types_by_name.values())
        for message in mod.DESCRIPTOR.message_types_by_name.values():
            enums += list(message.enum_types)
        for enum in enums:
            assert enum.values_by_number[0].name.endswith("_UNSPECIFIED"), enum.full_name


# -- runtime validation (protovalidate) ----------------------------------------------------------------------
def _violations(message: object) -> set[tuple[str, str]]:
    out = set()
    for v in protovalidate.collect_violations(message):  # type: ignore[arg-type]
        assert v.proto.field is not None
        path = ".".join(e.field_name for e in v.proto.field.elements)
        out.add((path, v.proto.rule_id))
    return out


def test_valid_request_passes() -> None:
    msg = usdt_manager_pb2.CreateTransferRequest(
        request_id="0b6f9d2e-3f0e-4d52-9d0c-2b1f6f0a7e11",
        wallet_id="w1",
        to_address=ADDRESS,
        amount=1_000_000,
    )
    protovalidate.validate(msg)


def test_invalid_address_is_rejected() -> None:
    for bad in (
        "",
        "TLa2f6VPqDgRE67v1736s7bJ8Ray5wYjU",
        "0x41a614f803b6fd780986a42c78ec9c7f77e6ded13c",
        "TLa2f6VPqDgRE67v1736s7bJ8Ray5wYjU0",
    ):
        assert _violations(usdt_manager_pb2.GetBalanceRequest(address=bad)) == {("address", "string.pattern")}
    watch = tron_client_pb2.WatchAddressesRequest(
        request_id="w-1", addresses=[ADDRESS, "nope"], watcher="payment-gateway"
    )
    assert _violations(watch) == {("addresses", "string.pattern")}


def test_tron_client_mutations_require_request_id() -> None:
    for msg in (
        tron_client_pb2.BroadcastTransactionRequest(transaction=common_pb2.Transaction(raw_data=b"x")),
        tron_client_pb2.WatchAddressesRequest(addresses=[ADDRESS], watcher="payment-gateway"),
        tron_client_pb2.UnwatchAddressesRequest(addresses=[ADDRESS], watcher="payment-gateway"),
    ):
        assert _violations(msg) == {("request_id", "string.pattern")}, type(msg).__name__


@pytest.mark.parametrize("amount", [0, -1])
def test_non_positive_amount_is_rejected(amount: int) -> None:
    msg = payout_router_pb2.InitiatePayoutRequest(
        request_id="r-1",
        wallet_id="w1",
        recipient_address=ADDRESS,
        asset=common_pb2.ASSET_TRX,
        amount=amount,
    )
    assert _violations(msg) == {("amount", "int64.gt")}


def test_page_size_bounds() -> None:
    assert _violations(wallet_manager_pb2.ListWalletsRequest(page_size=1001)) == {
        ("page_size", "int32.gte_lte")
    }
    assert _violations(wallet_manager_pb2.ListWalletsRequest(page_size=-1)) == {
        ("page_size", "int32.gte_lte")
    }
    assert _violations(wallet_manager_pb2.ListWalletsRequest(page_size=1000)) == set()
    assert _violations(wallet_manager_pb2.ListWalletsRequest()) == set()


def test_request_id_required_on_mutations() -> None:
    msg = trx_staking_pb2.StakeRequest(
        wallet_id="w1", amount_sun=1_000_000, resource=common_pb2.RESOURCE_TYPE_ENERGY
    )
    assert ("request_id", "string.pattern") in _violations(msg)


def test_build_transaction_needs_exactly_one_contract() -> None:
    msg = tron_client_pb2.BuildTransactionRequest(owner_address=ADDRESS)
    assert _violations(msg) == {("params", "required")}
    msg.transfer.to_address = ADDRESS
    msg.transfer.amount_sun = 1
    assert _violations(msg) == set()


def test_create_wallet_requires_kind_and_owner() -> None:
    msg = wallet_manager_pb2.CreateWalletRequest(request_id="r-1", wallet=wallet_manager_pb2.Wallet())
    assert _violations(msg) == {("wallet", "wallet.kind_required"), ("wallet", "wallet.owner_id_required")}
    update = wallet_manager_pb2.UpdateWalletRequest(
        request_id="r-2", wallet_id="w1", wallet=wallet_manager_pb2.Wallet(display_name="hot")
    )
    assert _violations(update) == set()


def test_buf_is_pinned() -> None:
    buf = REPO / "node_modules" / ".bin" / "buf"
    assert shutil.which(str(buf)), "run `make npm-deps`"
    out = subprocess.run([str(buf), "--version"], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "1.75.0"
