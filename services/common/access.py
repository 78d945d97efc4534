"""Who may call what: the one roles x RPCs matrix and the service-to-service grants.

Two kinds of caller reach a service:
- an end user or another cluster, through the edge: Envoy verifies the bearer JWT and passes its claims as
  the identity metadata below (client copies are dropped first). `PUBLIC` says which roles may call each
  public RPC; the edge enforces it (RBAC generated from this table) and every service checks it again
  (`decide`), so a request that slipped past the edge's configuration still meets the matrix.
- a peer inside the mesh, over mutual TLS: its identity is its certificate's (one of `Peer`), never
  metadata it chose. `INTERNAL` says which peers may call each RPC directly: every RPC without a REST
  binding, and the public ones other services call (a payout's USDT transfer). The edge's certificate
  may call only public RPCs, on behalf of the token's roles; the operator certificate is for the
  cluster's own command-line tools. Identity metadata a service forwards (the end user it acts for) is
  believed only because the peer's certificate says it is the edge or a service of the cluster.

Tenancy: a token with a `tenant` claim sees only that tenant's resources (its wallets, payments and
payouts; another tenant's answers NOT_FOUND); `admin` sees all. `docs/access.md` is generated from this
module (`make access-doc`; a test keeps it fresh).
"""

from __future__ import annotations

from enum import StrEnum

from services.common.settings import ServiceName


class Peer(StrEnum):
    """Certificate identities inside the mesh (the certificate's common name)."""

    TRON_CLIENT = "tron-client"
    PAYOUT_ROUTER = "payout-router"
    WALLET_MANAGER = "wallet-manager"
    USDT_MANAGER = "usdt-manager"
    TRX_STAKING = "trx-staking"
    PAYMENT_GATEWAY = "payment-gateway"
    EDGE = "edge"  # Envoy
    OPERATOR = "operator"  # the cluster's command-line tools (key rotation, audit verify, recovery)

    @classmethod
    def of(cls, service: ServiceName) -> Peer:
        """The certificate identity of a service."""
        return cls(service.dashed)


class Role(StrEnum):
    """Roles a token's `roles` claim may carry."""

    VIEWER = "viewer"  # reads its tenant's resources
    OPERATOR = "operator"  # day-to-day money movement: wallets, transfers, payouts, payments, staking
    APPROVER = "approver"  # approves or cancels payouts above the approval threshold
    COMPLIANCE = "compliance"  # allowlists, KYC, reconciliation and audit reads
    ADMIN = "admin"  # everything, every tenant; destructive and configuration changes
    SERVICE = "service"  # another cluster of the platform calling over native gRPC


# Metadata the edge sets from the verified token (and nothing else may set: the edge drops client copies).
SUBJECT_KEY = "x-tronpay-subject"  # `sub`
ROLES_KEY = "x-tronpay-roles"  # `roles`, comma-separated
TENANT_KEY = "x-tronpay-tenant"  # `tenant`; absent for admins and platform-wide service accounts
IDENTITY_KEYS = (SUBJECT_KEY, ROLES_KEY, TENANT_KEY, "x-tronpay-caller", "x-jwt-payload")

READ = frozenset(Role)  # every role reads (within its tenant)
MOVE = frozenset({Role.OPERATOR, Role.ADMIN, Role.SERVICE})
ADMIN = frozenset({Role.ADMIN})

_WM = "tronpay.wallet_manager.v1.WalletManagerService"
_TC = "tronpay.tron_client.v1.TronClientService"
_UM = "tronpay.usdt_manager.v1.UsdtManagerService"
_TS = "tronpay.trx_staking.v1.TrxStakingService"
_PR = "tronpay.payout_router.v1.PayoutRouterService"
_PG = "tronpay.payment_gateway.v1.PaymentGatewayService"
_AU = "tronpay.audit.v1.AuditService"  # served by every service for its own log (docs/audit.md)

#: Public RPCs (those with a REST binding, reachable through the edge) -> roles that may call them.
PUBLIC: dict[str, frozenset[Role]] = {
    f"{_TC}/GetNetworkInfo": READ,
    f"{_TC}/GetNetworkStatus": READ,  # also open without a token at GET /api/v1/tron/network/status
    f"{_TC}/GetNetworkHeight": READ,
    f"{_TC}/GetNetworkFees": READ,
    f"{_WM}/ListWallets": READ,
    f"{_WM}/GetWallet": READ,
    f"{_WM}/GetWalletBalance": READ,
    f"{_WM}/ListWalletTransactions": READ,
    f"{_WM}/CreateWallet": frozenset({Role.OPERATOR, Role.ADMIN}),
    f"{_WM}/UpdateWallet": frozenset({Role.OPERATOR, Role.ADMIN}),
    f"{_WM}/DeleteWallet": ADMIN,
    f"{_UM}/CreateTransfer": MOVE,
    f"{_UM}/Approve": frozenset({Role.OPERATOR, Role.ADMIN}),
    f"{_UM}/GetBalance": READ,
    f"{_UM}/ListTransactions": READ,
    f"{_UM}/GetAllowance": READ,
    f"{_TS}/Stake": frozenset({Role.OPERATOR, Role.ADMIN}),
    f"{_TS}/Unstake": frozenset({Role.OPERATOR, Role.ADMIN}),
    f"{_TS}/Withdraw": frozenset({Role.OPERATOR, Role.ADMIN}),
    f"{_TS}/GetStakingStatus": READ,
    f"{_TS}/GetStakingRewards": READ,
    f"{_PR}/InitiatePayout": MOVE,
    f"{_PR}/CreatePayoutBatch": MOVE,
    f"{_PR}/CancelPayout": frozenset({Role.OPERATOR, Role.APPROVER, Role.ADMIN}),
    f"{_PR}/GetPayout": READ,
    f"{_PR}/ListPayouts": READ,
    f"{_PG}/CreatePayment": MOVE,
    f"{_PG}/GetPayment": READ,
    f"{_PG}/RefundPayment": frozenset({Role.OPERATOR, Role.ADMIN}),
    f"{_PG}/GetReconciliation": frozenset({Role.OPERATOR, Role.COMPLIANCE, Role.ADMIN}),
    f"{_PG}/ReceiveWebhook": frozenset({Role.SERVICE, Role.ADMIN}),  # senders hold a service account
}


_P = Peer
_MONEY = frozenset({_P.USDT_MANAGER, _P.PAYOUT_ROUTER, _P.TRX_STAKING, _P.PAYMENT_GATEWAY})
_SERVICES = frozenset(Peer) - {_P.EDGE, _P.OPERATOR}
_OP = frozenset({_P.OPERATOR})

_TRON_CLIENT_INTERNAL = (
    "BuildTransaction", "BroadcastTransaction", "GetTransaction", "GetTransactionInfo",
    "TriggerConstantContract", "EstimateEnergy", "GetAccount", "GetAccountResource", "GetTokenBalance",
    "GetChainParameters", "WatchAddresses", "UnwatchAddresses", "ListWatchedAddresses",
    "StreamTransfers", "ListTransfers", "GetContract",
    # public reads the services use too (energy price, head height)
    "GetNetworkInfo", "GetNetworkStatus", "GetNetworkHeight", "GetNetworkFees",
)  # fmt: skip

# What the operator's deploy tool (tools/deploy_routers.py) calls to build, sign and send contract
# deployments and role grants; wallet-manager signs for it only with wallets whose policy names it.
_DEPLOY = (
    "BuildTransaction", "BroadcastTransaction", "GetTransactionInfo", "TriggerConstantContract", "GetAccount",
    "GetContract", "GetNetworkInfo", "GetNetworkHeight",
)  # fmt: skip

#: RPCs peers call directly (all without a REST binding, and public ones services use) -> who may.
INTERNAL: dict[str, frozenset[Peer]] = {
    **{
        f"{_TC}/{m}": _SERVICES - {_P.TRON_CLIENT} | (_OP if m in _DEPLOY else frozenset())
        for m in _TRON_CLIENT_INTERNAL
    },
    f"{_WM}/SignTransaction": _MONEY | _OP,
    f"{_WM}/SignMessage": frozenset({_P.PAYOUT_ROUTER}),  # KYC attestations
    f"{_WM}/DeriveAddress": frozenset({_P.PAYMENT_GATEWAY}),
    f"{_WM}/GetPublicKey": _MONEY,
    f"{_WM}/VerifyMessage": _MONEY,
    f"{_WM}/GetWallet": _MONEY | _OP,
    f"{_WM}/CreateTronLinkChallenge": _OP,
    f"{_WM}/ListSignatures": _OP,
    f"{_UM}/CreateTransfer": frozenset({_P.PAYOUT_ROUTER, _P.PAYMENT_GATEWAY}),  # payouts, refunds, sweeps
    f"{_UM}/GetTransfer": frozenset({_P.PAYOUT_ROUTER, _P.PAYMENT_GATEWAY}) | _OP,  # and `tronpay usdt get`
    f"{_UM}/GetApproval": frozenset({_P.PAYOUT_ROUTER, _P.PAYMENT_GATEWAY}) | _OP,
    f"{_TS}/DelegateResource": frozenset({_P.USDT_MANAGER, _P.PAYOUT_ROUTER, _P.PAYMENT_GATEWAY}) | _OP,
    f"{_TS}/UndelegateResource": frozenset({_P.USDT_MANAGER, _P.PAYOUT_ROUTER, _P.PAYMENT_GATEWAY}) | _OP,
    f"{_TS}/VoteWitnesses": _OP,
    f"{_TS}/RequestEnergy": frozenset({_P.USDT_MANAGER, _P.PAYOUT_ROUTER, _P.PAYMENT_GATEWAY}) | _OP,
    f"{_TS}/GetStakingOperation": frozenset({_P.USDT_MANAGER, _P.PAYOUT_ROUTER, _P.PAYMENT_GATEWAY}) | _OP,
    f"{_PR}/ApprovePayout": _OP,
    f"{_PR}/GetPayoutBatch": frozenset({_P.PAYMENT_GATEWAY}) | _OP,
    f"{_PR}/UpdateAllowlist": _OP,
    f"{_PR}/CheckAllowlist": frozenset({_P.PAYMENT_GATEWAY}) | _OP,
    f"{_PG}/ListPayments": _OP,
    f"{_PG}/ListWebhookDeliveries": _OP,
    f"{_PG}/RedeliverWebhook": _OP,
    f"{_PG}/ApproveRefund": _OP,
    f"{_PG}/ListUnmatchedDeposits": _OP,
    f"{_PG}/AssignDeposit": _OP,
    f"{_PG}/ListSweeps": _OP,
    f"{_PG}/GetPaymentReport": _OP,
    f"{_AU}/VerifyAuditLog": _OP,
    f"{_AU}/ExportAuditLog": _OP,
}


class RouteClass(StrEnum):
    """Rate-limit classes of the public RPCs at the edge (one token bucket each per Envoy instance)."""

    READ = "read"  # Get*/List*: answers from stored state, changes nothing
    WRITE = "write"  # changes state but moves no funds (wallet records, cancellations, payment requests)
    MONEY = "money"  # can move funds or grant a spender on chain


#: Public RPCs that can move funds on chain (or let someone else do so): the `money` route class.
MONEY_MOVING = frozenset(
    {
        f"{_UM}/CreateTransfer",
        f"{_UM}/Approve",
        f"{_TS}/Stake",
        f"{_TS}/Unstake",
        f"{_TS}/Withdraw",
        f"{_PR}/InitiatePayout",
        f"{_PR}/CreatePayoutBatch",
        f"{_PG}/RefundPayment",
    }
)

#: The public RPC that needs no token (GET /api/v1/tron/network/status: load balancers' health checks).
OPEN = frozenset({f"{_TC}/GetNetworkStatus"})


def route_class(method: str) -> RouteClass:
    """The rate-limit class of the public RPC `method` ("pkg.Service/Method"): money-moving RPCs, else reads
    (Get*/List*, the GET bindings; a test keeps the two in step), else writes."""
    if method not in PUBLIC:
        raise KeyError(f"{method} is not a public RPC")
    if method in MONEY_MOVING:
        return RouteClass.MONEY
    name = method.rsplit("/", 1)[1]
    return RouteClass.READ if name.startswith(("Get", "List")) else RouteClass.WRITE


def may_call(method: str, roles: frozenset[Role] | set[Role]) -> bool:
    """Whether a caller with `roles` may call the public RPC `method` ("pkg.Service/Method")."""
    return bool(PUBLIC.get(method, frozenset()) & set(roles))


def may_call_directly(method: str, peer: Peer) -> bool:
    """Whether `peer`'s certificate may call `method` directly (the edge: only public RPCs, per role)."""
    return peer in INTERNAL.get(method, frozenset())


class Denial(StrEnum):
    """Why `decide` refused a call (the ErrorInfo reason of the PERMISSION_DENIED answer)."""

    NO_PEER_IDENTITY = "NO_PEER_IDENTITY"  # no client certificate of the cluster CA naming a known peer
    NOT_PUBLIC = "NOT_PUBLIC"  # the edge asked for an RPC that has no REST binding
    ROLE_NOT_ALLOWED = "ROLE_NOT_ALLOWED"  # the token's roles may not call this public RPC
    PEER_NOT_ALLOWED = "PEER_NOT_ALLOWED"  # this service or tool has no grant for the RPC


def decide(method: str, peer: Peer | None, roles: frozenset[Role]) -> Denial | None:
    """None when the call may proceed, else why not. `method` is the gRPC path ("/pkg.Service/Method");
    health and reflection (not ours) are open to every peer of the mesh."""
    if peer is None:
        return Denial.NO_PEER_IDENTITY
    rpc = method.lstrip("/")
    if not rpc.startswith("tronpay."):
        return None
    if peer is Peer.EDGE:
        if rpc not in PUBLIC:
            return Denial.NOT_PUBLIC
        return None if rpc in OPEN or may_call(rpc, roles) else Denial.ROLE_NOT_ALLOWED
    return None if may_call_directly(rpc, peer) else Denial.PEER_NOT_ALLOWED


def parse_roles(value: str) -> frozenset[Role]:
    """The roles in a comma-separated claim; unknown names are ignored (a typo grants nothing)."""
    known = {r.value: r for r in Role}
    return frozenset(known[v] for v in (p.strip() for p in value.split(",")) if v in known)
