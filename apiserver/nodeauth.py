"""The Node authorizer: a kubelet may only change its own Node, its own Lease and pods bound to it.

Kubelets authenticate as ``system:node:<name>`` in group ``system:nodes``. RBAC's ``system:node``
role lets nodes read and write nodes and pods in general; this authorizer runs first and *denies*
what is not the node's own: another node's object or Lease, or a pod bound elsewhere. Everything
else it leaves to RBAC (no opinion). Pod ownership is read from the watch cache.
"""

from __future__ import annotations

from typing import Any, Callable

from .auth import Attributes, Decision

NODE_PREFIX = "system:node:"
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}
PodLookup = Callable[[str, str], "dict[str, Any] | None"]


def node_name(attrs: Attributes) -> str | None:
    user = attrs.user
    if "system:nodes" in user.groups and user.name.startswith(NODE_PREFIX):
        return user.name[len(NODE_PREFIX):]
    return None


class NodeAuthorizer:
    def __init__(self, pod: PodLookup) -> None:
        self.pod = pod

    async def authorize(self, attrs: Attributes) -> tuple[Decision, str]:
        node = node_name(attrs)
        if node is None or not attrs.resource_request:
            return Decision.NO_OPINION, ""
        deny = self._check(node, attrs)
        if deny:
            return Decision.DENY, deny
        return Decision.NO_OPINION, ""

    def _check(self, node: str, attrs: Attributes) -> str:
        group, resource, verb = attrs.api_group, attrs.resource, attrs.verb
        if group == "" and resource == "nodes":
            if verb in WRITE_VERBS and attrs.name and attrs.name != node:
                return f"node '{node}' cannot modify node '{attrs.name}'"
            if verb == "deletecollection":
                return f"node '{node}' cannot delete all nodes"
            return ""
        if group == "coordination.k8s.io" and resource == "leases":
            if attrs.namespace != "kube-node-lease":
                return "" if verb not in WRITE_VERBS else f"node '{node}' can only write Leases in kube-node-lease"
            if verb in WRITE_VERBS and attrs.name and attrs.name != node:
                return f"node '{node}' cannot modify the Lease of node '{attrs.name}'"
            if verb == "deletecollection":
                return f"node '{node}' cannot delete all Leases"
            return ""
        if group == "" and resource == "pods":
            if verb == "create" and not attrs.subresource:
                return f"node '{node}' cannot create pods"
            if verb in WRITE_VERBS or attrs.subresource in ("status", "eviction"):
                if not attrs.name:
                    return f"node '{node}' cannot {verb} pods collectively"
                pod = self.pod(attrs.namespace, attrs.name)
                bound = ((pod or {}).get("spec") or {}).get("nodeName")
                if pod is not None and bound != node:
                    return f"node '{node}' can only modify pods bound to it (pod is on '{bound or '<none>'}')"
            return ""
        return ""
