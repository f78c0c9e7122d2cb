"""``pods/log``, ``exec``, ``attach`` and ``portforward``: the API server forwards them to the pod's kubelet.

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
* ``pods/<name>/attach?container&stdin&stdout&stderr&tty``: the same, to the kubelet's ``/attach``
  (the running container's output, and its stdin when the container has ``stdin: true``). Text frames
  (the Python client sends str stdin that way) are relayed as text, as the kubelet reads them.
* ``pods/<name>/portforward``: the kubelet's WebSocket ``/portForward`` (channel protocol), either
  relayed as is (``?ports=``, the Python client) or behind a SPDY/3.1 endpoint for kubectl, whose
  SPDY travels inside the WebSocket (see ``_port_forward``).

The kubelet authenticates the *caller's* bearer token (it is forwarded) with a TokenReview and
authorizes the same subresource with a SubjectAccessReview, so a user reaches through the proxy
exactly what RBAC grants them here. The kubelet's certificate is self-signed and not verified
(upstream's default without ``--kubelet-certificate-authority``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
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
    await _require_create(server, request, info)
    if info.subresource == "exec":
        return await _exec(server, request, pod)
    if info.subresource == "attach":
        return await _attach(server, request, pod)
    return await _port_forward(server, request, pod)


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
        upstream = await server.kubelet_session().get(url, params=params, headers=_forward_headers(request))
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


def _require_websocket(request: web.Request, what: str, protocol: str) -> None:
    if not _is_websocket(request):
        if request.headers.get("Upgrade"):
            raise errors.bad_request(f"unsupported upgrade {request.headers['Upgrade']!r}: {what} is served over "
                                     f"WebSocket ({protocol}) only")
        raise errors.bad_request("Upgrade request required")


def _offered(request: web.Request) -> list[str]:
    return [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]


async def _kubelet_ws(session: aiohttp.ClientSession, request: web.Request, url: str, params: list[tuple[str, str]],
                      protocols: list[str], what: str) -> aiohttp.ClientWebSocketResponse:
    try:
        return await session.ws_connect(url, params=params, headers=_forward_headers(request),
                                          protocols=protocols, autoping=True, max_msg_size=16 * 1024 * 1024)
    except aiohttp.WSServerHandshakeError as exc:
        raise StatusError(code=exc.status if exc.status >= 400 else 500, reason="InternalError",
                          message=f"the kubelet refused the {what}: {exc.message}") from None
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
        raise _upstream_error(exc, url) from None


async def _exec(server: APIServer, request: web.Request, pod: dict[str, Any]) -> web.StreamResponse:
    return await _container_stream(server, request, pod, "exec")


async def _attach(server: APIServer, request: web.Request, pod: dict[str, Any]) -> web.StreamResponse:
    return await _container_stream(server, request, pod, "attach")


async def _container_stream(server: APIServer, request: web.Request, pod: dict[str, Any],
                            what: str) -> web.StreamResponse:
    """exec and attach: the same channel protocol, relayed to the kubelet's /exec or /attach."""
    # Validate pod, container and node first so both kubectl's WebSocket attempt and its SPDY fallback
    # get the real reason (as upstream), then require WebSocket.
    container = choose_container(pod, request.query.get("container", ""))
    base = await _kubelet_location(server, pod)
    _require_websocket(request, what, "v5.channel.k8s.io")
    meta = pod.get("metadata") or {}
    url = f"{base}/{what}/{quote(meta.get('namespace', ''))}/{quote(meta.get('name', ''))}/{quote(container)}"
    params = [(k, v) for k, v in request.query.items() if k in EXEC_PARAMS]
    upstream = await _kubelet_ws(server.kubelet_session(), request, url, params, _offered(request), what)
    return await _relay(request, upstream)


async def _relay(request: web.Request, upstream: aiohttp.ClientWebSocketResponse) -> web.WebSocketResponse:
    """Accept the client's WebSocket with the subprotocol the kubelet chose; relay messages both ways."""
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



# ---------------------------------------------------------------------- port-forward

SPDY_TUNNEL_PROTOCOL = "SPDY/3.1+portforward.k8s.io"


async def _port_forward(server: APIServer, request: web.Request, pod: dict[str, Any]) -> web.StreamResponse:
    """Two clients, two wire protocols, one kubelet endpoint (its WebSocket ``/portForward``):

    * the WebSocket channel protocol (the official Python client, ``?ports=P``): relayed unchanged;
    * kubectl 1.32: SPDY/3.1 tunnelled inside a WebSocket (subprotocol ``SPDY/3.1+portforward.k8s.io``).
      The API server speaks SPDY to kubectl and opens one kubelet WebSocket per forwarded connection
      (kubectl's ``requestid``), as upstream's stream translator does.

    Plain SPDY upgrades (kubectl's fallback when the WebSocket is refused) are answered 400.
    """
    base = await _kubelet_location(server, pod)
    _require_websocket(request, "port-forward", f"{SPDY_TUNNEL_PROTOCOL} or v4.channel.k8s.io")
    meta = pod.get("metadata") or {}
    url = f"{base}/portForward/{quote(meta.get('namespace', ''))}/{quote(meta.get('name', ''))}"
    offered = _offered(request)
    if SPDY_TUNNEL_PROTOCOL in offered:
        return await _spdy_port_forward(server.kubelet_session(), request, url)
    ports = [(k, v) for k, v in request.query.items() if k == "ports"]
    if not ports:
        raise errors.bad_request("query parameter \"ports\" is required")
    upstream = await _kubelet_ws(server.kubelet_session(), request, url, ports, offered or ["v4.channel.k8s.io"],
                                 "port-forward")
    return await _relay(request, upstream)


def _spdy_dictionary() -> bytes:
    """The zlib dictionary of SPDY/3 header blocks (draft-mbelshe-httpbis-spdy-00 §2.6.10.1): these
    words, each with a 4-byte big-endian length, then the tail text. Both ends must use it."""
    words = ("options head post put delete trace accept accept-charset accept-encoding accept-language "
             "accept-ranges age allow authorization cache-control connection content-base content-encoding "
             "content-language content-length content-location content-md5 content-range content-type date "
             "etag expect expires from host if-match if-modified-since if-none-match if-range "
             "if-unmodified-since last-modified location max-forwards pragma proxy-authenticate "
             "proxy-authorization range referer retry-after server te trailer transfer-encoding upgrade "
             "user-agent vary via warning www-authenticate method get status").split()
    words += ["200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"]
    tail = ("100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
            "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
            "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
            "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
            "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
            "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.")
    return b"".join(len(w).to_bytes(4, "big") + w.encode() for w in words) + tail.encode()


SPDY_DICTIONARY = _spdy_dictionary()
_SYN_STREAM, _SYN_REPLY, _RST_STREAM, _SETTINGS, _PING, _GOAWAY, _HEADERS, _WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
_FLAG_FIN = 0x01
_RST_CANCEL = 5


class SpdyCodec:
    """SPDY/3.1 framing as moby/spdystream (kubectl's side) speaks it: control and data frames, header
    blocks compressed with one zlib context per direction for the whole session. spdystream does no
    flow control (it neither sends nor honours WINDOW_UPDATE), so neither does this."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._inflate = zlib.decompressobj(zdict=SPDY_DICTIONARY)
        self._deflate = zlib.compressobj(zlib.Z_BEST_COMPRESSION, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY,
                                         SPDY_DICTIONARY)

    def feed(self, data: bytes) -> list[tuple[str, int, int, bytes, dict[str, str]]]:
        """Bytes in; complete frames out as (kind, type-or-stream-id, flags, payload, headers)."""
        self._buf += data
        frames = []
        while len(self._buf) >= 8:
            length = int.from_bytes(self._buf[5:8], "big")
            if len(self._buf) < 8 + length:
                break
            first = int.from_bytes(self._buf[0:4], "big")
            flags = self._buf[4]
            payload = bytes(self._buf[8:8 + length])
            del self._buf[:8 + length]
            if first & 0x80000000:
                ftype = first & 0xFFFF
                headers: dict[str, str] = {}
                if ftype in (_SYN_STREAM, _SYN_REPLY, _HEADERS):  # keep the zlib context in step
                    offset = 10 if ftype == _SYN_STREAM else 4
                    headers = self._headers(self._inflate.decompress(payload[offset:]))
                frames.append(("control", ftype, flags, payload, headers))
            else:
                frames.append(("data", first & 0x7FFFFFFF, flags, payload, {}))
        return frames

    @staticmethod
    def _headers(block: bytes) -> dict[str, str]:
        out: dict[str, str] = {}
        count = int.from_bytes(block[0:4], "big")
        pos = 4
        for _ in range(count):
            n = int.from_bytes(block[pos:pos + 4], "big")
            name = block[pos + 4:pos + 4 + n].decode("latin-1").lower()
            pos += 4 + n
            n = int.from_bytes(block[pos:pos + 4], "big")
            out[name] = block[pos + 4:pos + 4 + n].decode("latin-1")
            pos += 4 + n
        return out

    @staticmethod
    def _control(ftype: int, flags: int, payload: bytes) -> bytes:
        return ((0x8000 | 3) << 16 | ftype).to_bytes(4, "big") + bytes([flags]) + len(payload).to_bytes(3, "big") \
            + payload

    def syn_reply(self, stream_id: int) -> bytes:
        block = self._deflate.compress((0).to_bytes(4, "big")) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
        return self._control(_SYN_REPLY, 0, stream_id.to_bytes(4, "big") + block)

    @staticmethod
    def data(stream_id: int, data: bytes, *, fin: bool = False) -> bytes:
        return stream_id.to_bytes(4, "big") + bytes([_FLAG_FIN if fin else 0]) + len(data).to_bytes(3, "big") + data

    def rst_stream(self, stream_id: int, status: int = _RST_CANCEL) -> bytes:
        return self._control(_RST_STREAM, 0, stream_id.to_bytes(4, "big") + status.to_bytes(4, "big"))

    def ping(self, payload: bytes) -> bytes:
        return self._control(_PING, 0, payload)


class _Forward:
    """One forwarded connection of kubectl (a ``requestid``): its SPDY error and data streams and the
    kubelet WebSocket that carries its bytes to and from the pod's port."""

    def __init__(self) -> None:
        self.error_stream = 0
        self.data_stream = 0
        self.port = ""
        self.upstream: aiohttp.ClientWebSocketResponse | None = None
        self.pending: list[bytes] = []  # data that arrived before the kubelet connection was up
        self.task: asyncio.Task[None] | None = None
        self.client_done = False


async def _spdy_port_forward(session: aiohttp.ClientSession, request: web.Request, url: str) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(protocols=(SPDY_TUNNEL_PROTOCOL,), autoping=True, max_msg_size=16 * 1024 * 1024)
    await ws.prepare(request)
    codec = SpdyCodec()
    forwards: dict[str, _Forward] = {}
    by_stream: dict[int, _Forward] = {}
    lock = asyncio.Lock()

    async def send(frame: bytes) -> None:
        async with lock:  # a frame is written whole: concurrent senders must not interleave
            if not ws.closed:
                await ws.send_bytes(frame)

    async def run(fwd: _Forward) -> None:
        """Open the kubelet side for one connection and copy the pod's bytes and errors back."""
        try:
            try:
                fwd.upstream = await _kubelet_ws(session, request, url, [("ports", fwd.port)],
                                                 ["v4.channel.k8s.io"], "port-forward")
            except StatusError as err:
                await send(codec.data(fwd.error_stream, err.message.encode()))
                return
            for chunk in fwd.pending:
                await fwd.upstream.send_bytes(b"\x00" + chunk)
            fwd.pending.clear()
            if fwd.client_done:
                return
            seen_prefix = {0: False, 1: False}
            async for msg in fwd.upstream:
                if msg.type != WSMsgType.BINARY or not msg.data:
                    if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                        break
                    continue
                channel, data = msg.data[0], msg.data[1:]
                if channel in seen_prefix and not seen_prefix[channel]:
                    seen_prefix[channel] = True  # every channel starts with the port (2 bytes)
                    data = data[2:]
                if not data:
                    continue
                if channel == 0:
                    await send(codec.data(fwd.data_stream, data))
                elif channel == 1:
                    await send(codec.data(fwd.error_stream, data))
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await send(codec.data(fwd.error_stream, f"error forwarding port {fwd.port}: {exc}".encode()))
        finally:
            if fwd.upstream is not None:
                await fwd.upstream.close()
            # The remote side is done: end both streams (kubectl waits for EOF on each).
            with contextlib.suppress(ConnectionError, RuntimeError):
                await send(codec.data(fwd.data_stream, b"", fin=True))
                await send(codec.data(fwd.error_stream, b"", fin=True))

    async def on_stream(stream_id: int, headers: dict[str, str]) -> None:
        await send(codec.syn_reply(stream_id))
        kind, request_id = headers.get("streamtype", ""), headers.get("requestid", "")
        fwd = forwards.setdefault(request_id, _Forward())
        fwd.port = headers.get("port", fwd.port)
        if kind == "error":
            fwd.error_stream = stream_id
        elif kind == "data":
            fwd.data_stream = stream_id
        else:
            await send(codec.rst_stream(stream_id))
            return
        by_stream[stream_id] = fwd
        if fwd.error_stream and fwd.data_stream and fwd.task is None:
            fwd.task = asyncio.ensure_future(run(fwd))

    async def on_data(stream_id: int, flags: int, data: bytes) -> None:
        fwd = by_stream.get(stream_id)
        if fwd is None or stream_id != fwd.data_stream:
            return  # the error stream only ever carries the client's FIN
        if data:
            if fwd.upstream is not None and not fwd.upstream.closed:
                await fwd.upstream.send_bytes(b"\x00" + data)
            else:
                fwd.pending.append(data)
        if flags & _FLAG_FIN:
            # The local connection closed its side. A WebSocket cannot half-close, so the kubelet
            # connection ends here (kubectl stops reading the stream once it has sent FIN anyway).
            fwd.client_done = True
            if fwd.upstream is not None:
                await fwd.upstream.close()

    try:
        async for msg in ws:
            if msg.type != WSMsgType.BINARY:
                if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.ERROR):
                    break
                continue
            try:
                frames = codec.feed(msg.data)
            except zlib.error as exc:
                log.warning("port-forward: bad SPDY header block: %s", exc)
                break
            for kind, ident, flags, payload, headers in frames:
                if kind == "data":
                    await on_data(ident, flags, payload)
                elif ident == _SYN_STREAM:
                    await on_stream(int.from_bytes(payload[0:4], "big") & 0x7FFFFFFF, headers)
                elif ident == _PING:
                    await send(codec.ping(payload))  # kubectl pings every few seconds; echo
                elif ident == _RST_STREAM:
                    fwd = by_stream.get(int.from_bytes(payload[0:4], "big") & 0x7FFFFFFF)
                    if fwd is not None and fwd.upstream is not None:
                        fwd.client_done = True
                        await fwd.upstream.close()
                elif ident == _GOAWAY:
                    break
    finally:
        for fwd in forwards.values():
            if fwd.task is not None:
                fwd.task.cancel()
        await asyncio.gather(*(f.task for f in forwards.values() if f.task is not None), return_exceptions=True)
        if not ws.closed:
            await ws.close()
    return ws
