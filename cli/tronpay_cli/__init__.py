"""`tronpay`: the command line of the TRON payment cluster, over its public gRPC API through the edge.

Each area is a command group in its own module (wallets, usdt, staking, payouts, payments, audit, keys,
sync); `main.py` assembles them. The CLI knows the cluster only through the generated stubs in gen/
(tronpay.*.v1) and, for the operator commands, the operator certificate: it imports nothing from services/.
docs/cli.md lists the commands and the exit codes.
"""
