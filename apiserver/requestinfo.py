"""Parse a Kubernetes API URL into what it addresses (Kubernetes' RequestInfo)."""

from __future__ import annotations

from dataclasses import dataclass

from apimachinery.registry import Registry, ResourceType


@dataclass(frozen=True, slots=True)
class RequestInfo:
    rt: ResourceType
    namespace: str  # "" for cluster-scoped or all-namespaces
    name: str  # "" for collections
    subresource: str  # "" for the object itself

    @property
    def is_collection(self) -> bool:
        return not self.name


def parse(registry: Registry, path: str) -> RequestInfo | None:
    """``/api/v1/namespaces/default/pods/web/status`` → RequestInfo(pods, default, web, status)."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    if not rest:
        return None
    # /namespaces/{ns}/{plural}... addresses namespaced resources, unless {plural} is not one
    # (then it is the namespace object's own subresource, e.g. /namespaces/{name}/status).
    if rest[0] == "namespaces" and len(rest) >= 3:
        rt = registry.get(group, version, rest[2])
        if rt is not None and rt.namespaced:
            ns, plural_rest = rest[1], rest[2:]
            name = plural_rest[1] if len(plural_rest) > 1 else ""
            sub = plural_rest[2] if len(plural_rest) > 2 else ""
            if len(plural_rest) > 3 and sub != "proxy":  # only .../proxy/ takes a path after it
                return None
            return RequestInfo(rt, ns, name, sub)
    rt = registry.get(group, version, rest[0])
    if rt is None or (len(rest) > 3 and rest[2] != "proxy"):
        return None
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    return RequestInfo(rt, "", name, sub)
