"""``pods/proxy``, ``services/proxy`` and ``nodes/proxy``: HTTP through the API server to a backend.

What ``kubectl proxy`` users browse, e.g. ``/api/v1/namespaces/default/pods/web-0:8080/proxy/``
(the "Learn Kubernetes Basics" tutorial) or ``/api/v1/namespaces/default/services/web:80/proxy/``.
As upstream, the name may carry a scheme and a port: ``name``, ``name:port`` or
``scheme:name:port`` (scheme ``http`` or ``https``):

* a pod: its ``status.podIP`` and that port (default 80);
* a service: a ready endpoint of the service port named or numbered ``port`` (the only port when
  none is given), read from the service's EndpointSlices, chosen at random;
* a node: its kubelet (``InternalIP`` and ``daemonEndpoints``, HTTPS, as nodeproxy.py talks to it),
  or the given port; the caller's bearer token is forwarded, so the kubelet authorizes the caller.

Everything after ``/proxy`` is the backend path; the query string, method, body and end-to-end
headers pass through, and the answer streams back. The caller's Authorization header is sent only to
a kubelet. WebSocket upgrades and the rewriting of links in HTML bodies are not done.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from apimachinery import errors
from apimachinery.errors import StatusError

if TYPE_CHECKING:
    from .app import APIServer
    from .requestinfo import RequestInfo

# RFC 7230 hop-by-hop headers, and what aiohttp sets itself on the way back.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                        "trailer", "transfer-encoding", "upgrade", "host", "content-length"})


def split_scheme_name_port(ident: str) -> tuple[str, str, str]:
    """``name`` | ``name:port`` | ``scheme:name:port`` → (scheme, name, port), upstream's rules."""
    parts = ident.split(":")
    if len(parts) == 1:
        scheme, name, port = "", parts[0], ""
    elif len(parts) == 2:
        scheme, name, port = "", parts[0], parts[1]
    elif len(parts) == 3 and parts[0] in ("http", "https"):
        scheme, name, port = parts
    else:
        raise errors.bad_request(f"invalid request {ident!r}")
    if not name:
        raise errors.bad_request(f"invalid request {ident!r}")
    return scheme, name, port


def backend_path(request: web.Request) -> str:
    """The part of the raw path after ``.../proxy`` ("/" when nothing follows)."""
    raw = request.raw_path.split("?", 1)[0]
    marker = "/proxy"
    at = raw.find(marker + "/")
    tail = raw[at + len(marker):] if at >= 0 else ""
    return tail or "/"


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


async def _pod_target(server: APIServer, info: RequestInfo, scheme: str, name: str, port: str) -> str:
    pod = await server.storage.get(info.rt, info.namespace, name)
    ip = (pod.get("status") or {}).get("podIP")
    if not ip:
        raise errors.service_unavailable(f'pod "{name}" has no IP address yet')
    return f"{scheme or 'http'}://{_host(ip)}:{port or 80}"


async def _service_target(server: APIServer, info: RequestInfo, scheme: str, name: str, port: str) -> str:
    service = await server.storage.get(info.rt, info.namespace, name)
    ports = (service.get("spec") or {}).get("ports") or []
    if port:
        chosen = [p for p in ports if p.get("name") == port or str(p.get("port")) == port]
    else:
        chosen = ports if len(ports) == 1 else [p for p in ports if not p.get("name")]
    if not chosen:
        raise errors.service_unavailable(f'no service port "{port}" found for service "{name}"')
    port_name = chosen[0].get("name") or ""
    slices_rt = server.registry.get("discovery.k8s.io", "v1", "endpointslices")
    assert slices_rt is not None
    slices = await server.storage.list(
        slices_rt, info.namespace,
        accept=lambda s: ((s.get("metadata") or {}).get("labels") or {}).get("kubernetes.io/service-name") == name)
    candidates: list[str] = []
    for eps in slices.items:
        numbers = [p.get("port") for p in eps.get("ports") or [] if (p.get("name") or "") == port_name]
        if not numbers or not numbers[0]:
            continue
        for endpoint in eps.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is False:
                continue
            candidates += [f"{_host(a)}:{numbers[0]}" for a in endpoint.get("addresses") or []]
    if not candidates:
        raise errors.service_unavailable(f'no endpoints available for service "{name}"')
    return f"{scheme or 'http'}://{random.choice(candidates)}"


async def _node_target(server: APIServer, info: RequestInfo, scheme: str, name: str, port: str) -> str:
    node = await server.storage.get(info.rt, "", name)
    status = node.get("status") or {}
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or [] if isinstance(a, dict)}
    host = addresses.get("InternalIP") or addresses.get("ExternalIP") or addresses.get("Hostname")
    kubelet_port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    if not host or not (port or kubelet_port):
        raise errors.service_unavailable(f'node "{name}" has no address in its status')
    return f"{scheme or 'https'}://{_host(host)}:{port or kubelet_port}"


async def proxy(server: APIServer, request: web.Request, info: RequestInfo,
                session: aiohttp.ClientSession) -> web.StreamResponse:
    """Entry point for ``{pods,services,nodes}/{name}/proxy[/path]``."""
    scheme, name, port = split_scheme_name_port(info.name)
    targets = {"pods": _pod_target, "services": _service_target, "nodes": _node_target}
    base = await targets[info.rt.plural](server, info, scheme, name, port)
    url = base + backend_path(request)
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP and k.lower() != "authorization"}
    if info.rt.plural == "nodes" and request.headers.get("Authorization"):
        headers["Authorization"] = request.headers["Authorization"]  # the kubelet authorizes the caller
    body = await request.read() if request.can_read_body else None
    try:
        upstream = await session.request(request.method, url, params=list(request.query.items()), data=body,
                                         headers=headers, allow_redirects=False, ssl=False)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise StatusError(code=503, reason="ServiceUnavailable",
                          message=f"error trying to reach {info.rt.plural[:-1]}: {exc}") from None
    async with upstream:
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        for key, value in upstream.headers.items():
            if key.lower() not in HOP_BY_HOP:
                response.headers.add(key, value)
        await response.prepare(request)
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
        return response

