"""Bounded fuzzing of the java-tron HTTP API: random and mutated JSON bodies / query strings against every
/wallet/* and /walletsolidity/* route. The node must answer every one with HTTP 200 JSON (or the empty body
java-tron gives a GET on a POST-only servlet), never a traceback and never its catch-all "unexpected
error" (that means an input reached code that did not validate it), and must keep serving afterwards.
"""

from __future__ import annotations

import json
import random
from typing import Any

import httpx
import pytest

from devnet import api
from tests.harness.devnet import Devnet

SEED = 20261125
ROUNDS_PER_ROUTE = 32  # ~60 routes x 2 prefixes x (rounds + raw bodies): a few thousand requests, < 20 s

KEYS = [
    "address", "owner_address", "to_address", "contract_address", "receiver_address", "account_address",
    "value", "num", "id_or_num", "startNum", "endNum", "detail", "visible", "function_selector",
    "parameter", "data", "call_value", "call_token_value", "token_id", "fee_limit", "raw_data", "signature",
    "txID", "transaction", "type", "resource", "frozen_balance", "unfreeze_balance", "balance", "lock",
    "lock_period", "votes", "owner", "actives", "witness", "fromAddress", "toAddress", "offset", "limit",
    "timestamp", "amount", "abi", "bytecode", "name", "Permission_id", "extra_data", "raw_data_hex",
    "consume_user_resource_percent", "origin_energy_limit",
]  # fmt: skip

RAW_BODIES = [
    b"{", b"[]", b"[1,2]", b"null", b"42", b'"str"', b"true", b"{\"a\":", b"\xff\xfe\x00",
    b"{\"visible\": true, " + b"\"x\":[" * 200 + b"]" * 200 + b"}", b"{}" * 3, b"\x00" * 64,
    b"{\"raw_data\": {\"contract\": [{}]}}", b"{\"raw_data\": null, \"signature\": null}",
    b"{\"num\": NaN}", b"{\"num\": Infinity}", b"{\"num\": -Infinity}", b"{\"num\": 1e400}",
]  # fmt: skip


def _hex(rng: random.Random, n: int) -> str:
    return rng.randbytes(n).hex()


def _scalar(rng: random.Random, devnet: Devnet) -> Any:
    funded = devnet.funded[0]
    choices: list[Any] = [
        None, True, False, 0, -1, 1, 2**31, 2**63, -(2**63) - 1, 2**64 + 5, 10**40, 1.5, -0.0, 1e300,
        "", " ", "0", "-5", "abc", "zz", "0x41", "41", "T", "T" * 34, "\u00e9\u4e2d\U0001f600", "\x00",
        _hex(rng, 1), _hex(rng, 20), _hex(rng, 21), "41" + _hex(rng, 20), _hex(rng, 32), _hex(rng, 33)[:-1],
        funded["hex"], funded["address"], devnet.usdt, devnet.usdt_hex, "9" * 80, "ENERGY", "BANDWIDTH",
        "TRON_POWER", "transfer(address,uint256)", "balanceOf(address)", "(", "a" * 5000,
    ]  # fmt: skip
    return rng.choice(choices)


def _value(rng: random.Random, devnet: Devnet, depth: int = 0) -> Any:
    r = rng.random()
    if depth < 3 and r < 0.15:
        return [_value(rng, devnet, depth + 1) for _ in range(rng.randint(0, 3))]
    if depth < 3 and r < 0.3:
        return {rng.choice(KEYS): _value(rng, devnet, depth + 1) for _ in range(rng.randint(0, 4))}
    return _scalar(rng, devnet)


def _mutate(rng: random.Random, devnet: Devnet, obj: Any, depth: int = 0) -> Any:
    """Copy of `obj` with a few random leaves replaced, keys dropped or added."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            r = rng.random()
            if r < 0.08:
                continue
            out[k] = _value(rng, devnet) if r < 0.2 else _mutate(rng, devnet, v, depth + 1)
        if rng.random() < 0.1:
            out[rng.choice(KEYS)] = _value(rng, devnet)
        return out
    if isinstance(obj, list):
        items = [_mutate(rng, devnet, v, depth + 1) for v in obj if rng.random() > 0.05]
        if rng.random() < 0.1:
            items.append(_value(rng, devnet))
        return items
    return _value(rng, devnet) if rng.random() < 0.3 else obj


def _seeds(devnet: Devnet) -> list[dict[str, Any]]:
    """Well-formed bodies to mutate: a signed transfer, a TRC20 call, typical query bodies."""
    owner = devnet.funded[1]
    tx = devnet.transfer_tx(owner, devnet.new_account()["hex"], 1)
    trc20 = devnet.trc20_transfer_tx(owner, devnet.usdt_hex, devnet.funded[2]["hex"], 1)
    call = {
        "owner_address": owner["hex"], "contract_address": devnet.usdt_hex,
        "function_selector": "balanceOf(address)", "parameter": owner["hex"][2:].rjust(64, "0"),
        "fee_limit": 10**8, "call_value": 0,
    }  # fmt: skip
    stake = {
        "owner_address": owner["hex"], "receiver_address": devnet.funded[2]["hex"], "balance": 10**6,
        "resource": "ENERGY", "frozen_balance": 10**6, "unfreeze_balance": 10**6, "lock": True,
        "lock_period": 3, "votes": [{"vote_address": devnet.witness["hex"], "vote_count": 1}],
        "to_address": devnet.funded[2]["hex"], "amount": 1,
    }  # fmt: skip
    return [
        tx,
        trc20,
        {**tx, "visible": True},
        call,
        {**call, "visible": True, "owner_address": owner["address"], "contract_address": devnet.usdt},
        {"address": owner["hex"]},
        {"address": owner["address"], "visible": True},
        {"value": tx["txID"]},
        {"num": 1, "id_or_num": "1", "detail": True, "startNum": 0, "endNum": 3},
        stake,
        {"transaction": "0a02" + _hex(random.Random(1), 40)},
    ]


def _problem(resp: httpx.Response) -> str | None:
    """What is wrong with an answer, None if it is a java-tron-shaped one."""
    if resp.status_code in (400, 414) and len(str(resp.request.url)) > 8000:
        return None  # request line over the server's 8 KiB limit: refused by HTTP itself (Jetty: 414)
    if resp.status_code not in (200, 404):
        return f"HTTP {resp.status_code} {resp.text[:300]}"
    text = resp.text
    if "Traceback" in text:
        return text[:500]
    if resp.status_code == 404 or text == "":
        return None
    try:
        body = json.loads(text)
    except ValueError:
        return f"not JSON: {text[:300]}"
    if isinstance(body, dict) and str(body.get("Error", "")).startswith("class java.lang.Exception : "):
        return f"unhandled: {body}"
    return None


@pytest.mark.timeout(120)
def test_fuzz_every_route_keeps_serving(devnet_manual: Devnet) -> None:
    devnet = devnet_manual
    rng = random.Random(SEED)
    seeds = _seeds(devnet)
    head_before = devnet.status()["head"]
    routes = [f"wallet/{n}" for n in api.ENDPOINTS] + [
        f"walletsolidity/{n}" for n, ep in api.ENDPOINTS.items() if ep.solidity
    ]
    sent = 0
    problems: list[str] = []

    def check(resp: httpx.Response, what: str) -> None:
        if (p := _problem(resp)) is not None:
            problems.append(f"{what[:400]} -> {p}")

    with httpx.Client(base_url=devnet.url, timeout=30.0) as http:
        for route in routes:
            for i in range(ROUNDS_PER_ROUTE):
                if i % 4 == 3:
                    params = {rng.choice(KEYS): str(_scalar(rng, devnet)) for _ in range(rng.randint(0, 4))}
                    resp = http.get(f"/{route}", params=params)
                    check(resp, f"GET {route} {params}")
                else:
                    body = _mutate(rng, devnet, rng.choice(seeds)) if i % 4 else _value(rng, devnet)
                    resp = http.post(f"/{route}", content=json.dumps(body))
                    check(resp, f"POST {route} {json.dumps(body)[:400]}")
                sent += 1
            for raw in rng.sample(RAW_BODIES, 4):
                check(http.post(f"/{route}", content=raw), f"POST {route} raw {raw[:80]!r}")
                sent += 1
    assert not problems, f"{len(problems)} bad answers, e.g.:\n" + "\n".join(problems[:15])
    assert sent > 3000
    # still serving, and still a chain
    devnet.mine(1)
    assert devnet.status()["head"] > head_before
    assert "blockID" in devnet.post("wallet/getnowblock")
