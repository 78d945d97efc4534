"""Settings: defaults, validation with one clear line naming the variable, secrets never echoed, and a
variable only one service uses checked only by that service."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.common.settings import ServiceName, Settings, SettingsError, TronNetwork, parse_settings
from services.payout_router.settings import PayoutRouterSettings
from services.tron_client.settings import TronClientSettings
from services.wallet_manager.settings import WalletManagerSettings
from tests.harness.net import free_port
from tests.harness.pki import pki_dir
from tests.harness.services import service_specs

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(("TRON_", "USDT_", "PAYOUT_", "WALLET_", "MONGODB_", "PAYMENT_")):
            monkeypatch.delenv(key)


def test_defaults_for_devnet() -> None:
    s = parse_settings(TronClientSettings, SERVICE_NAME="tron_client")
    assert s.TRON_NETWORK is TronNetwork.DEVNET
    assert s.tron_node_urls == ("http://127.0.0.1:8091",)
    assert s.port == 8085 and s.metrics_port == 9085
    assert s.target_of(ServiceName.PAYMENT_GATEWAY) == "127.0.0.1:8090"
    assert s.USDT_CONTRACT_ADDRESS == "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"


def test_network_defaults_and_node_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRON_NETWORK", "nile")
    assert parse_settings(TronClientSettings, SERVICE_NAME="tron_client").tron_node_urls == (
        "https://nile.trongrid.io",
    )
    assert parse_settings(TronClientSettings, SERVICE_NAME="tron_client").TRON_CHAIN_ID == 0xCD8690DC
    monkeypatch.setenv("TRON_NODE_URL", "http://a:1/, http://b:2")
    assert parse_settings(TronClientSettings, SERVICE_NAME="tron_client").tron_node_urls == (
        "http://a:1",
        "http://b:2",
    )


@pytest.mark.parametrize(
    ("var", "value", "needle"),
    [
        ("TRON_NETWORK", "testnet", "TRON_NETWORK: Input should be 'devnet', 'mainnet', 'nile' or 'shasta'"),
        (
            "USDT_CONTRACT_ADDRESS",
            "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6x",
            "USDT_CONTRACT_ADDRESS: not a base58check",
        ),
        ("USDT_CONTRACT_ADDRESS", "0xa614f803b6fd780986a42c78ec9c7f77e6ded13c", "USDT_CONTRACT_ADDRESS"),
        ("PAYOUT_ROUTER_CONTRACT_ADDRESS", "nope", "PAYOUT_ROUTER_CONTRACT_ADDRESS"),
        ("TRON_CLIENT_PORT", "70000", "TRON_CLIENT_PORT: Input should be less than or equal to 65535"),
        ("PAYOUT_BATCH_SIZE", "0", "PAYOUT_BATCH_SIZE"),
        ("TRON_NODE_URL", "ftp://node", "TRON_NODE_URL"),
        ("TRON_NODE_URL", "http://a:1,node:2", "TRON_NODE_URL: entry 2 is not an http(s) URL"),
        ("WALLET_TRC20_TOKENS", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t,x", "WALLET_TRC20_TOKENS: not a base58"),
        ("MONGODB_URI", "postgres://x", "MONGODB_URI: must start with mongodb://"),
        ("DEBUG", "perhaps", "DEBUG"),
        ("PAYOUT_ROUTER_PRIVATE_KEY", "deadbeef", "PAYOUT_ROUTER_PRIVATE_KEY: must be 32 bytes of hex"),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, needle: str
) -> None:
    monkeypatch.setenv(var, value)
    settings_type = next(t for t in SETTINGS_TYPES if var in t.model_fields)
    with pytest.raises(SettingsError) as err:
        parse_settings(settings_type, SERVICE_NAME="tron_client")
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


SETTINGS_TYPES = (Settings, TronClientSettings, WalletManagerSettings, PayoutRouterSettings)


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("PAYOUT_ROUTER_PRIVATE_KEY", "deadbeef"),
        ("TRON_NODE_URL", "ftp://node"),
        ("WALLET_TRC20_TOKENS", "x"),
        ("USDT_CONTRACT_ADDRESS", "x"),
    ],
)
def test_a_bad_variable_stops_only_the_services_that_read_it(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str
) -> None:
    monkeypatch.setenv(var, value)
    for spec in service_specs():
        if var in spec.settings.model_fields:
            with pytest.raises(SettingsError) as err:
                parse_settings(spec.settings, SERVICE_NAME=spec.name)
            assert var in str(err.value), (spec.name, str(err.value))
        else:
            parse_settings(spec.settings, SERVICE_NAME=spec.name)  # it does not read the bad variable
    assert sum(var in spec.settings.model_fields for spec in service_specs()) >= 1


def test_secrets_are_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYOUT_ROUTER_PRIVATE_KEY", "0xnot-hex-but-secret-material")
    with pytest.raises(SettingsError) as err:
        parse_settings(PayoutRouterSettings, SERVICE_NAME="payout_router")
    assert "secret-material" not in str(err.value)
    monkeypatch.setenv("TRON_NODE_URL", "htps://user:node-secret@node")  # typo in the scheme
    with pytest.raises(SettingsError) as err:
        parse_settings(TronClientSettings, SERVICE_NAME="tron_client")
    assert "TRON_NODE_URL" in str(err.value) and "node-secret" not in str(err.value)
    monkeypatch.delenv("TRON_NODE_URL")
    monkeypatch.setenv("PAYOUT_ROUTER_PRIVATE_KEY", "11" * 32)
    monkeypatch.setenv("WALLET_ENCRYPTION_KEY", "hunter2-Vq8zL1pR4wX7kT9mN2bY6cJ3")
    monkeypatch.setenv("MONGODB_URI", "mongodb://app:pa55word@db:27017/")
    for spec in service_specs():
        text = repr(parse_settings(spec.settings, SERVICE_NAME=spec.name))
        assert "hunter2" not in text and "11" * 32 not in text and "pa55word" not in text


def test_process_exits_with_one_line_and_no_traceback() -> None:
    path = os.pathsep.join(p for p in (str(REPO / "gen"), str(REPO), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "TRON_NETWORK": "moon"}
    proc = subprocess.run(
        [sys.executable, "-m", "services.tron_client"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    want = (
        "tron-client: invalid configuration: "
        "TRON_NETWORK: Input should be 'devnet', 'mainnet', 'nile' or 'shasta'"
    )
    assert proc.stderr.strip().splitlines() == [want]
    assert "Traceback" not in proc.stderr + proc.stdout


def test_a_process_whose_service_does_not_read_the_bad_variable_starts() -> None:
    path = os.pathsep.join(p for p in (str(REPO / "gen"), str(REPO), os.environ.get("PYTHONPATH")) if p)
    env = {
        **os.environ,
        "PYTHONPATH": path,
        "PAYOUT_ROUTER_PRIVATE_KEY": "deadbeef",
        "MONGODB_URI": "mongodb://127.0.0.1:9/",  # never reached: the check is start-up only
        "USDT_MANAGER_PORT": str(free_port()),
        "METRICS_PORT": "0",
        "HEALTH_PORT": "0",
        "TLS_DIR": str(pki_dir()),
    }
    bad = subprocess.run(
        [sys.executable, "-m", "services.payout_router"], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "payout-router: invalid configuration: PAYOUT_ROUTER_PRIVATE_KEY: must be 32 bytes of hex"
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.usdt_manager"], cwd=REPO, env=env, stderr=subprocess.DEVNULL
    )
    try:
        with pytest.raises(subprocess.TimeoutExpired):  # still serving: the variable is not its business
            proc.wait(timeout=3)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_service_without_its_certificate_stops_with_one_line(tmp_path: Path) -> None:
    path = os.pathsep.join(p for p in (str(REPO / "gen"), str(REPO), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "TLS_DIR": str(tmp_path), "METRICS_PORT": "0"}
    bad = subprocess.run(
        [sys.executable, "-m", "services.trx_staking"], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2
    (line,) = bad.stderr.strip().splitlines()
    assert line.startswith(f"trx-staking: TLS_DIR: cannot read {tmp_path / 'trx-staking' / 'tls.crt'}"), line
