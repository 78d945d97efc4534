"""Independent cross-check: TronWeb 6.5.1's own local encoder (txJsonToPb) must produce our raw_data_hex
from our transaction JSON, for every contract type and both visible modes. TronWeb runs this check before
signing a node-built transaction, so a mismatch here means TronWeb would refuse our node's JSON."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from devnet import codec
from tests.devnet.test_codec import SAMPLES, sample_transaction

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).parent / "js" / "encode_check.mjs"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (ROOT / "node_modules" / "tronweb").is_dir(),
    reason="node and node_modules/tronweb (make npm-deps) are required",
)


def _tronweb_encode(txs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    proc = subprocess.run(
        ["node", str(SCRIPT)],
        input=json.dumps(txs),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=True,
    )
    out = json.loads(proc.stdout)
    assert len(out) == len(txs)
    return out


@pytest.fixture(scope="module")
def cases() -> list[tuple[str, bool, dict[str, Any]]]:
    out = []
    for visible in (False, True):
        for type_name, msg in SAMPLES:
            for permission_id in (0, 2):
                tx = sample_transaction(type_name, msg, permission_id)
                out.append(
                    (
                        f"{type_name}/visible={visible}/perm={permission_id}",
                        visible,
                        codec.transaction_to_json(tx, visible),
                    )
                )
    return out


def test_tronweb_encodes_our_json_identically(cases: list[tuple[str, bool, dict[str, Any]]]) -> None:
    results = _tronweb_encode([js for _, _, js in cases])
    mismatches = []
    for (label, _, js), res in zip(cases, results, strict=True):
        if "error" in res:
            mismatches.append(f"{label}: TronWeb error {res['error']}")
        elif res["raw_data_hex"].lower() != js["raw_data_hex"] or res["tx_check"] is not True:
            mismatches.append(f"{label}: TronWeb {res['raw_data_hex'].lower()} != ours {js['raw_data_hex']}")
    assert mismatches == []
    assert len(cases) == 2 * 2 * len(SAMPLES)


def test_tronweb_detects_a_tampered_json() -> None:
    """The comparison is meaningful: a changed amount yields a different encoding."""
    tx = sample_transaction(*SAMPLES[0])
    js = codec.transaction_to_json(tx, False)
    js["raw_data"]["contract"][0]["parameter"]["value"]["amount"] += 1
    (res,) = _tronweb_encode([js])
    assert res["raw_data_hex"].lower() != js["raw_data_hex"] and res["tx_check"] is False
