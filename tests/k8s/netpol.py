"""A small NetworkPolicy evaluator (networking.k8s.io/v1 semantics) over rendered manifests, so tests can
ask "may pod A open a TCP connection to pod B on port P?" without a cluster.

Covered: podSelector / namespaceSelector (matchLabels, matchExpressions) and their AND, ipBlock with
except (for addresses outside the cluster only, as pod IPs are not stable), ports with endPort, policy
types, and the rule that traffic needs both the source's egress and the destination's ingress allowed
(a side that no policy selects allows everything).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

NAMESPACE = "tronpay"


@dataclass(frozen=True)
class Pod:
    """A pod by its labels and namespace."""

    labels: Mapping[str, str]
    namespace: str = NAMESPACE

    @property
    def namespace_labels(self) -> dict[str, str]:
        return {"kubernetes.io/metadata.name": self.namespace}


@dataclass(frozen=True)
class External:
    """An address outside the cluster (a TRON node, a webhook receiver, a client on the internet)."""

    ip: str


Endpoint = Pod | External


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """LabelSelector semantics; an empty selector selects everything."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _peer_matches(peer: Mapping[str, Any], other: Endpoint, policy_namespace: str) -> bool:
    if "ipBlock" in peer:
        if not isinstance(other, External):
            return False
        ip = ipaddress.ip_address(other.ip)
        block = peer["ipBlock"]
        if ip not in ipaddress.ip_network(block["cidr"]):
            return False
        return not any(ip in ipaddress.ip_network(c) for c in block.get("except") or [])
    if not isinstance(other, Pod):
        return False
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], other.namespace_labels):
            return False
    elif other.namespace != policy_namespace:
        return False
    return "podSelector" not in peer or selects(peer["podSelector"], other.labels)


def _port_matches(ports: list[Mapping[str, Any]] | None, port: int, protocol: str) -> bool:
    if not ports:
        return True
    for p in ports:
        if p.get("protocol", "TCP") != protocol:
            continue
        if "port" not in p:
            return True
        low = int(p["port"])  # the manifests use numbers only (a test checks)
        if low == port or low <= port <= int(p.get("endPort", low)):
            return True
    return False


@dataclass
class Policies:
    """The NetworkPolicies of one rendered overlay."""

    items: Sequence[Mapping[str, Any]] = field(default_factory=list)

    @classmethod
    def from_docs(cls, docs: Iterable[Mapping[str, Any]]) -> Policies:
        return cls([d for d in docs if d.get("kind") == "NetworkPolicy"])

    def _selecting(self, pod: Pod, kind: str) -> list[Mapping[str, Any]]:
        out = []
        for policy in self.items:
            if policy["metadata"].get("namespace", NAMESPACE) != pod.namespace:
                continue
            spec = policy["spec"]
            types = spec.get("policyTypes") or (["Ingress", "Egress"] if "egress" in spec else ["Ingress"])
            if kind in types and selects(spec.get("podSelector"), pod.labels):
                out.append(policy)
        return out

    def _allowed(self, pod: Pod, kind: str, other: Endpoint, port: int, protocol: str) -> bool:
        selecting = self._selecting(pod, kind)
        if not selecting:
            return True
        key, peers_key = ("egress", "to") if kind == "Egress" else ("ingress", "from")
        for policy in selecting:
            for rule in policy["spec"].get(key) or []:
                peers = rule.get(peers_key)
                peer_ok = not peers or any(
                    _peer_matches(p, other, policy["metadata"].get("namespace", NAMESPACE)) for p in peers
                )
                if peer_ok and _port_matches(rule.get("ports"), port, protocol):
                    return True
        return False

    def allows(self, src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP") -> bool:
        """Whether src may connect to dst:port (both directions' policies consulted)."""
        if (
            isinstance(src, Pod)
            and src.namespace == NAMESPACE
            and not self._allowed(src, "Egress", dst, port, protocol)
        ):
            return False
        return (
            not isinstance(dst, Pod)
            or dst.namespace != NAMESPACE
            or self._allowed(dst, "Ingress", src, port, protocol)
        )
