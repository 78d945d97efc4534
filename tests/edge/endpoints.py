"""The documented REST endpoints of issue 3: every one must route through the edge to its service."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoint:
    """One documented endpoint: HTTP verb, path template and the service (proto package key) behind it."""

    verb: str
    template: str
    service: str

    def __str__(self) -> str:
        return f"{self.verb} {self.template}"


DOCUMENTED: tuple[Endpoint, ...] = (
    Endpoint("GET", "/api/v1/tron/network/info", "tron_client"),
    Endpoint("GET", "/api/v1/tron/network/status", "tron_client"),
    Endpoint("GET", "/api/v1/tron/network/height", "tron_client"),
    Endpoint("GET", "/api/v1/tron/network/fees", "tron_client"),
    Endpoint("GET", "/api/v1/wallets", "wallet_manager"),
    Endpoint("POST", "/api/v1/wallets", "wallet_manager"),
    Endpoint("GET", "/api/v1/wallets/{wallet_id}", "wallet_manager"),
    Endpoint("PUT", "/api/v1/wallets/{wallet_id}", "wallet_manager"),
    Endpoint("DELETE", "/api/v1/wallets/{wallet_id}", "wallet_manager"),
    Endpoint("GET", "/api/v1/wallets/{wallet_id}/balance", "wallet_manager"),
    Endpoint("GET", "/api/v1/wallets/{wallet_id}/transactions", "wallet_manager"),
    Endpoint("POST", "/api/v1/usdt/transfer", "usdt_manager"),
    Endpoint("GET", "/api/v1/usdt/balance/{address}", "usdt_manager"),
    Endpoint("GET", "/api/v1/usdt/transactions/{address}", "usdt_manager"),
    Endpoint("POST", "/api/v1/usdt/approve", "usdt_manager"),
    Endpoint("GET", "/api/v1/usdt/allowance", "usdt_manager"),
    Endpoint("POST", "/api/v1/payouts/initiate", "payout_router"),
    Endpoint("GET", "/api/v1/payouts/{payout_id}", "payout_router"),
    Endpoint("POST", "/api/v1/payouts/batch", "payout_router"),
    Endpoint("GET", "/api/v1/payouts/history", "payout_router"),
    Endpoint("POST", "/api/v1/payouts/cancel", "payout_router"),
    Endpoint("POST", "/api/v1/staking/stake", "trx_staking"),
    Endpoint("POST", "/api/v1/staking/unstake", "trx_staking"),
    Endpoint("GET", "/api/v1/staking/status/{address}", "trx_staking"),
    Endpoint("GET", "/api/v1/staking/rewards/{address}", "trx_staking"),
    Endpoint("POST", "/api/v1/staking/withdraw", "trx_staking"),
    Endpoint("POST", "/api/v1/payments/process", "payment_gateway"),
    Endpoint("GET", "/api/v1/payments/{payment_id}", "payment_gateway"),
    Endpoint("POST", "/api/v1/payments/refund", "payment_gateway"),
    Endpoint("GET", "/api/v1/payments/reconciliation", "payment_gateway"),
    Endpoint("POST", "/api/v1/payments/webhook", "payment_gateway"),
)

#: Every endpoint, with the status the routing sample gets: 200, or the service's own answer for a sample
#: resource that does not exist (a 404 made by the service, never by the edge) or a request it refuses.
ANSWERS: dict[str, int] = {
    "GET /api/v1/tron/network/info": 200,
    "GET /api/v1/tron/network/status": 200,
    "GET /api/v1/tron/network/height": 200,
    "GET /api/v1/tron/network/fees": 200,
    "GET /api/v1/wallets": 200,
    "POST /api/v1/wallets": 200,
    "GET /api/v1/wallets/{wallet_id}": 404,
    "PUT /api/v1/wallets/{wallet_id}": 404,
    "DELETE /api/v1/wallets/{wallet_id}": 404,
    "GET /api/v1/wallets/{wallet_id}/balance": 404,
    "GET /api/v1/wallets/{wallet_id}/transactions": 404,
    "POST /api/v1/usdt/transfer": 404,
    "GET /api/v1/usdt/balance/{address}": 200,
    "GET /api/v1/usdt/transactions/{address}": 400,  # FAILED_PRECONDITION: the sample address is not watched
    "POST /api/v1/usdt/approve": 404,
    "GET /api/v1/usdt/allowance": 200,
    "POST /api/v1/payouts/initiate": 404,  # the sample wallet does not exist
    "GET /api/v1/payouts/{payout_id}": 404,
    "POST /api/v1/payouts/batch": 404,
    "GET /api/v1/payouts/history": 200,
    "POST /api/v1/payouts/cancel": 404,
    "POST /api/v1/staking/stake": 404,
    "POST /api/v1/staking/unstake": 404,
    "GET /api/v1/staking/status/{address}": 200,
    "GET /api/v1/staking/rewards/{address}": 200,
    "POST /api/v1/staking/withdraw": 404,
    "POST /api/v1/payments/process": 200,
    "GET /api/v1/payments/{payment_id}": 404,
    "POST /api/v1/payments/refund": 404,
    "GET /api/v1/payments/reconciliation": 200,
    "POST /api/v1/payments/webhook": 401,  # the sample carries no HMAC signature
}
#: Endpoints whose service authenticates the request itself (an HMAC signature over the body, besides the
#: token): a sample without one is the service's 401, not the edge's.
SIGNED = frozenset({"POST /api/v1/payments/webhook"})
