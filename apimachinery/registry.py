"""The built-in resource types: group, version, kind, plural, scope, verbs, short names, subresources.

This table drives discovery, URL routing, OpenAPI, storage keys and Table columns, so a resource
is declared exactly once, here. Custom resources are added at runtime as more ``ResourceType``s.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
READ_VERBS = ("get", "list", "watch")


@dataclass(frozen=True, slots=True)
class Subresource:
    name: str
    kind: str  # response kind
    group: str = ""  # response group ("" = the resource's own group)
    version: str = ""
    verbs: tuple[str, ...] = ("get", "patch", "update")


@dataclass(frozen=True, slots=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[Subresource, ...] = ()
    # Resources that only exist as a request/response (reviews, bindings): never stored.
    virtual: bool = False
    # Objects of this kind have a spec whose changes bump metadata.generation.
    has_spec_generation: bool = False
    status_subresource: bool = field(default=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """``deployments.apps`` / ``pods``: the form Kubernetes uses in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    def subresource(self, name: str) -> Subresource | None:
        for sub in self.subresources:
            if sub.name == name:
                return sub
        return None


def _status(kind: str) -> Subresource:
    return Subresource("status", kind)


_SCALE = Subresource("scale", "Scale", group="autoscaling", version="v1")
_PROXY_VERBS = ("create", "delete", "get", "patch", "update")


def _r(group: str, version: str, kind: str, plural: str, *, namespaced: bool = True, short: tuple[str, ...] = (),
       categories: tuple[str, ...] = (), verbs: tuple[str, ...] = ALL_VERBS, subs: tuple[Subresource, ...] = (),
       virtual: bool = False, generation: bool = False) -> ResourceType:
    return ResourceType(group, version, kind, plural, kind.lower(), namespaced, short, categories, verbs, subs,
                        virtual, generation, any(s.name == "status" for s in subs))


BUILTIN: tuple[ResourceType, ...] = (
    # core/v1
    _r("", "v1", "Namespace", "namespaces", namespaced=False, short=("ns",),
       verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
       subs=(_status("Namespace"), Subresource("finalize", "Namespace", verbs=("update",)))),
    _r("", "v1", "Pod", "pods", short=("po",), categories=("all",),
       subs=(_status("Pod"), Subresource("binding", "Binding", verbs=("create",)),
             Subresource("ephemeralcontainers", "Pod", verbs=("get", "patch", "update")),
             Subresource("eviction", "Eviction", group="policy", version="v1", verbs=("create",)),
             Subresource("log", "Pod", verbs=("get",)), Subresource("exec", "PodExecOptions", verbs=("create", "get")),
             Subresource("attach", "PodAttachOptions", verbs=("create", "get")),
             Subresource("portforward", "PodPortForwardOptions", verbs=("create", "get")),
             Subresource("proxy", "PodProxyOptions", verbs=_PROXY_VERBS))),
    _r("", "v1", "Binding", "bindings", verbs=("create",), virtual=True),
    _r("", "v1", "ComponentStatus", "componentstatuses", namespaced=False, short=("cs",), verbs=("get", "list"),
       virtual=True),
    _r("", "v1", "Node", "nodes", namespaced=False, short=("no",),
       subs=(_status("Node"), Subresource("proxy", "NodeProxyOptions", verbs=_PROXY_VERBS))),
    _r("", "v1", "Service", "services", short=("svc",), categories=("all",),
       subs=(_status("Service"), Subresource("proxy", "ServiceProxyOptions", verbs=_PROXY_VERBS))),
    _r("", "v1", "Endpoints", "endpoints", short=("ep",)),
    _r("", "v1", "ConfigMap", "configmaps", short=("cm",)),
    _r("", "v1", "Secret", "secrets"),
    _r("", "v1", "ServiceAccount", "serviceaccounts", short=("sa",),
       subs=(Subresource("token", "TokenRequest", group="authentication.k8s.io", version="v1", verbs=("create",)),)),
    _r("", "v1", "Event", "events", short=("ev",)),
    _r("", "v1", "PodTemplate", "podtemplates"),
    _r("", "v1", "PersistentVolume", "persistentvolumes", namespaced=False, short=("pv",),
       subs=(_status("PersistentVolume"),)),
    _r("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", short=("pvc",),
       subs=(_status("PersistentVolumeClaim"),)),
    _r("", "v1", "ResourceQuota", "resourcequotas", short=("quota",), subs=(_status("ResourceQuota"),)),
    _r("", "v1", "LimitRange", "limitranges", short=("limits",)),
    _r("", "v1", "ReplicationController", "replicationcontrollers", short=("rc",), categories=("all",),
       subs=(_status("ReplicationController"), _SCALE), generation=True),
    # apps/v1
    _r("apps", "v1", "Deployment", "deployments", short=("deploy",), categories=("all",),
       subs=(_status("Deployment"), _SCALE), generation=True),
    _r("apps", "v1", "ReplicaSet", "replicasets", short=("rs",), categories=("all",),
       subs=(_status("ReplicaSet"), _SCALE), generation=True),
    _r("apps", "v1", "StatefulSet", "statefulsets", short=("sts",), categories=("all",),
       subs=(_status("StatefulSet"), _SCALE), generation=True),
    _r("apps", "v1", "DaemonSet", "daemonsets", short=("ds",), categories=("all",),
       subs=(_status("DaemonSet"),), generation=True),
    _r("apps", "v1", "ControllerRevision", "controllerrevisions"),
    # batch/v1
    _r("batch", "v1", "Job", "jobs", categories=("all",), subs=(_status("Job"),), generation=True),
    _r("batch", "v1", "CronJob", "cronjobs", short=("cj",), categories=("all",), subs=(_status("CronJob"),),
       generation=True),
    # autoscaling
    _r("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", short=("hpa",), categories=("all",),
       subs=(_status("HorizontalPodAutoscaler"),), generation=True),
    # autoscaling/v1: the same objects, stored as v2 (listed after it: the watch cache of a resource is
    # built for its first version) and converted by apiserver/conversion.py, as upstream serves both.
    _r("autoscaling", "v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers", short=("hpa",), categories=("all",),
       subs=(_status("HorizontalPodAutoscaler"),), generation=True),
    # coordination, discovery, networking, policy, scheduling, storage
    _r("coordination.k8s.io", "v1", "Lease", "leases"),
    _r("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
    _r("networking.k8s.io", "v1", "Ingress", "ingresses", short=("ing",), subs=(_status("Ingress"),), generation=True),
    _r("networking.k8s.io", "v1", "IngressClass", "ingressclasses", namespaced=False),
    _r("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", short=("netpol",), generation=True),
    _r("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", short=("pdb",),
       subs=(_status("PodDisruptionBudget"),), generation=True),
    _r("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", namespaced=False, short=("pc",)),
    _r("storage.k8s.io", "v1", "StorageClass", "storageclasses", namespaced=False, short=("sc",)),
    # events.k8s.io
    _r("events.k8s.io", "v1", "Event", "events", short=("ev",)),
    # metrics.k8s.io: read-only, computed from the kubelets' /stats/summary (apiserver/metricsapi.py)
    _r("metrics.k8s.io", "v1beta1", "PodMetrics", "pods", verbs=("get", "list"), virtual=True),
    _r("metrics.k8s.io", "v1beta1", "NodeMetrics", "nodes", namespaced=False, verbs=("get", "list"), virtual=True),
    # RBAC (stored here; enforced by the authorizer)
    _r("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    _r("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
    _r("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", namespaced=False),
    _r("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", namespaced=False),
    # custom resources
    _r("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", namespaced=False,
       short=("crd", "crds"), categories=("api-extensions",), subs=(_status("CustomResourceDefinition"),)),
    # admission webhooks (called by the API server's admission chain)
    _r("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations",
       namespaced=False, categories=("api-extensions",)),
    _r("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations",
       namespaced=False, categories=("api-extensions",)),
    # review APIs: request/response only
    _r("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", namespaced=False, verbs=("create",),
       virtual=True),
    _r("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", namespaced=False, verbs=("create",), virtual=True),
    _r("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", namespaced=False,
       verbs=("create",), virtual=True),
    _r("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews", namespaced=False,
       verbs=("create",), virtual=True),
    _r("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews", namespaced=False,
       verbs=("create",), virtual=True),
    _r("authorization.k8s.io", "v1", "LocalSubjectAccessReview", "localsubjectaccessreviews",
       verbs=("create",), virtual=True),
)

# Preferred version first, as discovery lists them.
GROUP_VERSIONS: dict[str, tuple[str, ...]] = {"autoscaling": ("v2", "v1")}


class Registry:
    """Lookup of resource types by (group, version, plural), by kind, and by short name."""

    def __init__(self, types: tuple[ResourceType, ...] = BUILTIN) -> None:
        self._types: list[ResourceType] = []
        self._by_path: dict[tuple[str, str, str], ResourceType] = {}
        self._by_kind: dict[tuple[str, str, str], ResourceType] = {}
        for rt in types:
            self.add(rt)

    def add(self, rt: ResourceType) -> None:
        self._types.append(rt)
        self._by_path[(rt.group, rt.version, rt.plural)] = rt
        self._by_kind[(rt.group, rt.version, rt.kind)] = rt

    def remove(self, group: str, version: str, plural: str) -> None:
        rt = self._by_path.pop((group, version, plural), None)
        if rt is not None:
            self._types.remove(rt)
            self._by_kind.pop((rt.group, rt.version, rt.kind), None)

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, group: str, version: str, kind: str) -> ResourceType | None:
        return self._by_kind.get((group, version, kind))

    def all(self) -> list[ResourceType]:
        return list(self._types)

    def groups(self) -> dict[str, list[str]]:
        """group -> versions, preferred first."""
        out: dict[str, list[str]] = {}
        for rt in self._types:
            versions = out.setdefault(rt.group, [])
            if rt.version not in versions:
                versions.append(rt.version)
        for group, order in GROUP_VERSIONS.items():
            if group in out:
                out[group].sort(key=lambda v: order.index(v) if v in order else len(order))
        return out
