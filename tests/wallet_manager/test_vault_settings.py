"""wallet-manager's start-up checks of WALLET_ENCRYPTION_KEY: the public devnet key only on a loopback
devnet, a minimum strength for a configured key, one line naming the variable and never its value."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys

import pytest

from services.common.settings import SettingsError, parse_settings
from services.wallet_manager.keys import keys_from_settings
from services.wallet_manager.settings import (
    DEVNET_FALLBACK_KEY,
    MIN_KEY_BITS,
    WalletManagerSettings,
    estimated_bits,
)
from tests.harness.services import REPO


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(("TRON_", "WALLET_", "CLUSTER_")):
            monkeypatch.delenv(key)


def parse(**env: str) -> WalletManagerSettings:
    return parse_settings(WalletManagerSettings, SERVICE_NAME="wallet_manager", **env)


def refused(**env: str) -> str:
    with pytest.raises(SettingsError) as err:
        parse(**env)
    text = str(err.value)
    assert "\n" not in text
    for value in env.values():
        if value and value not in ("devnet", "mainnet", "nile"):
            assert value not in text  # never echoed: it may be a secret or carry credentials
    return text


@pytest.mark.parametrize(
    "urls",
    [
        "",
        "http://127.0.0.1:8091",
        "http://localhost:8091",
        "http://[::1]:8091",
        "http://127.0.0.2:1,http://127.0.0.1:2",
    ],
)
def test_the_devnet_key_on_a_loopback_devnet(urls: str) -> None:
    settings = parse(TRON_NODE_URL=urls) if urls else parse()
    assert settings.uses_devnet_fallback_key
    assert keys_from_settings(settings) == (DEVNET_FALLBACK_KEY, "")


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"TRON_NETWORK": "mainnet"}, "WALLET_ENCRYPTION_KEY: required on TRON_NETWORK=mainnet"),
        ({"TRON_NETWORK": "nile", "TRON_NODE_URL": "http://127.0.0.1:8090"}, "required on TRON_NETWORK=nile"),
        ({"TRON_NODE_URL": "https://api.trongrid.io"}, "required unless every TRON_NODE_URL is a loopback"),
        ({"TRON_NODE_URL": "http://127.0.0.1:8091,http://10.0.0.5:8090"}, "is a loopback address"),
        ({"TRON_NODE_URL": "http://devnet:8091"}, "is a loopback address"),  # the k8s dev overlay's node
        ({"TRON_NODE_URL": "http://user:secret@node.example"}, "is a loopback address"),
    ],
)
def test_the_devnet_key_is_refused_anywhere_else(env: dict[str, str], needle: str) -> None:
    text = refused(**env)
    assert needle in text and "WALLET_ENCRYPTION_KEY" in text and "secret" not in text


@pytest.mark.parametrize(
    "key",
    [
        "hunter2-hunter2",  # short
        "x" * 64,  # one character
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF",  # a run
        "passwordpasswordpasswordpassword",  # a repeated word
        "correct horse battery staple",
        DEVNET_FALLBACK_KEY,  # the public key, set explicitly
    ],
)
def test_weak_or_public_keys_are_refused(key: str) -> None:
    for network in ("devnet", "mainnet"):
        assert "WALLET_ENCRYPTION_KEY: " in refused(WALLET_ENCRYPTION_KEY=key, TRON_NETWORK=network)


def test_random_keys_pass_and_the_previous_key_is_not_held_to_the_minimum() -> None:
    # What the documentation suggests (`openssl rand -base64 32`) and other 32-byte encodings, many times.
    for _ in range(200):
        for key in (
            base64.b64encode(os.urandom(32)).decode(),
            secrets.token_urlsafe(32),
            secrets.token_hex(32),
        ):
            assert estimated_bits(key) >= MIN_KEY_BITS
    settings = parse(
        TRON_NETWORK="mainnet",
        WALLET_ENCRYPTION_KEY=secrets.token_urlsafe(32),
        WALLET_ENCRYPTION_KEY_PREVIOUS="old weak key",  # being rotated away from
    )
    assert not settings.uses_devnet_fallback_key
    assert "old weak key" not in repr(settings)


def test_the_service_does_not_start_with_the_devnet_key_on_a_real_network() -> None:
    path = os.pathsep.join(p for p in (str(REPO / "gen"), str(REPO), os.environ.get("PYTHONPATH")) if p)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TRON_", "WALLET_"))}
    for env, needle in (
        ({"TRON_NETWORK": "mainnet"}, "required on TRON_NETWORK=mainnet"),
        ({"TRON_NODE_URL": "https://nile.trongrid.io"}, "required unless every TRON_NODE_URL is a loopback"),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "services.wallet_manager"],
            cwd=REPO,
            env={**base, "PYTHONPATH": path, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 2, proc.stderr
        (line,) = proc.stderr.strip().splitlines()
        assert (
            line.startswith("wallet-manager: invalid configuration: WALLET_ENCRYPTION_KEY: ")
            and needle in line
        )
