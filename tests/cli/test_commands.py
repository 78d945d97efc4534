"""`tronpay` end to end: the installed console script against the real services behind Envoy, its on-chain
effects checked with tronpy (an independent client), its --json output parsed, its exit codes."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from services.common.tron.address import private_key_to_address
from tests.cli.conftest import APPROVAL_THRESHOLD, Rig
from tests.payout_router.support import TRX, USDT, fresh_address

USDT_POLICY = {
    "allowedContractTypes": ["CONTRACT_TYPE_TRIGGER_SMART_CONTRACT"],
    "allowUnlistedAssets": True,
    "allowedCallers": ["usdt-manager"],
}


def test_wallets_create_list_get(rig: Rig) -> None:
    address = fresh_address()
    created = rig.tronpay(
        "wallets", "create", "--owner", "cli-wallets", "--kind", "watch-only", "--address", address,
        "--name", "cold store", "--label", "cli", "--json",
    )  # fmt: skip
    assert created.code == 0, created.stderr
    wallet = json.loads(created.stdout)["wallet"]
    assert (
        wallet["address"] == address and wallet["kind"] == "KIND_WATCH_ONLY" and wallet["labels"] == ["cli"]
    )
    listed = rig.tronpay("wallets", "list", "--owner", "cli-wallets", "--json")
    assert listed.code == 0, listed.stderr
    assert [w["walletId"] for w in json.loads(listed.stdout)["wallets"]] == [wallet["walletId"]]
    got = rig.tronpay("wallets", "get", wallet["walletId"], "--json")
    assert got.code == 0 and json.loads(got.stdout)["wallet"] == wallet
    table = rig.tronpay("wallets", "list", "--owner", "cli-wallets")
    assert table.code == 0 and wallet["walletId"] in table.stdout and "cold store" in table.stdout
    missing = rig.tronpay("wallets", "get", "wal_doesnotexist", "--json")
    assert missing.code == 3 and missing.stdout == ""
    error = json.loads(missing.stderr)["error"]
    assert error["status"] == "NOT_FOUND" and error["rpc"] == "WalletManagerService/GetWallet"


def test_usdt_transfer_waits_until_confirmed(rig: Rig) -> None:
    key = secrets.token_hex(32)
    sender = private_key_to_address(bytes.fromhex(key))
    policy = rig.workdir / "usdt-policy.json"
    policy.write_text(json.dumps(USDT_POLICY))
    created = rig.tronpay(
        "wallets", "create", "--owner", "cli-usdt", "--kind", "imported", "--private-key-file", "-",
        "--policy", str(policy), "--json", stdin=key + "\n",
    )  # fmt: skip
    assert created.code == 0, created.stderr
    wallet = json.loads(created.stdout)["wallet"]
    assert wallet["address"] == sender and key not in created.stdout + created.stderr
    for txid in rig.devnet.faucet(sender, trx=200 * TRX, usdt=100 * USDT):
        rig.devnet.wait_for_tx(txid, solid=True)
    recipient = fresh_address()

    sent = rig.tronpay(
        "usdt", "transfer", "--wallet", wallet["walletId"], "--to", recipient, "--amount", "2.5", "--decimal",
        "--wait", "--wait-timeout", "120", "--interval", "0.3", "--json",
    )  # fmt: skip

    assert sent.code == 0, sent.stderr
    body = json.loads(sent.stdout)
    assert body["transfer"]["amount"] == "2500000" and body["transfer"]["toAddress"] == recipient
    assert body["confirmation"]["state"] == "CONFIRMED"
    assert body["confirmation"]["record"]["transferId"] == body["transfer"]["transferId"]
    assert body["confirmation"]["record"]["state"] == "TRANSFER_STATE_FINAL"
    assert "-> CONFIRMED" in sent.stderr
    assert rig.chain.balance(recipient) == 2_500_000  # tronpy, straight from the devnet
    balance = rig.tronpay("usdt", "balance", recipient, "--json")
    assert balance.code == 0 and json.loads(balance.stdout)["balance"] == "2500000"
    too_much = rig.tronpay(
        "usdt", "transfer", "--wallet", wallet["walletId"], "--to", recipient, "--amount", "1000", "--decimal"
    )
    assert too_much.code == 5 and "INSUFFICIENT_TOKEN_BALANCE" in too_much.stderr

    # With the operator certificate the wait reads the transfer itself (GetTransfer): every state on stderr.
    exact = rig.tronpay(
        "usdt", "transfer", "--wallet", wallet["walletId"], "--to", recipient, "--amount", "1",
        "--wait", "--wait-timeout", "120", "--interval", "0.3", "--json", env=rig.operator_env(),
    )  # fmt: skip
    assert exact.code == 0, exact.stderr
    final = json.loads(exact.stdout)["confirmation"]["transfer"]
    assert final["state"] == "OPERATION_STATE_CONFIRMED" and int(final["blockNumber"]) > 0
    assert "-> INCLUDED" in exact.stderr and "-> CONFIRMED" in exact.stderr
    got = rig.tronpay("usdt", "get", final["transferId"], "--json", env=rig.operator_env(), role=None)
    assert got.code == 0, got.stderr
    assert json.loads(got.stdout)["txid"] == final["txid"]
    assert rig.chain.balance(recipient) == 2_500_001
    no_certificate = rig.tronpay("usdt", "get", final["transferId"], env={"TLS_DIR": str(rig.workdir)})
    assert no_certificate.code == 2 and "--tls-dir" in no_certificate.stderr


def _csv(rig: Rig, name: str, text: str) -> Path:
    path = rig.workdir / name
    path.write_text(text)
    return path


def test_payouts_batch_from_csv_is_idempotent(rig: Rig) -> None:
    recipients = [fresh_address() for _ in range(3)]
    amounts = [1_500_000, 2_000_000, 1]
    file = _csv(
        rig,
        "june.csv",
        "recipient,amount,reference\n"
        f"{recipients[0]},1.5,inv-1\n{recipients[1]},2,inv-2\n\n{recipients[2]},0.000001,inv-3\n",
    )
    args = (
        "payouts",
        "batch",
        str(file),
        "--wallet",
        rig.disburser.wallet_id,
        "--decimal",
        "--interval",
        "0.5",
    )

    first = rig.tronpay(*args, "--json")

    assert first.code == 0, first.stderr
    body = json.loads(first.stdout)
    (batch,) = body["batches"]
    assert body["allFinal"] and body["stateCounts"] == {"STATE_CONFIRMED": 3}
    assert [p["recipientAddress"] for p in batch["payouts"]] == recipients
    assert [p["reference"] for p in batch["payouts"]] == ["inv-1", "inv-2", "inv-3"]
    assert [rig.chain.balance(r) for r in recipients] == amounts

    again = rig.tronpay(*args)  # the same file: the same batch, nothing paid twice

    assert again.code == 0, again.stderr
    assert batch["batch"]["batchId"] in again.stdout and "CONFIRMED" in again.stdout
    assert [rig.chain.balance(r) for r in recipients] == amounts
    history = rig.tronpay("payouts", "history", "--batch", batch["batch"]["batchId"], "--json")
    assert history.code == 0
    assert sorted(p["payoutId"] for p in json.loads(history.stdout)["payouts"]) == sorted(
        p["payoutId"] for p in batch["payouts"]
    )


def test_a_bad_csv_line_is_refused_with_its_line_number(rig: Rig) -> None:
    good = fresh_address()
    file = _csv(rig, "bad.csv", f"recipient,amount\n{good},1\nTnotAnAddress,2\n{good},1.0000001\n")
    before = rig.tronpay(
        "payouts", "history", "--wallet", rig.disburser.wallet_id, "--page-size", "1000", "--json"
    )

    refused = rig.tronpay("payouts", "batch", str(file), "--wallet", rig.disburser.wallet_id, "--decimal")

    assert refused.code == 4 and refused.stdout == ""
    assert f"{file}:3: recipient 'TnotAnAddress'" in refused.stderr
    assert f"{file}:4: amount '1.0000001' has more than 6 decimal places" in refused.stderr
    assert "nothing was sent" in refused.stderr
    as_json = rig.tronpay(
        "payouts", "batch", str(file), "--wallet", rig.disburser.wallet_id, "--decimal", "--json"
    )
    assert as_json.code == 4
    assert [p["line"] for p in json.loads(as_json.stderr)["error"]["problems"]] == [3, 4]
    after = rig.tronpay(
        "payouts", "history", "--wallet", rig.disburser.wallet_id, "--page-size", "1000", "--json"
    )
    assert json.loads(after.stdout)["payouts"] == json.loads(before.stdout)["payouts"]


def test_a_payout_above_the_threshold_is_approved_with_the_operator_certificate(rig: Rig) -> None:
    recipient = fresh_address()
    file = _csv(rig, "large.csv", f"{recipient},{APPROVAL_THRESHOLD}\n")
    batch = ("payouts", "batch", str(file), "--wallet", rig.disburser.wallet_id, "--interval", "0.5")
    created = rig.tronpay(*batch, "--no-wait", "--json")
    assert created.code == 0, created.stderr
    (payout,) = json.loads(created.stdout)["batches"][0]["payouts"]
    assert payout["state"] == "STATE_PENDING" and payout["requiredApprovals"] == 1

    approved = rig.tronpay(
        "payouts", "approve", payout["payoutId"], "--approver", "bob", "--json", env=rig.operator_env()
    )

    assert approved.code == 0, approved.stderr
    assert json.loads(approved.stdout)["payout"]["state"] in (
        "STATE_APPROVED",
        "STATE_SUBMITTED",
        "STATE_CONFIRMED",
    )
    followed = rig.tronpay(*batch, "--json")  # the rerun follows the same batch to the end
    assert followed.code == 0, followed.stderr
    assert json.loads(followed.stdout)["stateCounts"] == {"STATE_CONFIRMED": 1}
    assert rig.chain.balance(recipient) == APPROVAL_THRESHOLD


def test_without_a_token_or_the_role_access_is_refused(rig: Rig) -> None:
    anonymous = rig.tronpay("wallets", "list", role=None)
    assert anonymous.code == 6 and anonymous.stdout == ""
    assert anonymous.stderr.startswith(
        "tronpay: error: UNAUTHENTICATED: WalletManagerService/ListWallets: Jwt is missing"
    )
    assert "TRONPAY_TOKEN" in anonymous.stderr and "Traceback" not in anonymous.stderr
    viewer = rig.tronpay(
        "wallets", "create", "--owner", "x", "--kind", "watch-only", "--address", fresh_address(), "--json",
        role="viewer",
    )  # fmt: skip
    assert viewer.code == 6 and json.loads(viewer.stderr)["error"]["status"] == "PERMISSION_DENIED"


def test_sync_status_and_watch(rig: Rig) -> None:
    metrics = f"http://127.0.0.1:{rig.cluster['tron_client'].env['METRICS_PORT']}/metrics"
    status = rig.tronpay("sync", "status", "--metrics-url", metrics, "--json", role="viewer")
    assert status.code == 0, status.stderr
    body = json.loads(status.stdout)
    assert body["reachable"] is True and int(body["headBlock"]["number"]) > 0
    assert set(body["rescans"]) == {"pendingBlocks", "openJobs", "blocksRead"}
    watched = rig.tronpay(
        "sync",
        "status",
        "--watch",
        "--metrics-url",
        metrics,
        "--interval",
        "0.3",
        "--wait-timeout",
        "60",
        "--json",
    )
    assert watched.code == 0, watched.stderr
    points = [json.loads(line) for line in watched.stdout.splitlines()]
    assert points and points[-1]["synced"] is True and points[-1]["rescans"]["pendingBlocks"] == 0
    human = rig.tronpay("sync", "status")
    assert human.code == 0 and "sync lag" in human.stdout and rig.devnet.url.split("//")[1] in human.stdout


def test_audit_verify_over_the_operator_certificate(rig: Rig) -> None:
    verified = rig.tronpay(
        "audit", "verify", "--service", "wallet-manager", "--service", "payout-router", "--json",
        env=rig.operator_env(), role=None,
    )  # fmt: skip
    assert verified.code == 0, verified.stderr
    body = json.loads(verified.stdout)
    assert body["intact"] is True
    by_service = {log["service"]: log["result"] for log in body["logs"]}
    assert int(by_service["wallet-manager"]["recordCount"]) >= 1  # the wallets created above
    no_cert = rig.tronpay("audit", "verify", "--service", "wallet-manager", env={"TLS_DIR": str(rig.workdir)})
    assert no_cert.code == 2 and "cannot read" in no_cert.stderr


def test_keys_rotate_runs_wallet_managers_command(rig: Rig) -> None:
    rotated = rig.tronpay("keys", "rotate", "--json", env=rig.cluster.env, role=None)  # its database and key
    assert rotated.code == 0, rotated.stderr
    body = json.loads(rotated.stdout)
    assert body["adminExitCode"] == 0
    assert any(line.startswith("re-wrapped 0, skipped 0, failed 0") for line in body["output"])
    assert rig.cluster.env["WALLET_ENCRYPTION_KEY"] not in rotated.stdout + rotated.stderr


def test_a_service_not_behind_the_edge_is_unavailable(rig: Rig) -> None:
    status = rig.tronpay("staking", "status", rig.disburser.address)  # no trx-staking in this rig
    assert status.code == 7 and status.stdout == ""
    assert status.stderr.startswith("tronpay: error: UNAVAILABLE: TrxStakingService/GetStakingStatus")
    assert f"is the cluster up at {rig.edge.grpc_target}?" in status.stderr
