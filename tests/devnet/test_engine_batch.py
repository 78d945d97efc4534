"""A large batch of signed TRC20 transfers through broadcast (all checks + TVM) into one block.

Speed is measured by `make bench-devnet` / `make bench-tvm`, not asserted here; this prints the engine's rate
for a quick look (`pytest -s`).
"""

from __future__ import annotations

import time

from devnet import codec, crypto
from devnet.genesis import USDT_ADDRESS, account_key
from devnet.node import Node, NodeConfig
from devnet.pb import contract_pb2, tron_pb2

N = 600


def test_a_large_trc20_batch_lands_in_one_block() -> None:
    node = Node.open(NodeConfig(solidity_lag=18))
    keys = [account_key(i) for i in range(1, 10)]
    head = node.block_id(node.head_block())
    ts = node.head_block().block_header.raw_data.timestamp
    txs = []
    for i in range(N):
        key = keys[i % len(keys)]
        owner = crypto.address_from_private_key(key)
        to = crypto.address_from_private_key(keys[(i + 1) % len(keys)])
        data = bytes.fromhex("a9059cbb") + bytes(12) + to[1:] + (1).to_bytes(32, "big")
        c = contract_pb2.TriggerSmartContract(owner_address=owner, contract_address=USDT_ADDRESS, data=data)
        tx = tron_pb2.Transaction()
        tx.raw_data.contract.append(codec.pack_contract("TriggerSmartContract", c))
        tx.raw_data.ref_block_bytes, tx.raw_data.ref_block_hash = head[6:8], head[8:16]
        tx.raw_data.expiration, tx.raw_data.timestamp, tx.raw_data.fee_limit = ts + 600_000, ts + i, 10**8
        tx.signature.append(crypto.sign(codec.tx_id(tx), key))
        txs.append(tx)
    start = time.perf_counter()
    for tx in txs:
        assert node.broadcast(tx).ok
    block = node.produce_block()
    elapsed = time.perf_counter() - start
    assert len(block.transactions) == N
    infos = node.transaction_infos_in_block(block.block_header.raw_data.number)
    assert all(i.receipt.result == tron_pb2.Transaction.Result.SUCCESS for i in infos)
    rate = N / elapsed
    print(f"engine: {rate:.0f} TRC20 transfers/s (broadcast + execution + inclusion)")
