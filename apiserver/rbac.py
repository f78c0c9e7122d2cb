"""Role-based access control: the RBAC authorizer, escalation checks and the default roles.

Rules come from Roles, ClusterRoles (aggregated ones included), RoleBindings and
ClusterRoleBindings read from the watch caches, so every API server replica decides from the same
replicated objects. A subject may only create or change a role, or bind one, whose permissions it
holds itself (unless it has the ``escalate``/``bind`` verbs), as Kubernetes enforces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

from apimachinery.selectors import LabelSelector

from .auth import Attributes, Decision, UserInfo

RBAC_GROUP = "rbac.authorization.k8s.io"
Objects = Callable[[str], list[dict[str, Any]]]  # resource plural -> current objects


@dataclass(frozen=True, slots=True)
class Rule:
    verbs: tuple[str, ...]
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Rule:
        return cls(tuple(d.get("verbs") or ()), tuple(d.get("apiGroups") or ()), tuple(d.get("resources") or ()),
                   tuple(d.get("resourceNames") or ()), tuple(d.get("nonResourceURLs") or ()))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"verbs": list(self.verbs)}
        if self.non_resource_urls:
            out["nonResourceURLs"] = list(self.non_resource_urls)
        else:
            out["apiGroups"] = list(self.api_groups)
            out["resources"] = list(self.resources)
        if self.resource_names:
            out["resourceNames"] = list(self.resource_names)
        return out

    def allows(self, attrs: Attributes) -> bool:
        if not _match(self.verbs, attrs.verb):
            return False
        if not attrs.resource_request:
            return any(u == "*" or u == attrs.path or (u.endswith("*") and attrs.path.startswith(u[:-1]))
                       for u in self.non_resource_urls)
        if self.non_resource_urls and not self.resources:
            return False
        if not _match(self.api_groups, attrs.api_group):
            return False
        resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
        if not any(r == "*" or r == resource or (attrs.subresource and r == f"*/{attrs.subresource}")
                   or (r.endswith("/*") and attrs.subresource and r[:-2] == attrs.resource)
                   for r in self.resources):
            return False
        if self.resource_names and attrs.name not in self.resource_names:
            return False
        return True


def _match(allowed: Iterable[str], value: str) -> bool:
    return any(a == "*" or a == value for a in allowed)


def _subject_matches(subject: dict[str, Any], user: UserInfo, binding_namespace: str) -> bool:
    kind = subject.get("kind")
    name = subject.get("name", "")
    if kind == "User":
        return user.name == name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or binding_namespace
        return user.name == f"system:serviceaccount:{ns}:{name}"
    return False


class RBACAuthorizer:
    def __init__(self, objects: Objects) -> None:
        self.objects = objects

    # ------------------------------------------------------------------ rules

    def _cluster_role_rules(self, name: str, roles: dict[str, dict[str, Any]],
                            seen: frozenset[str] = frozenset()) -> list[Rule]:
        """A ClusterRole's rules, with aggregated roles' rules folded in (transitively, as the
        aggregation controller would have written them into ``rules``)."""
        role = roles.get(name)
        if role is None or name in seen:
            return []
        seen = seen | {name}
        rules = [Rule.from_dict(r) for r in role.get("rules") or []]
        aggregation = role.get("aggregationRule") or {}
        selectors = [LabelSelector.from_structured(s) for s in aggregation.get("clusterRoleSelectors") or []]
        if selectors:
            for other_name, other in roles.items():
                labels = (other.get("metadata") or {}).get("labels") or {}
                if other_name not in seen and any(sel.matches(labels) for sel in selectors):
                    rules.extend(self._cluster_role_rules(other_name, roles, seen))
        return rules

    def rules_for(self, user: UserInfo, namespace: str) -> list[Rule]:
        """Every rule that applies to ``user`` in ``namespace`` ("" = cluster-wide only)."""
        cluster_roles = {(r.get("metadata") or {}).get("name", ""): r for r in self.objects("clusterroles")}
        rules: list[Rule] = []
        for binding in self.objects("clusterrolebindings"):
            if any(_subject_matches(s, user, "") for s in binding.get("subjects") or []):
                ref = binding.get("roleRef") or {}
                if ref.get("kind") == "ClusterRole":
                    rules.extend(self._cluster_role_rules(ref.get("name", ""), cluster_roles))
        if namespace:
            roles = {((r.get("metadata") or {}).get("namespace"), (r.get("metadata") or {}).get("name")): r
                     for r in self.objects("roles")}
            for binding in self.objects("rolebindings"):
                meta = binding.get("metadata") or {}
                if meta.get("namespace") != namespace:
                    continue
                if not any(_subject_matches(s, user, namespace) for s in binding.get("subjects") or []):
                    continue
                ref = binding.get("roleRef") or {}
                if ref.get("kind") == "ClusterRole":
                    rules.extend(self._cluster_role_rules(ref.get("name", ""), cluster_roles))
                elif ref.get("kind") == "Role":
                    role = roles.get((namespace, ref.get("name")))
                    if role is not None:
                        rules.extend(Rule.from_dict(r) for r in role.get("rules") or [])
        return rules

    async def authorize(self, attrs: Attributes) -> tuple[Decision, str]:
        for rule in self.rules_for(attrs.user, attrs.namespace if attrs.resource_request else ""):
            if rule.allows(attrs):
                return Decision.ALLOW, ""
        return Decision.NO_OPINION, ""

    # ------------------------------------------------------------------ escalation

    def covers(self, user: UserInfo, namespace: str, wanted: Iterable[Rule]) -> list[Rule]:
        """The rules in ``wanted`` that ``user`` does not hold itself (empty = may grant all)."""
        owned = self.rules_for(user, namespace)
        missing = []
        for rule in wanted:
            if not all(_rule_covered(owned, verb, rule) for verb in rule.verbs):
                missing.append(rule)
        return missing


def _rule_covered(owned: list[Rule], verb: str, rule: Rule) -> bool:
    if rule.non_resource_urls and not rule.resources:
        return all(any(_match(o.verbs, verb) and any(u == "*" or u == url or (u.endswith("*") and url.startswith(u[:-1]))
                                                     for u in o.non_resource_urls) for o in owned)
                   for url in rule.non_resource_urls)
    for group in rule.api_groups or ("",):
        for resource in rule.resources:
            names = rule.resource_names or ("",)
            for name in names:
                if not any(_match(o.verbs, verb) and _match(o.api_groups, group)
                           and (_match(o.resources, resource) or ("/" in resource and f"{resource.split('/')[0]}/*" in o.resources))
                           and (not o.resource_names or (name and name in o.resource_names))
                           for o in owned):
                    return False
    return True


class PrivilegedGroups:
    """Members of ``system:masters`` may do anything, whatever RBAC objects exist (as upstream)."""

    async def authorize(self, attrs: Attributes) -> tuple[Decision, str]:
        if "system:masters" in attrs.user.groups:
            return Decision.ALLOW, ""
        return Decision.NO_OPINION, ""


class EscalationCheck:
    """Admission: no granting of permissions one does not hold (RBAC privilege escalation)."""

    def __init__(self, rbac: RBACAuthorizer, authorize: Callable[[Attributes], Any], objects: Objects) -> None:
        self.rbac = rbac
        self.authorize = authorize
        self.objects = objects

    async def admit(self, op: Any) -> None:
        from apimachinery import errors

        rt = op.info.rt
        if rt.group != RBAC_GROUP or op.verb not in ("create", "update") or op.obj is None:
            return
        user: UserInfo = op.user
        namespace = op.info.namespace
        if rt.plural in ("roles", "clusterroles"):
            wanted = [Rule.from_dict(r) for r in op.obj.get("rules") or []]
            escalate_verb = "escalate"
        elif rt.plural in ("rolebindings", "clusterrolebindings"):
            ref = op.obj.get("roleRef") or {}
            escalate_verb = "bind"
            cluster_roles = {(r.get("metadata") or {}).get("name", ""): r for r in self.objects("clusterroles")}
            if ref.get("kind") == "ClusterRole":
                wanted = self.rbac._cluster_role_rules(ref.get("name", ""), cluster_roles)
            else:
                role = next((r for r in self.objects("roles") if (r.get("metadata") or {}).get("namespace") == namespace
                             and (r.get("metadata") or {}).get("name") == ref.get("name")), None)
                wanted = [Rule.from_dict(r) for r in (role or {}).get("rules") or []]
        else:
            return
        attrs = Attributes(user=user, verb=escalate_verb, resource_request=True, api_group=RBAC_GROUP,
                           resource=rt.plural if escalate_verb == "escalate" else
                           ("clusterroles" if (op.obj.get("roleRef") or {}).get("kind") == "ClusterRole" else "roles"),
                           namespace=namespace, name=(op.obj.get("roleRef") or {}).get("name", "")
                           if escalate_verb == "bind" else (op.obj.get("metadata") or {}).get("name", ""))
        decision, _ = await self.authorize(attrs)
        if decision is Decision.ALLOW:
            return
        missing = self.rbac.covers(user, namespace, wanted)
        if missing:
            name = (op.obj.get("metadata") or {}).get("name", "")
            what = "create or update" if escalate_verb == "escalate" else "bind"
            raise errors.StatusError(
                code=403, reason="Forbidden",
                message=f"{rt.plural}.{RBAC_GROUP} \"{name}\" is forbidden: user \"{user.name}\" (groups="
                        f"{list(user.groups)}) is attempting to grant RBAC permissions not currently held: "
                        f"{[r.to_dict() for r in missing]} (cannot {what} without holding them)",
                details=errors.StatusDetails(name=name, group=RBAC_GROUP, kind=rt.plural))


# ---------------------------------------------------------------------- defaults

def _role(name: str, rules: list[dict[str, Any]], *, labels: dict[str, str] | None = None,
          aggregate_from: list[dict[str, str]] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults", **(labels or {})},
                            "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}}
    role: dict[str, Any] = {"apiVersion": f"{RBAC_GROUP}/v1", "kind": "ClusterRole", "metadata": meta, "rules": rules}
    if aggregate_from:
        role["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": m} for m in aggregate_from]}
    return role


def _binding(name: str, role: str, subjects: list[dict[str, str]]) -> dict[str, Any]:
    return {"apiVersion": f"{RBAC_GROUP}/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
                         "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role}, "subjects": subjects}


_READ = ["get", "list", "watch"]
_WRITE = ["create", "delete", "deletecollection", "patch", "update"]
_VIEW_RESOURCES = [
    {"apiGroups": [""], "resources": ["configmaps", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status",
                                      "pods", "pods/log", "pods/status", "replicationcontrollers",
                                      "replicationcontrollers/scale", "replicationcontrollers/status",
                                      "serviceaccounts", "services", "services/status", "events", "limitranges",
                                      "resourcequotas", "resourcequotas/status", "namespaces", "namespaces/status",
                                      "bindings"], "verbs": _READ},
    {"apiGroups": ["apps"], "resources": ["controllerrevisions", "daemonsets", "daemonsets/status", "deployments",
                                          "deployments/scale", "deployments/status", "replicasets", "replicasets/scale",
                                          "replicasets/status", "statefulsets", "statefulsets/scale",
                                          "statefulsets/status"], "verbs": _READ},
    {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers", "horizontalpodautoscalers/status"], "verbs": _READ},
    {"apiGroups": ["batch"], "resources": ["cronjobs", "cronjobs/status", "jobs", "jobs/status"], "verbs": _READ},
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses", "ingresses/status", "networkpolicies"], "verbs": _READ},
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets", "poddisruptionbudgets/status"], "verbs": _READ},
    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": _READ},
    {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": _READ},
]
_EDIT_RESOURCES = [
    {"apiGroups": [""], "resources": ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "pods/eviction",
                                      "configmaps", "endpoints", "persistentvolumeclaims", "replicationcontrollers",
                                      "replicationcontrollers/scale", "secrets", "serviceaccounts", "services",
                                      "services/proxy", "serviceaccounts/token"], "verbs": _WRITE},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": _READ},
    {"apiGroups": ["apps"], "resources": ["daemonsets", "deployments", "deployments/rollback", "deployments/scale",
                                          "replicasets", "replicasets/scale", "statefulsets", "statefulsets/scale"],
     "verbs": _WRITE},
    {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": _WRITE},
    {"apiGroups": ["batch"], "resources": ["cronjobs", "jobs"], "verbs": _WRITE},
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses", "networkpolicies"], "verbs": _WRITE},
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": _WRITE},
    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": _WRITE},
]
_ADMIN_RESOURCES = [
    {"apiGroups": [RBAC_GROUP], "resources": ["rolebindings", "roles"], "verbs": [*_READ, *_WRITE]},
    {"apiGroups": ["authorization.k8s.io"], "resources": ["localsubjectaccessreviews"], "verbs": ["create"]},
]

AGG = "rbac.authorization.k8s.io/aggregate-to-"


def reconcile(existing: dict[str, Any], default: dict[str, Any]) -> dict[str, Any] | None:
    """What a bootstrap role or binding should become (None: nothing to add).

    Like upstream's reconciliation, additive and only for objects still annotated
    ``rbac.authorization.kubernetes.io/autoupdate: "true"``: missing rules or subjects are added,
    whatever an administrator added is kept.
    """
    annotations = (existing.get("metadata") or {}).get("annotations") or {}
    if annotations.get("rbac.authorization.kubernetes.io/autoupdate", "true") != "true":
        return None
    field = "rules" if default["kind"] in ("ClusterRole", "Role") else "subjects"
    have = list(existing.get(field) or [])
    missing = [item for item in default.get(field) or [] if item not in have]
    wanted_aggregation = default.get("aggregationRule")
    if not missing and (wanted_aggregation is None or existing.get("aggregationRule") == wanted_aggregation):
        return None
    updated = dict(existing, **{field: have + missing})
    if wanted_aggregation is not None:
        updated["aggregationRule"] = wanted_aggregation
    return updated


def default_objects() -> list[dict[str, Any]]:
    """The bootstrap ClusterRoles and ClusterRoleBindings every cluster has (reconciled at start)."""
    discovery_urls = ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/readyz", "/openapi",
                      "/openapi/*", "/version", "/version/"]
    node_rules = [
        {"apiGroups": [""], "resources": ["nodes", "nodes/status"], "verbs": ["create", "get", "list", "watch", "update", "patch"]},
        {"apiGroups": [""], "resources": ["pods", "pods/status"], "verbs": ["get", "list", "watch", "create", "delete", "update", "patch"]},
        {"apiGroups": [""], "resources": ["configmaps", "secrets", "services", "endpoints", "persistentvolumeclaims",
                                          "persistentvolumes"], "verbs": _READ},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch", "update"]},
        {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create", "delete", "get", "patch", "update", "list", "watch"]},
        {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"], "verbs": [*_READ, "create"]},
        # the kubelet's built-in local provisioner binds claims to PersistentVolumes it creates
        {"apiGroups": [""], "resources": ["persistentvolumes", "persistentvolumes/status"],
         "verbs": [*_READ, "create", "update", "patch", "delete"]},
        # the kubelet's HTTPS endpoint checks its callers' tokens and rights through the API
        {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
        {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["persistentvolumeclaims", "persistentvolumeclaims/status"],
         "verbs": ["update", "patch"]},
    ]
    return [
        _role("cluster-admin", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                                {"nonResourceURLs": ["*"], "verbs": ["*"]}]),
        _role("admin", [], aggregate_from=[{f"{AGG}admin": "true"}]),
        _role("edit", [], labels={f"{AGG}admin": "true"}, aggregate_from=[{f"{AGG}edit": "true"}]),
        _role("view", [], labels={f"{AGG}edit": "true"}, aggregate_from=[{f"{AGG}view": "true"}]),
        _role("system:aggregate-to-admin", _ADMIN_RESOURCES, labels={f"{AGG}admin": "true"}),
        _role("system:aggregate-to-edit", _EDIT_RESOURCES, labels={f"{AGG}edit": "true"}),
        _role("system:aggregate-to-view", _VIEW_RESOURCES, labels={f"{AGG}view": "true"}),
        _role("system:discovery", [{"nonResourceURLs": discovery_urls, "verbs": ["get"]}]),
        _role("system:public-info-viewer", [{"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version",
                                                                  "/version/"], "verbs": ["get"]}]),
        _role("system:basic-user", [{"apiGroups": ["authorization.k8s.io"],
                                     "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                                     "verbs": ["create"]},
                                    {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"],
                                     "verbs": ["create"]}]),
        _role("system:kube-scheduler", [
            {"apiGroups": [""], "resources": ["pods", "nodes", "namespaces", "services", "persistentvolumeclaims",
                                              "persistentvolumes", "replicationcontrollers"], "verbs": _READ},
            {"apiGroups": [""], "resources": ["pods/binding", "bindings"], "verbs": ["create"]},
            {"apiGroups": [""], "resources": ["pods/status"], "verbs": ["patch", "update"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]},
            {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch", "update"]},
            {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch", "update"]},
            {"apiGroups": ["apps"], "resources": ["replicasets", "statefulsets"], "verbs": _READ},
            {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": _READ},
            {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses", "csinodes"], "verbs": _READ},
            {"apiGroups": ["scheduling.k8s.io"], "resources": ["priorityclasses"], "verbs": _READ},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create", "get", "list", "watch", "update", "patch"]},
        ]),
        _role("system:kube-controller-manager", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
        _role("system:node", node_rules),
        _role("system:node-proxier", [
            {"apiGroups": [""], "resources": ["services", "endpoints", "nodes", "pods"], "verbs": _READ},
            # proxy, DNS and ingress elect their LoadBalancer allocator / status writer through Leases
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
             "verbs": ["create", "get", "list", "watch", "update", "patch"]},
            {"apiGroups": ["networking.k8s.io"], "resources": ["ingressclasses"], "verbs": ["create"]},
            {"apiGroups": [""], "resources": ["services/status"], "verbs": ["patch", "update"]},
            {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": _READ},
            {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses", "ingressclasses"], "verbs": _READ},
            {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses/status"], "verbs": ["patch", "update"]},
            {"apiGroups": [""], "resources": ["secrets"], "verbs": _READ},
            {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch", "update"]},
        ]),
        _binding("cluster-admin", "cluster-admin", [{"apiGroup": RBAC_GROUP, "kind": "Group", "name": "system:masters"}]),
        _binding("system:discovery", "system:discovery", [{"apiGroup": RBAC_GROUP, "kind": "Group", "name": "system:authenticated"}]),
        _binding("system:basic-user", "system:basic-user", [{"apiGroup": RBAC_GROUP, "kind": "Group", "name": "system:authenticated"}]),
        _binding("system:public-info-viewer", "system:public-info-viewer", [
            {"apiGroup": RBAC_GROUP, "kind": "Group", "name": "system:authenticated"},
            {"apiGroup": RBAC_GROUP, "kind": "Group", "name": "system:unauthenticated"}]),
        _binding("system:kube-scheduler", "system:kube-scheduler", [{"apiGroup": RBAC_GROUP, "kind": "User", "name": "system:kube-scheduler"}]),
        _binding("system:kube-controller-manager", "system:kube-controller-manager", [
            {"apiGroup": RBAC_GROUP, "kind": "User", "name": "system:kube-controller-manager"}]),
        _binding("system:node", "system:node", [{"apiGroup": RBAC_GROUP, "kind": "Group", "name": "system:nodes"}]),
        _binding("system:node-proxier", "system:node-proxier", [{"apiGroup": RBAC_GROUP, "kind": "User", "name": "system:kube-proxy"}]),
    ]
