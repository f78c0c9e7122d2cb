"""``pods/log`` and ``pods/exec``: the API server forwards them to the kubelet of the pod's node.

Like kube-apiserver, the API server finds the pod's ``spec.nodeName``, the Node's ``InternalIP``
address and ``status.daemonEndpoints.kubeletEndpoint.Port``, and talks HTTPS to the kubelet there:

* ``GET pods/<name>/log?container&follow&tailLines&previous&timestamps&sinceSeconds&sinceTime&limitBytes``
  → ``GET /containerLogs/<ns>/<pod>/<container>?...``, the body streamed back as it comes (so
  ``kubectl logs -f`` follows). Without ``container`` a pod's only container (or its
  ``kubectl.kubernetes.io/default-container``) is used, else 400 as upstream words it.
* ``pods/<name>/exec?command&container&stdin&stdout&stderr&tty`` as a WebSocket upgrade (what
  kubectl 1.32 does first, subprotocol ``v5.channel.k8s.io``) → a WebSocket to the kubelet's
  ``/exec/<ns>/<pod>/<container>`` with the same subprotocols; messages are relayed both ways
  unchanged. The caller must also be allowed to ``create pods/exec`` (the WebSocket request is a
  GET, authorized as ``get`` before it reaches here). SPDY upgrades are refused with 400.

The kubelet authenticates the *caller's* bearer token (it is forwarded) with a TokenReview and
authorizes the same subresource with a SubjectAccessReview, so a user reaches through the proxy
exactly what RBAC grants them here. The kubelet's certificate is self-signed and not verified
(upstream's default without ``--kubelet-certificate-authority``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp
from aiohttp import WSMsgType, web

from apimachinery import errors
from apimachinery.errors import StatusError

from .auth import Attributes, Decision

if TYPE_CHECKING:
    from .app import APIServer
    from .requestinfo import RequestInfo

log = logging.getLogger(__name__)

SUBRESOURCES = ("log", "exec", "attach", "portforward")
LOG_PARAMS = ("follow", "tailLines", "previous", "timestamps", "sinceSeconds", "sinceTime", "limitBytes",
              "insecureSkipTLSVerifyBackend")
EXEC_PARAMS = ("command", "stdin", "stdout", "stderr", "tty", "input", "output", "error")
DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"

_session: aiohttp.ClientSession | None = None


def _client() -> aiohttp.ClientSession:
    global _session
    if _session is None or _session.closed:
        _session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False, limit=0),
                                         timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
    return _session


def _is_websocket(request: web.Request) -> bool:
    return (request.headers.get("Upgrade", "").lower() == "websocket"
            and "upgrade" in request.headers.get("Connection", "").lower())


def _container_names(pod: dict[str, Any], key: str) -> list[str]:
    return [str(c.get("name")) for c in (pod.get("spec") or {}).get(key) or [] if c.get("name")]


def choose_container(pod: dict[str, Any], requested: str) -> str:
    """The container a request addresses, with upstream's 400 messages when it cannot be told."""
    name = (pod.get("metadata") or {}).get("name", "")
    containers = _container_names(pod, "containers")
    init = _container_names(pod, "initContainers")
    ephemeral = _container_names(pod, "ephemeralContainers")
    if requested:
        if requested not in containers + init + ephemeral:
            raise errors.bad_request(f"container {requested} is not valid for pod {name}")
        return requested
    default = ((pod.get("metadata") or {}).get("annotations") or {}).get(DEFAULT_CONTAINER)
    if default and default in containers:
        return default
    if len(containers) == 1:
        return containers[0]
    message = f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
    if init:
        message += f" or one of the init containers: [{' '.join(init)}]"
    raise errors.bad_request(message)


async def _kubelet_location(server: APIServer, pod: dict[str, Any]) -> str:
    node_name = (pod.get("spec") or {}).get("nodeName")
    if not node_name:
        raise errors.bad_request(f"pod {(pod.get('metadata') or {}).get('name')} does not have a host assigned")
    nodes = server.registry.get("", "v1", "nodes")
    assert nodes is not None
    try:
        node = await server.storage.get(nodes, "", node_name)
    except StatusError as err:
        if err.code == 404:
            raise errors.bad_request(f'node "{node_name}" of the pod does not exist') from None
        raise
    status = node.get("status") or {}
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or [] if isinstance(a, dict)}
    host = addresses.get("InternalIP") or addresses.get("ExternalIP") or addresses.get("Hostname")
    if not port or not host:
        raise errors.service_unavailable(f'node "{node_name}" has no kubelet endpoint in its status')
    if ":" in str(host):
        host = f"[{host}]"
    return f"https://{host}:{port}"


def _forward_headers(request: web.Request) -> dict[str, str]:
    headers = {"User-Agent": "pilot-apiserver/nodeproxy"}
    if request.headers.get("Authorization"):
        headers["Authorization"] = request.headers["Authorization"]
    return headers


def _upstream_error(exc: BaseException, url: str) -> StatusError:
    """What kube-apiserver answers when the kubelet cannot be reached (500, "error dialing backend")."""
    return StatusError(code=500, reason="InternalError", message=f"error dialing backend: {url}: {exc}")


async def proxy(server: APIServer, request: web.Request, info: RequestInfo, verb: str) -> web.StreamResponse:
    """Entry point for the pods/{log,exec,attach,portforward} subresources."""
    pods = info.rt
    pod = await server.storage.get(pods, info.namespace, info.name)
    if info.subresource == "log":
        if verb != "get":
            raise errors.method_not_allowed(resource="pods/log", action=verb)
        return await _logs(server, request, pod)
    if info.subresource == "exec":
        await _require_create(server, request, info)
        return await _exec(server, request, pod)
    raise StatusError(code=501, reason="NotImplemented",
                      message=f"pods/{info.subresource} is not supported by this cluster")


async def _require_create(server: APIServer, request: web.Request, info: RequestInfo) -> None:
    if request.get("verb") == "create":
        return
    attrs = Attributes(user=request["user"], verb="create", resource_request=True, path=request.path,
                       api_group="", api_version="v1", resource="pods", subresource=info.subresource,
                       namespace=info.namespace, name=info.name)
    decision, reason = await server.authorizer.authorize(attrs)
    if decision is not Decision.ALLOW:
        raise errors.forbidden(user=request["user"].name, verb="create", resource="pods", group="",
                               name=info.name, namespace=info.namespace, subresource=info.subresource, reason=reason)


async def _logs(server: APIServer, request: web.Request, pod: dict[str, Any]) -> web.StreamResponse:
    container = choose_container(pod, request.query.get("container", ""))
    base = await _kubelet_location(server, pod)
    meta = pod.get("metadata") or {}
    url = f"{base}/containerLogs/{quote(meta.get('namespace', ''))}/{quote(meta.get('name', ''))}/{quote(container)}"
    params = {k: request.query[k] for k in LOG_PARAMS if k in request.query}
    try:
        upstream = await _client().get(url, params=params, headers=_forward_headers(request))
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
        raise _upstream_error(exc, url) from None
    try:
        if upstream.status >= 400:
            body = await upstream.read()
            return web.Response(status=upstream.status, body=body,
                                content_type=upstream.content_type or "application/json")
        resp = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
        await resp.prepare(request)
        with contextlib.suppress(ConnectionResetError, aiohttp.ClientPayloadError):
            async for chunk in upstream.content.iter_any():
                await resp.write(chunk)
        with contextlib.suppress(ConnectionResetError):
            await resp.write_eof()
        return resp
    finally:
        upstream.close()


async def _exec(server: APIServer, request: web.Request, pod: dict[str, Any]) -> web.StreamResponse:
    if not _is_websocket(request):
        if request.headers.get("Upgrade"):
            raise errors.bad_request(f"unsupported upgrade {request.headers['Upgrade']!r}: exec is served over "
                                     "WebSocket (v5.channel.k8s.io) only")
        raise errors.bad_request("Upgrade request required")
    container = choose_container(pod, request.query.get("container", ""))
    base = await _kubelet_location(server, pod)
    meta = pod.get("metadata") or {}
    url = f"{base}/exec/{quote(meta.get('namespace', ''))}/{quote(meta.get('name', ''))}/{quote(container)}"
    params = [(k, v) for k, v in request.query.items() if k in EXEC_PARAMS]
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    try:
        upstream = await _client().ws_connect(url, params=params, headers=_forward_headers(request),
                                              protocols=offered, autoping=True, max_msg_size=16 * 1024 * 1024)
    except aiohttp.WSServerHandshakeError as exc:
        raise StatusError(code=exc.status if exc.status >= 400 else 500, reason="InternalError",
                          message=f"the kubelet refused the exec: {exc.message}") from None
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
        raise _upstream_error(exc, url) from None
    ws = web.WebSocketResponse(protocols=(upstream.protocol,) if upstream.protocol else (), autoping=True,
                               max_msg_size=16 * 1024 * 1024)
    try:
        await ws.prepare(request)

        async def relay(src: Any, dst: Any) -> None:
            async for msg in src:
                if msg.type == WSMsgType.BINARY:
                    await dst.send_bytes(msg.data)
                elif msg.type == WSMsgType.TEXT:
                    await dst.send_str(msg.data)
                else:
                    break

        down = asyncio.ensure_future(relay(upstream, ws))
        up = asyncio.ensure_future(relay(ws, upstream))
        try:
            await asyncio.wait({down, up}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (down, up):
                t.cancel()
            await asyncio.gather(down, up, return_exceptions=True)
    finally:
        await upstream.close()
        if not ws.closed:
            await ws.close()
    return ws

