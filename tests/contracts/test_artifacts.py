"""The committed contract artifacts are exactly what the pinned compiler produces from contracts/src."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "contracts" / "artifacts"
SOURCES = ROOT / "contracts" / "src"


@pytest.fixture(scope="module")
def fresh_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("node") is None:
        pytest.fail("node is required to rebuild the contracts")
    out = tmp_path_factory.mktemp("artifacts")
    subprocess.run(
        ["node", str(ROOT / "contracts" / "build.mjs"), str(out)], cwd=ROOT, check=True, capture_output=True
    )
    return out


def test_rebuild_is_byte_identical(fresh_build: Path) -> None:
    committed = sorted(p.name for p in ARTIFACTS.glob("*.json"))
    rebuilt = sorted(p.name for p in fresh_build.glob("*.json"))
    assert committed == rebuilt, "artifact set differs: run `make contracts` and commit"
    for name in committed:
        assert (ARTIFACTS / name).read_bytes() == (fresh_build / name).read_bytes(), name


def test_every_contract_has_an_artifact() -> None:
    """Each non-abstract contract has one; abstract contracts and interfaces have none (nothing to deploy)."""
    declared = set()
    for sol in SOURCES.glob("*.sol"):
        declared |= set(re.findall(r"^contract (\w+)", sol.read_text(), re.MULTILINE))
    assert declared >= {"TetherToken", "PayoutRouterV0", "PayoutRouterKYC"}
    assert {p.stem for p in ARTIFACTS.glob("*.json")} == declared


def test_token_artifact_shape() -> None:
    art = json.loads((ARTIFACTS / "TetherToken.json").read_text())
    assert art["compiler"]["version"].startswith("0.8.30+")
    assert art["compiler"]["settings"]["optimizer"]["enabled"] is True
    assert art["compiler"]["settings"]["evmVersion"] == "london"
    functions = {e["name"] for e in art["abi"] if e["type"] == "function"}
    assert {
        "name",
        "symbol",
        "decimals",
        "totalSupply",
        "balanceOf",
        "transfer",
        "approve",
        "transferFrom",
        "allowance",
        "owner",
        "transferOwnership",
        "addBlackList",
        "removeBlackList",
        "destroyBlackFunds",
        "isBlackListed",
        "getBlackListStatus",
        "pause",
        "unpause",
        "paused",
        "issue",
        "redeem",
    } <= functions
    events = {e["name"] for e in art["abi"] if e["type"] == "event"}
    assert {"Transfer", "Approval", "Issue", "Redeem"} <= events
    # Standard TRC20 selectors (tron-protocol.md §4).
    ids = art["methodIdentifiers"]
    assert ids["transfer(address,uint256)"] == "a9059cbb"
    assert ids["transferFrom(address,address,uint256)"] == "23b872dd"
    assert ids["balanceOf(address)"] == "70a08231"
    bytes.fromhex(art["bytecode"])
    bytes.fromhex(art["deployedBytecode"])


def _abi(name: str) -> dict[str, dict]:
    art = json.loads((ARTIFACTS / f"{name}.json").read_text())
    return {f"{e['type']}:{e['name']}": e for e in art["abi"] if "name" in e}


def _types(entry: dict) -> list[str]:
    return [i["type"] for i in entry["inputs"]]


def test_payout_router_abi_entry_points() -> None:
    """The entry points and events the payout-router service builds on (contracts/README.md)."""
    v0, kyc = _abi("PayoutRouterV0"), _abi("PayoutRouterKYC")
    assert _types(v0["function:disburse"]) == ["bytes32", "address", "uint256"]
    assert _types(v0["function:disburseBatch"]) == ["bytes32", "bytes32[]", "uint256[]"]
    # No tuples anywhere: TRON's on-chain ABI (getcontract) has no tuple components.
    kyc_single = ["bytes32", "address", "uint256", "bytes32", "uint256", "bytes32", "bytes32"]
    assert _types(kyc["function:disburseKYC"]) == kyc_single
    assert _types(kyc["function:disburseBatchKYC"]) == ["bytes32", "bytes32[]", "uint256[]", "bytes32[]"]
    assert not [
        e for e in json.loads((ARTIFACTS / "PayoutRouterKYC.json").read_text())["abi"] if "tuple" in str(e)
    ]
    assert "function:disburse" not in kyc and "function:disburseBatch" not in kyc  # no non-KYC path
    for abi in (v0, kyc):
        assert _types(abi["event:Paid"]) == ["bytes32", "address", "uint256"]
        assert _types(abi["event:PayoutFailed"]) == ["bytes32", "address", "uint256", "uint8"]
        assert _types(abi["event:AlreadyPaid"]) == ["bytes32", "address", "uint256"]
        assert _types(abi["event:BatchDisbursed"]) == ["bytes32", "uint256", "uint256", "uint256", "uint256"]
        assert _types(abi["event:LimitsChanged"]) == ["uint256"] * 4
        assert {"setLimits", "setMaxBatchSize", "pause", "unpause", "grantRole", "emergencyWithdraw"} <= {
            k.split(":")[1] for k in abi if k.startswith("function:")
        }
    assert _types(kyc["function:kycMessage"]) == ["address", "bytes32", "uint256"]
