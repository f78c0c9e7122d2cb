"""Ingress routing rules as one table: host and path matching of networking.k8s.io/v1 Ingresses.

The semantics are the API's (and ingress-nginx's where the API leaves room):

* Hosts: ``foo.bar.com`` matches that host exactly (case-insensitive, port ignored);
  ``*.bar.com`` matches exactly one more label (``a.bar.com``, not ``bar.com`` nor ``a.b.bar.com``);
  a rule without host matches any host. The most specific group wins: exact, then the
  wildcard, then the host-less rules — and a request that no path of that group matches gets the
  default backend (each host is its own "server", as in nginx), not the rules of a wider group.
* Paths: ``Exact`` compares the whole path, case-sensitively. ``Prefix`` compares path
  *elements* split on ``/``: ``/foo`` matches ``/foo``, ``/foo/`` and ``/foo/bar`` but not
  ``/foobar``; a trailing slash in the rule is ignored; ``/`` matches everything.
  ``ImplementationSpecific`` is treated as ``Prefix``.
* Precedence: the longest matching path; for equal lengths ``Exact`` before ``Prefix``; then the
  older Ingress (creationTimestamp, then namespace/name) — rules of all Ingresses of the class
  are merged, as upstream controllers do.
* The default backend is the oldest Ingress's ``spec.defaultBackend``; without one, 404.
* TLS: ``spec.tls[].hosts`` name the Secret (in the Ingress's namespace) served for those
  server names (SNI), wildcards allowed; an entry without hosts makes its Secret the default
  certificate.

Pure; the controller rebuilds the table on every Ingress change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from apimachinery import meta as m

Obj = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Backend:
    namespace: str
    service: str
    port: int | str  # a number or a port name
    ingress: str = ""  # "namespace/name" of the Ingress it comes from

    @property
    def service_key(self) -> str:
        return f"{self.namespace}/{self.service}"


@dataclass(frozen=True, slots=True)
class PathRule:
    path: str
    exact: bool
    backend: Backend
    segments: tuple[str, ...] = ()

    def matches(self, path: str, segments: tuple[str, ...]) -> bool:
        if self.exact:
            return path == self.path
        n = len(self.segments)
        return segments[:n] == self.segments

    @property
    def length(self) -> int:
        return len(self.path.rstrip("/")) if not self.exact else len(self.path)


def split_path(path: str) -> tuple[str, ...]:
    return tuple(p for p in path.split("/") if p)


def normalize_host(host: str) -> str:
    """Lower-case, without port and trailing dot (``[v6]:port`` keeps its brackets)."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1] if end >= 0 else host
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def _backend(ns: str, ingress_key: str, spec: Any) -> Backend | None:
    svc = (spec or {}).get("service") if isinstance(spec, dict) else None
    if not isinstance(svc, dict) or not svc.get("name"):
        return None  # resource backends are not supported
    port = svc.get("port") or {}
    ref: int | str = port.get("number") if isinstance(port.get("number"), int) else str(port.get("name") or "")
    if ref == "" or ref == 0:
        return None
    return Backend(ns, str(svc["name"]), ref, ingress_key)


@dataclass
class RouteTable:
    exact_hosts: dict[str, list[PathRule]] = field(default_factory=dict)
    wildcard_hosts: dict[str, list[PathRule]] = field(default_factory=dict)  # ".bar.com" -> rules
    any_host: list[PathRule] = field(default_factory=list)
    default: Backend | None = None
    tls_exact: dict[str, tuple[str, str]] = field(default_factory=dict)  # host -> (namespace, secret)
    tls_wildcard: dict[str, tuple[str, str]] = field(default_factory=dict)
    tls_default: tuple[str, str] | None = None
    ingresses: int = 0

    @classmethod
    def build(cls, ingresses: Iterable[Obj]) -> RouteTable:
        table = cls()
        ordered = sorted(ingresses, key=lambda i: (m.creation_timestamp(i), m.object_key(i)))
        table.ingresses = len(ordered)
        for ing in ordered:
            ns, key = m.namespace(ing), m.object_key(ing)
            spec = ing.get("spec") or {}
            if table.default is None and spec.get("defaultBackend"):
                table.default = _backend(ns, key, spec["defaultBackend"])
            for rule in spec.get("rules") or []:
                host = normalize_host(str(rule.get("host") or ""))
                if host.startswith("*."):
                    group = table.wildcard_hosts.setdefault(host[1:], [])
                elif host:
                    group = table.exact_hosts.setdefault(host, [])
                else:
                    group = table.any_host
                for p in ((rule.get("http") or {}).get("paths") or []):
                    backend = _backend(ns, key, p.get("backend"))
                    if backend is None:
                        continue
                    path = str(p.get("path") or "/")
                    if not path.startswith("/"):
                        continue
                    exact = p.get("pathType") == "Exact"
                    group.append(PathRule(path, exact, backend, () if exact else split_path(path)))
            for tls in spec.get("tls") or []:
                secret = tls.get("secretName")
                if not secret:
                    continue
                hosts = [normalize_host(str(h)) for h in tls.get("hosts") or [] if h]
                if not hosts and table.tls_default is None:
                    table.tls_default = (ns, str(secret))
                for h in hosts:
                    target = table.tls_wildcard if h.startswith("*.") else table.tls_exact
                    target.setdefault(h[1:] if h.startswith("*.") else h, (ns, str(secret)))
        for group in (*table.exact_hosts.values(), *table.wildcard_hosts.values(), table.any_host):
            # Longest path first; Exact before Prefix at equal length; stable: older Ingress first.
            group.sort(key=lambda r: (-r.length, not r.exact))
        return table

    def _group(self, host: str) -> list[PathRule]:
        if host in self.exact_hosts:
            return self.exact_hosts[host]
        dot = host.find(".")
        if dot > 0 and host[dot:] in self.wildcard_hosts:
            return self.wildcard_hosts[host[dot:]]
        return self.any_host

    def match(self, host: str, path: str) -> Backend | None:
        """The backend for a request, or None (404: no rule and no default backend)."""
        group = self._group(normalize_host(host))
        segments = split_path(path)
        for rule in group:
            if rule.matches(path, segments):
                return rule.backend
        return self.default

    def tls_secret(self, server_name: str) -> tuple[str, str] | None:
        """``(namespace, secret)`` to present for an SNI server name."""
        host = normalize_host(server_name)
        if host in self.tls_exact:
            return self.tls_exact[host]
        dot = host.find(".")
        if dot > 0 and host[dot:] in self.tls_wildcard:
            return self.tls_wildcard[host[dot:]]
        return self.tls_default

    def service_keys(self) -> set[str]:
        """``namespace/name`` of every Service a route or the default backend sends to."""
        groups = [*self.exact_hosts.values(), *self.wildcard_hosts.values(), self.any_host]
        out = {r.backend.service_key for g in groups for r in g}
        if self.default is not None:
            out.add(self.default.service_key)
        return out

    def secrets(self) -> set[tuple[str, str]]:
        out = set(self.tls_exact.values()) | set(self.tls_wildcard.values())
        if self.tls_default:
            out.add(self.tls_default)
        return out
