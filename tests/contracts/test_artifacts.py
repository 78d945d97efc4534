"""The committed contract artifacts are exactly what the pinned compiler produces from contracts/src."""

import json
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


def test_every_source_has_an_artifact() -> None:
    for sol in SOURCES.glob("*.sol"):
        assert (ARTIFACTS / f"{sol.stem}.json").is_file(), sol.name


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
