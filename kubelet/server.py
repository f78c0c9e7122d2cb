"""The kubelet's HTTPS endpoint (port 10250 by default): logs, exec, stats, health, metrics.

    GET  /healthz                                   ok (no authentication)
    GET  /metrics                                   Prometheus text (kubelet_* series)
    GET  /metrics/resource                          container/pod/node CPU and memory (metrics-server's format)
    GET  /stats/summary                             stats/v1alpha1 Summary (``?node=`` picks a fake node)
    GET  /pods                                      the PodList this kubelet runs
    GET  /containerLogs/{ns}/{pod}/{container}      ?follow&tailLines&previous&timestamps&sinceSeconds&sinceTime&limitBytes
    GET  /exec/{ns}/{pod}/{container}               WebSocket, ``v5.channel.k8s.io`` (v4 and channel.k8s.io too)
         ?command=..&command=..&stdin&stdout&stderr&tty (kubectl's names; ``input/output/error`` accepted)
    GET  /attach/{ns}/{pod}/{container}             WebSocket, the exec channel protocol: the running
         container's output from now on; ``stdin``: channel 0 into its stdin (the container needs
         ``stdin: true``; ``stdinOnce``: closed when the first session ends or the client's input ends),
         channel 4 resizes its pty (``tty: true``); process and docker runtimes (fake: refused)
    GET  /portForward/{ns}/{pod}?ports=P&ports=Q    WebSocket, ``v4.channel.k8s.io`` (``portforward.k8s.io``,
         ``channel.k8s.io`` too): per port i a data channel 2i and an error channel 2i+1, each starting
         with the port as 2 bytes little-endian; bytes relayed to and from <pod IP>:P

Authentication: a bearer token, checked with a TokenReview (cached 2 minutes); authorization: a
SubjectAccessReview (allowed answers cached 5 minutes, denials 30 s) for what the path exposes —
``pods/log get`` and ``pods/exec``/``pods/attach``/``pods/portforward`` ``create`` in the pod's namespace (so the API server can forward the
caller's own token when it proxies ``kubectl logs``/``exec``: the caller needs exactly the rights the
API server already checked), ``nodes/stats get`` for stats, ``nodes/metrics get`` for metrics,
``nodes/proxy get`` for /pods. TLS: a self-signed certificate (``certs``).

Exec protocol (``k8s.io/apimachinery/pkg/util/remotecommand``): binary WebSocket messages whose
first byte is the channel — 0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize (``{"Width","Height"}``);
v5 adds 255 = "close channel <next byte>" (the client's stdin EOF). At the end the server writes a
``metav1.Status`` on channel 3 (``Success``, or ``Failure``/``NonZeroExitCode`` with the exit code as
an ``ExitCode`` cause — kubectl exits with it) and closes the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import WSMsgType, web
from prometheus_client import generate_latest

from apiclient.rest import APIConnectionError, resource
from apimachinery.errors import StatusError

from .logs import LogOptions, parse_time, read_log
from .runtime.base import NotSupported, RuntimeError_

if TYPE_CHECKING:
    from .kubelet import Kubelet

log = logging.getLogger(__name__)

Obj = dict[str, Any]
TOKEN_REVIEWS = resource("tokenreviews", "authentication.k8s.io")
ACCESS_REVIEWS = resource("subjectaccessreviews", "authorization.k8s.io")
EXEC_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io")
PORT_FORWARD_PROTOCOLS = ("v4.channel.k8s.io", "portforward.k8s.io", "channel.k8s.io")
STREAM_STDIN, STREAM_STDOUT, STREAM_STDERR, STREAM_ERROR, STREAM_RESIZE, STREAM_CLOSE = 0, 1, 2, 3, 4, 255


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


def _frame(msg: Any) -> bytes | None:
    """A channel-protocol message as bytes. Binary as kubectl sends them; the Python client sends str
    data as *text* frames (``chr(channel) + data``), which upstream's kubelet reads the same way."""
    if msg.type == WSMsgType.BINARY:
        return bytes(msg.data)
    if msg.type == WSMsgType.TEXT:
        return str(msg.data).encode()
    return None


@dataclass(frozen=True)
class _InputSink:
    """Where a channel session's client input goes: stdin bytes, terminal sizes, the end of stdin."""

    write: Callable[[bytes], Awaitable[None]]
    resize: Callable[[int, int], Awaitable[None]]
    close_stdin: Callable[[], Awaitable[None]]


async def _send_output(ws: web.WebSocketResponse, output: AsyncIterator[tuple[int, bytes]]) -> None:
    """A session's ``(channel, bytes)`` output as channel frames, until it ends or the client left."""
    async for channel, chunk in output:
        if ws.closed:
            return
        await ws.send_bytes(bytes([channel]) + chunk)


async def _receive_input(ws: web.WebSocketResponse, sink: _InputSink | None) -> None:
    """The client's frames of an exec or attach session, until it closes the socket: stdin (0), a
    terminal size (4, ``{"Width","Height"}``) and v5's close of stdin (255, 0). Without a sink the
    frames are read and dropped (output-only attach)."""
    async for msg in ws:
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.ERROR):
            return
        frame = _frame(msg)
        if not frame or sink is None:
            continue
        channel, data = frame[0], frame[1:]
        if channel == STREAM_STDIN:
            if data:
                await sink.write(data)
        elif channel == STREAM_RESIZE:
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                size = orjson.loads(data)
                await sink.resize(int(size.get("Width", 80)), int(size.get("Height", 24)))
        elif channel == STREAM_CLOSE and data[:1] == bytes([STREAM_STDIN]):
            await sink.close_stdin()


def _status(code: int, reason: str, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}
    return web.Response(status=code, body=orjson.dumps(body), content_type="application/json")


class Authenticator:
    """TokenReview + SubjectAccessReview against the API server, with caches."""

    def __init__(self, kubelet: Kubelet) -> None:
        self.kubelet = kubelet
        self._users: dict[str, tuple[float, Obj | None]] = {}
        self._decisions: dict[tuple[Any, ...], tuple[float, bool]] = {}

    async def user(self, token: str) -> Obj | None:
        key = hashlib.sha256(token.encode()).hexdigest()
        hit = self._users.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
        out = await self.kubelet.client.create(TOKEN_REVIEWS, body)
        status = out.get("status") or {}
        user = status.get("user") if status.get("authenticated") else None
        self._users[key] = (now + (120.0 if user else 10.0), user)
        if len(self._users) > 10000:
            self._users.clear()
        return user

    async def allowed(self, user: Obj, *, verb: str, resource_: str, subresource: str = "", namespace: str = "",
                      name: str = "") -> bool:
        key = (user.get("username"), tuple(user.get("groups") or ()), verb, resource_, subresource, namespace, name)
        hit = self._decisions.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                "spec": {"user": user.get("username", ""), "uid": user.get("uid", ""), "groups": user.get("groups") or [],
                         "resourceAttributes": {"verb": verb, "resource": resource_, "subresource": subresource,
                                                "namespace": namespace, "name": name, "version": "v1"}}}
        out = await self.kubelet.client.create(ACCESS_REVIEWS, body)
        ok = bool((out.get("status") or {}).get("allowed"))
        self._decisions[key] = (now + (300.0 if ok else 30.0), ok)
        if len(self._decisions) > 10000:
            self._decisions.clear()
        return ok


class KubeletServer:
    def __init__(self, kubelet: Kubelet, *, host: str, port: int, cert: Path, key: Path,
                 authenticate: bool = True) -> None:
        self.kubelet = kubelet
        self.host = host
        self.port = port
        self.cert = cert
        self.key = key
        self.authenticate = authenticate
        self.auth = Authenticator(kubelet)
        self._runner: web.AppRunner | None = None
        self.exec_sessions = 0

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        r = app.router
        r.add_get("/healthz", self._healthz)
        r.add_get("/healthz/{tail:.*}", self._healthz)
        r.add_get("/metrics", self._metrics)
        r.add_get("/metrics/resource", self._resource_metrics)
        r.add_get("/stats/summary", self._summary)
        r.add_get("/pods", self._pods)
        r.add_get("/containerLogs/{namespace}/{pod}/{container}", self._logs)
        r.add_route("*", "/exec/{namespace}/{pod}/{container}", self._exec)
        r.add_route("*", "/exec/{namespace}/{pod}/{uid}/{container}", self._exec)
        r.add_route("*", "/attach/{namespace}/{pod}/{container}", self._attach)
        r.add_route("*", "/attach/{namespace}/{pod}/{uid}/{container}", self._attach)
        r.add_route("*", "/portForward/{namespace}/{pod}", self._port_forward)
        r.add_route("*", "/portForward/{namespace}/{pod}/{uid}", self._port_forward)
        return app

    async def start(self) -> int:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(self.cert), str(self.key))
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=ctx, reuse_address=True)
        await site.start()
        server = site._server  # noqa: SLF001 - the only way to learn the port of a ":0" bind
        if self.port == 0 and server is not None and server.sockets:  # type: ignore[union-attr]
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # ------------------------------------------------------------------ authn / authz

    def _attributes(self, request: web.Request) -> tuple[str, str, str, str, str] | None:
        path = request.path
        info = request.match_info
        if path.startswith("/containerLogs/"):
            return "get", "pods", "log", info.get("namespace", ""), info.get("pod", "")
        if path.startswith("/exec/"):
            return "create", "pods", "exec", info.get("namespace", ""), info.get("pod", "")
        if path.startswith("/attach/"):
            return "create", "pods", "attach", info.get("namespace", ""), info.get("pod", "")
        if path.startswith("/portForward/"):
            return "create", "pods", "portforward", info.get("namespace", ""), info.get("pod", "")
        if path.startswith("/stats"):
            return "get", "nodes", "stats", "", self.kubelet.config.node_name
        if path.startswith("/metrics"):
            return "get", "nodes", "metrics", "", self.kubelet.config.node_name
        return "get", "nodes", "proxy", "", self.kubelet.config.node_name

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == "/healthz" or request.path.startswith("/healthz/") or not self.authenticate:
            return await handler(request)
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if not token:
            return _status(401, "Unauthorized", "Unauthorized")
        try:
            user = await self.auth.user(token)
            if user is None:
                return _status(401, "Unauthorized", "Unauthorized")
            attrs = self._attributes(request)
            if attrs is not None:
                verb, res, sub, ns, name = attrs
                if not await self.auth.allowed(user, verb=verb, resource_=res, subresource=sub, namespace=ns, name=name):
                    return _status(403, "Forbidden", f'User "{user.get("username")}" cannot {verb} resource '
                                                     f'"{res}/{sub}" in namespace "{ns}"' if ns else
                                   f'User "{user.get("username")}" cannot {verb} resource "{res}/{sub}"')
        except (StatusError, APIConnectionError) as exc:
            return _status(503, "ServiceUnavailable", f"cannot check credentials with the API server: {exc}")
        return await handler(request)

    # ------------------------------------------------------------------ simple endpoints

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _metrics(self, _request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.kubelet.metrics.registry),
                            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    def _agent(self, request: web.Request) -> Any:
        name = request.query.get("node") or self.kubelet.config.node_name
        agent = self.kubelet.agents.get(name)
        if agent is None and len(self.kubelet.agents) == 1:
            agent = next(iter(self.kubelet.agents.values()))
        return agent

    async def _summary(self, request: web.Request) -> web.Response:
        stats = getattr(self.kubelet, "stats", None)
        if stats is None:
            return _status(503, "ServiceUnavailable", "stats are not collected")
        await stats.fresh()
        if request.query.get("all") and len(self.kubelet.agents) > 1:
            return web.json_response({"nodes": [stats.summary(a) for a in self.kubelet.agents.values()]},
                                     dumps=lambda o: orjson.dumps(o).decode())
        agent = self._agent(request)
        if agent is None:
            return _status(404, "NotFound", f"node {request.query.get('node')!r} is not run by this kubelet")
        return web.json_response(stats.summary(agent), dumps=lambda o: orjson.dumps(o).decode())

    async def _resource_metrics(self, request: web.Request) -> web.Response:
        stats = getattr(self.kubelet, "stats", None)
        if stats is None:
            return web.Response(text="")
        await stats.fresh()
        lines = ["# TYPE container_cpu_usage_seconds_total counter",
                 "# TYPE container_memory_working_set_bytes gauge",
                 "# TYPE pod_cpu_usage_seconds_total counter", "# TYPE pod_memory_working_set_bytes gauge",
                 "# TYPE node_cpu_usage_seconds_total counter", "# TYPE node_memory_working_set_bytes gauge"]
        for agent in self.kubelet.agents.values():
            summary = stats.summary(agent)
            node = summary["node"]
            lines.append(f'node_cpu_usage_seconds_total{{node="{agent.name}"}} {node["cpu"]["usageCoreNanoSeconds"] / 1e9}')
            lines.append(f'node_memory_working_set_bytes{{node="{agent.name}"}} {node["memory"]["workingSetBytes"]}')
            for pod in summary["pods"]:
                ref = pod["podRef"]
                labels = f'namespace="{ref["namespace"]}",pod="{ref["name"]}"'
                lines.append(f'pod_cpu_usage_seconds_total{{{labels}}} {pod["cpu"]["usageCoreNanoSeconds"] / 1e9}')
                lines.append(f'pod_memory_working_set_bytes{{{labels}}} {pod["memory"]["workingSetBytes"]}')
                for c in pod["containers"]:
                    cl = f'container="{c["name"]}",{labels}'
                    lines.append(f'container_cpu_usage_seconds_total{{{cl}}} {c["cpu"]["usageCoreNanoSeconds"] / 1e9}')
                    lines.append(f'container_memory_working_set_bytes{{{cl}}} {c["memory"]["workingSetBytes"]}')
        return web.Response(text="\n".join(lines) + "\n", headers={"Content-Type": "text/plain; version=0.0.4"})

    async def _pods(self, request: web.Request) -> web.Response:
        items = [w.pod for a in self.kubelet.agents.values() for w in a.workers.values() if not w.removed]
        return web.json_response({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items},
                                 dumps=lambda o: orjson.dumps(o).decode())

    # ------------------------------------------------------------------ logs

    def _container(self, request: web.Request, *, previous: bool = False) -> tuple[Any, Any, Any] | web.Response:
        ns, pod, name = (request.match_info[k] for k in ("namespace", "pod", "container"))
        found = self.kubelet.find_pod(ns, pod)
        if found is None:
            return _status(404, "NotFound", f'pod "{pod}" not found in namespace "{ns}" on this node')
        agent, worker = found
        history = sorted((c for c in agent.runtime.list_containers(worker.uid) if c.name == name),
                         key=lambda c: (c.attempt, c.created_at))
        specs = [c.get("name") for key in ("initContainers", "containers", "ephemeralContainers")
                 for c in (worker.spec.get(key) or [])]
        if name not in specs:
            return _status(400, "BadRequest", f"container {name} is not valid for pod {pod}")
        if previous:
            if len(history) < 2:
                return _status(400, "BadRequest",
                               f'previous terminated container "{name}" in pod "{pod}" not found')
            return agent, worker, history[-2]
        if not history:
            reason = worker.waiting.get(name, ("ContainerCreating", ""))[0]
            return _status(400, "BadRequest", f'container "{name}" in pod "{pod}" is waiting to start: {reason}')
        return agent, worker, history[-1]

    async def _logs(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        found = self._container(request, previous=_truthy(q.get("previous")))
        if isinstance(found, web.Response):
            return found
        agent, _worker, container = found
        since = None
        try:
            if q.get("sinceSeconds"):
                since = time.time() - int(q["sinceSeconds"])
            elif q.get("sinceTime"):
                since = parse_time(q["sinceTime"])
            tail = int(q["tailLines"]) if q.get("tailLines") not in (None, "") else None
            limit = int(q["limitBytes"]) if q.get("limitBytes") not in (None, "") else None
        except ValueError:
            return _status(400, "BadRequest", "tailLines, limitBytes and sinceSeconds must be integers")
        opts = LogOptions(follow=_truthy(q.get("follow")), tail_lines=tail, timestamps=_truthy(q.get("timestamps")),
                          since=since, limit_bytes=limit)
        path = agent.runtime.log_path(container.id)
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await resp.prepare(request)
        runtime, cid = agent.runtime, container.id

        def running() -> bool:
            c = runtime.container(cid)
            return bool(c is not None and c.running)

        try:
            async for chunk in read_log(path, opts, running=running):
                await resp.write(chunk)
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        with contextlib.suppress(ConnectionResetError):
            await resp.write_eof()
        return resp

    # ------------------------------------------------------------------ exec

    async def _exec(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        argv = q.getall("command", [])
        stdin = _truthy(q.get("stdin") or q.get("input"))
        tty = _truthy(q.get("tty"))
        ws = web.WebSocketResponse(protocols=EXEC_PROTOCOLS, autoping=True, max_msg_size=16 * 1024 * 1024)
        if not ws.can_prepare(request).ok:
            return _status(400, "BadRequest", "exec needs a WebSocket upgrade (v5.channel.k8s.io); SPDY is not supported")
        await ws.prepare(request)
        self.exec_sessions += 1
        try:
            await self._exec_session(request, ws, argv, stdin=stdin, tty=tty)
        finally:
            self.exec_sessions -= 1
            if not ws.closed:
                await ws.close()
        return ws

    async def _send_status(self, ws: web.WebSocketResponse, status: Obj) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_bytes(bytes([STREAM_ERROR]) + orjson.dumps(status))

    async def _running_container(self, request: web.Request, ws: web.WebSocketResponse) -> Any:
        """The (agent, worker, container) a stream request names, or None once a Failure status was sent."""
        failure = {"metadata": {}, "status": "Failure"}
        found = self._container(request)
        if isinstance(found, web.Response):
            body = orjson.loads(found.body) if isinstance(found.body, bytes) else {}
            await self._send_status(ws, {**failure, "message": body.get("message", "container not found"),
                                         "reason": body.get("reason", "NotFound"), "code": found.status})
            return None
        if not found[2].running:
            await self._send_status(ws, {**failure, "message": f"container {found[2].name} is not running",
                                         "reason": "BadRequest", "code": 400})
            return None
        return found

    async def _exec_session(self, request: web.Request, ws: web.WebSocketResponse, argv: list[str], *,
                            stdin: bool, tty: bool) -> None:
        failure = {"metadata": {}, "status": "Failure"}
        if not argv:
            await self._send_status(ws, {**failure, "message": "you must specify at least one command for the container",
                                         "reason": "BadRequest", "code": 400})
            return
        found = await self._running_container(request, ws)
        if found is None:
            return
        agent, _worker, container = found
        try:
            session = await agent.runtime.exec_stream(container.id, argv, tty=tty, stdin=stdin)
        except (RuntimeError_, NotSupported) as exc:
            await self._send_status(ws, {**failure, "message": exc.message, "reason": "InternalError", "code": 500})
            return

        out_task = asyncio.ensure_future(_send_output(ws, session.output()))
        in_task = asyncio.ensure_future(_receive_input(ws, _InputSink(session.write_stdin, session.resize,
                                                                      session.close_stdin)))
        wait_task = asyncio.ensure_future(session.wait())
        try:
            done, _ = await asyncio.wait({wait_task, in_task}, return_when=asyncio.FIRST_COMPLETED)
            if in_task in done and not wait_task.done():
                # The client went away: the command does not outlive its session.
                await session.kill()
                await asyncio.wait_for(wait_task, 10)
                return
            code = wait_task.result()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(out_task, 5)
            if code == 0:
                await self._send_status(ws, {"metadata": {}, "status": "Success"})
            else:
                await self._send_status(ws, {
                    **failure, "message": f"command terminated with non-zero exit code: error executing command "
                                          f"{argv}, exit code {code}",
                    "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}})
        finally:
            for t in (out_task, in_task, wait_task):
                if not t.done():
                    t.cancel()
            await asyncio.gather(out_task, in_task, wait_task, return_exceptions=True)
            if not wait_task.done() or wait_task.cancelled():
                await session.kill()

    # ------------------------------------------------------------------ attach

    async def _attach(self, request: web.Request) -> web.StreamResponse:
        """The exec channel protocol onto the running container itself: its output as it comes
        (channels 1 and 2), until it stops or the client leaves; then a Status on channel 3."""
        q = request.query
        stdin = _truthy(q.get("stdin") or q.get("input"))
        ws = web.WebSocketResponse(protocols=EXEC_PROTOCOLS, autoping=True, max_msg_size=16 * 1024 * 1024)
        if not ws.can_prepare(request).ok:
            return _status(400, "BadRequest", "attach needs a WebSocket upgrade (v5.channel.k8s.io); SPDY is not "
                                              "supported")
        await ws.prepare(request)
        self.exec_sessions += 1
        try:
            await self._attach_session(request, ws, stdin=stdin)
        finally:
            self.exec_sessions -= 1
            if not ws.closed:
                await ws.close()
        return ws

    async def _attach_session(self, request: web.Request, ws: web.WebSocketResponse, *, stdin: bool) -> None:
        failure = {"metadata": {}, "status": "Failure"}
        found = await self._running_container(request, ws)
        if found is None:
            return
        agent, worker, container = found
        attached = None
        if stdin:
            spec = next((c for key in ("containers", "initContainers", "ephemeralContainers")
                         for c in worker.spec.get(key) or [] if c.get("name") == container.name), {})
            if not spec.get("stdin"):
                await self._send_status(ws, {**failure, "reason": "BadRequest", "code": 400, "message":
                                             f"container {container.name} has no stdin: set stdin: true in its spec "
                                             "to attach to it"})
                return
            try:
                attached = await agent.runtime.attach_stdin(container.id)
            except (RuntimeError_, NotSupported) as exc:
                await self._send_status(ws, {**failure, "message": exc.message, "reason": "BadRequest", "code": 400})
                return
        # Where the output is followed from is fixed now, before the first byte reaches stdin: what the
        # container answers to it cannot fall before that point.
        try:
            raw = attached.output() if attached is not None else None
            output = raw if raw is not None else agent.runtime.attach_output(container.id)
        except (RuntimeError_, NotSupported) as exc:
            if attached is not None:
                await attached.detach()
            await self._send_status(ws, {**failure, "message": exc.message, "reason": "BadRequest", "code": 400})
            return

        sink = None if attached is None else _InputSink(attached.write, attached.resize, attached.close_stdin)
        out_task = asyncio.ensure_future(_send_output(ws, output))
        in_task = asyncio.ensure_future(_receive_input(ws, sink))
        try:
            done, _ = await asyncio.wait({out_task, in_task}, return_when=asyncio.FIRST_COMPLETED)
            if out_task in done:
                exc = out_task.exception()
                if isinstance(exc, (RuntimeError_, NotSupported)):
                    await self._send_status(ws, {**failure, "message": exc.message, "reason": "BadRequest",
                                                 "code": 400})
                elif exc is not None:
                    raise exc
                else:  # the container stopped: the attach is over
                    await self._send_status(ws, {"metadata": {}, "status": "Success"})
        finally:
            for t in (out_task, in_task):
                if not t.done():
                    t.cancel()
            await asyncio.gather(out_task, in_task, return_exceptions=True)
            if attached is not None:
                await attached.detach()  # the session is over (stdinOnce: the container's stdin closes)

    # ------------------------------------------------------------------ port-forward

    async def _port_forward(self, request: web.Request) -> web.StreamResponse:
        """Kubernetes' WebSocket port-forward protocol: for port i, channel 2i carries the bytes of a
        TCP connection the kubelet opened to <pod IP>:port, channel 2i+1 its errors (text); the first
        message on each channel is the port, 2 bytes little-endian (clients check it)."""
        raw_ports = request.query.getall("ports", [])
        ports: list[int] = []
        for item in raw_ports:
            for part in item.split(","):
                try:
                    port = int(part)
                except ValueError:
                    return _status(400, "BadRequest", f"invalid port {part!r}")
                if not 0 < port < 65536:
                    return _status(400, "BadRequest", f"port {port} must be between 1 and 65535")
                ports.append(port)
        if not ports:
            return _status(400, "BadRequest", "query parameter \"port\" is required")
        ns, name = request.match_info["namespace"], request.match_info["pod"]
        found = self.kubelet.find_pod(ns, name)
        if found is None:
            return _status(404, "NotFound", f'pod "{name}" not found in namespace "{ns}" on this node')
        agent, worker = found
        sandbox = agent.runtime.sandboxes().get(worker.uid)
        if sandbox is None or not sandbox.ip:
            return _status(400, "BadRequest", f'pod "{name}" has no IP yet: it is not running')
        host = agent.runtime.probe_address(sandbox)
        ws = web.WebSocketResponse(protocols=PORT_FORWARD_PROTOCOLS, autoping=True, max_msg_size=16 * 1024 * 1024)
        if not ws.can_prepare(request).ok:
            return _status(400, "BadRequest", "port-forward needs a WebSocket upgrade (v4.channel.k8s.io); SPDY is "
                                              "not supported by the kubelet")
        await ws.prepare(request)
        self.exec_sessions += 1
        writers: dict[int, asyncio.StreamWriter] = {}
        tasks: list[asyncio.Task[None]] = []
        send_lock = asyncio.Lock()

        async def send(channel: int, data: bytes) -> None:
            async with send_lock:
                if not ws.closed:
                    await ws.send_bytes(bytes([channel]) + data)

        async def pump(index: int, reader: asyncio.StreamReader) -> None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                while chunk := await reader.read(65536):
                    await send(2 * index, chunk)

        try:
            for index, port in enumerate(ports):
                prefix = port.to_bytes(2, "little")
                await send(2 * index, prefix)
                await send(2 * index + 1, prefix)
                try:
                    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
                except (OSError, asyncio.TimeoutError) as exc:
                    await send(2 * index + 1, f"error forwarding port {port} to pod {worker.uid}, uid : "
                                              f"failed to connect to {host}:{port}: {exc}".encode())
                    continue
                writers[index] = writer
                tasks.append(asyncio.ensure_future(pump(index, reader)))
            if not writers:
                return ws

            async def relay_in() -> None:
                async for msg in ws:
                    if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.ERROR):
                        return
                    if msg.type != WSMsgType.BINARY or not msg.data:
                        continue
                    channel, data = msg.data[0], msg.data[1:]
                    writer = writers.get(channel // 2) if channel % 2 == 0 else None
                    if writer is not None and data:
                        try:
                            writer.write(data)
                            await writer.drain()
                        except ConnectionError:
                            writers.pop(channel // 2, None)

            # Over when the client leaves, or when the pod closed every connection: the WebSocket has no
            # half-close, so closing it is how the client learns the remote end is done.
            inbound = asyncio.ensure_future(relay_in())
            tasks.append(inbound)
            await asyncio.wait({inbound, asyncio.ensure_future(asyncio.wait(tasks[:-1]))},
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.exec_sessions -= 1
            for writer in writers.values():
                writer.close()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if not ws.closed:
                await ws.close()
        return ws
