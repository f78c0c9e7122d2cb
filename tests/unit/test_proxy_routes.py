"""Ingress routing rules (proxy/routes.py): the path-matching table of the Kubernetes Ingress docs, hosts, TLS."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.ingress import strip_hop_by_hop
from proxy.routes import RouteTable, normalize_host

Obj = dict[str, Any]


def backend(name: str, port: int | str = 80) -> Obj:
    return {"service": {"name": name, "port": {"number": port} if isinstance(port, int) else {"name": port}}}


def ingress(name: str, rules: list[Obj], *, created: str = "2024-01-01T00:00:00Z", ns: str = "default",
            **spec: Any) -> Obj:
    return {"metadata": {"name": name, "namespace": ns, "creationTimestamp": created},
            "spec": {"rules": rules, **spec}}


def rule(paths: list[tuple[str, str, str]], host: str = "") -> Obj:
    r: Obj = {"http": {"paths": [{"path": p, "pathType": t, "backend": backend(s)} for p, t, s in paths]}}
    if host:
        r["host"] = host
    return r


def matched(table: RouteTable, host: str, path: str) -> str | None:
    b = table.match(host, path)
    return b.service if b else None


# The "Examples" table of https://kubernetes.io/docs/concepts/services-networking/ingress/#examples
DOCS_TABLE = [
    ("Prefix", "/", "/", True), ("Prefix", "/", "/aaa", True),
    ("Exact", "/foo", "/foo", True), ("Exact", "/foo", "/bar", False), ("Exact", "/foo", "/foo/", False),
    ("Exact", "/foo/", "/foo", False),
    ("Prefix", "/foo", "/foo", True), ("Prefix", "/foo", "/foo/", True),
    ("Prefix", "/foo/", "/foo", True), ("Prefix", "/foo/", "/foo/", True),
    ("Prefix", "/aaa/bb", "/aaa/bbb", False), ("Prefix", "/aaa/bbb", "/aaa/bbb", True),
    ("Prefix", "/aaa/bbb/", "/aaa/bbb", True), ("Prefix", "/aaa/bbb", "/aaa/bbb/", True),
    ("Prefix", "/aaa/bbb", "/aaa/bbb/ccc", True), ("Prefix", "/aaa/bbb", "/aaa/bbbxyz", False),
    ("ImplementationSpecific", "/aaa/bbb", "/aaa/bbb/ccc", True),
]


@pytest.mark.parametrize("kind,rule_path,request_path,matches", DOCS_TABLE)
def test_path_matching_as_the_docs_table(kind: str, rule_path: str, request_path: str, matches: bool) -> None:
    table = RouteTable.build([ingress("i", [rule([(rule_path, kind, "svc")])])])
    assert (matched(table, "any", request_path) == "svc") is matches


def test_longest_path_wins_then_exact_over_prefix_then_older_ingress() -> None:
    table = RouteTable.build([
        ingress("new", [rule([("/aaa", "Prefix", "new-prefix")])], created="2024-02-01T00:00:00Z"),
        ingress("old", [rule([("/", "Prefix", "root"), ("/aaa", "Prefix", "old-prefix"),
                              ("/aaa/bbb", "Prefix", "deep"), ("/aaa", "Exact", "exact")])],
                created="2024-01-01T00:00:00Z"),
    ])
    assert matched(table, "h", "/aaa") == "exact"
    assert matched(table, "h", "/aaa/x") == "old-prefix"  # same path in two Ingresses: the older one
    assert matched(table, "h", "/aaa/bbb/c") == "deep"
    assert matched(table, "h", "/zzz") == "root"


def test_hosts_exact_wildcard_any_and_default_backend() -> None:
    table = RouteTable.build([
        ingress("a", [rule([("/", "Prefix", "foo")], host="foo.bar.com"),
                      rule([("/", "Prefix", "wild")], host="*.bar.com"),
                      rule([("/only", "Prefix", "any")])],
                defaultBackend=backend("fallback")),
        ingress("b", [], defaultBackend=backend("later-default"), created="2024-05-01T00:00:00Z"),
    ])
    assert matched(table, "foo.bar.com", "/x") == "foo"
    assert matched(table, "FOO.Bar.com:8080", "/x") == "foo"
    assert matched(table, "baz.bar.com", "/x") == "wild"
    assert matched(table, "a.baz.bar.com", "/only") == "any"  # a wildcard covers one label only
    assert matched(table, "bar.com", "/only") == "any"
    assert matched(table, "bar.com", "/elsewhere") == "fallback"  # the oldest Ingress's default backend
    assert table.service_keys() == {"default/foo", "default/wild", "default/any", "default/fallback"}
    # A host group that exists but has no matching path does not fall back to wider groups.
    table2 = RouteTable.build([ingress("c", [rule([("/api", "Prefix", "api")], host="h.example"),
                                             rule([("/", "Prefix", "any")])])])
    assert matched(table2, "h.example", "/web") is None
    assert matched(table2, "other", "/web") == "any"


def test_backends_by_port_name_and_unsupported_ones_skipped() -> None:
    resource_backend = {"path": "/r", "pathType": "Prefix",
                        "backend": {"resource": {"apiGroup": "x", "kind": "Bucket", "name": "b"}}}
    table = RouteTable.build([ingress("a", [{"http": {"paths": [
        {"path": "/n", "pathType": "Prefix", "backend": backend("named", "web")}, resource_backend,
        {"path": "relative", "pathType": "Prefix", "backend": backend("bad")}]}}])])
    b = table.match("h", "/n")
    assert b is not None and (b.service, b.port, b.ingress) == ("named", "web", "default/a")
    assert table.match("h", "/r") is None and table.match("h", "/relative") is None


def test_tls_secrets_by_server_name() -> None:
    table = RouteTable.build([
        ingress("a", [], ns="one", tls=[{"hosts": ["secure.example", "*.wild.example"], "secretName": "s1"}]),
        ingress("b", [], ns="two", tls=[{"secretName": "default-cert"}], created="2024-03-01T00:00:00Z"),
    ])
    assert table.tls_secret("Secure.Example") == ("one", "s1")
    assert table.tls_secret("x.wild.example") == ("one", "s1")
    assert table.tls_secret("other.example") == ("two", "default-cert")
    assert table.tls_secret("") == ("two", "default-cert")
    assert table.secrets() == {("one", "s1"), ("two", "default-cert")}


def test_normalize_host() -> None:
    assert normalize_host("Foo.COM.:8080") == "foo.com"
    assert normalize_host("[::1]:80") == "[::1]"
    assert normalize_host("") == ""


def test_hop_by_hop_headers_are_dropped_with_those_connection_names() -> None:
    from multidict import CIMultiDict

    headers = CIMultiDict([("Connection", "keep-alive, X-Secret"), ("X-Secret", "1"), ("Keep-Alive", "timeout=5"),
                           ("Transfer-Encoding", "chunked"), ("Upgrade", "websocket"), ("TE", "trailers"),
                           ("Accept", "*/*"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
    out = strip_hop_by_hop(headers)
    assert list(out.items()) == [("Accept", "*/*"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]
