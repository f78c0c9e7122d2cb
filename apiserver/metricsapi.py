"""``metrics.k8s.io/v1beta1``: PodMetrics and NodeMetrics, aggregated from the kubelets' ``/stats/summary``.

What metrics-server does, served by the API server itself (no APIService aggregation layer):
``GET /apis/metrics.k8s.io/v1beta1/[namespaces/<ns>/]pods[/<name>]`` and ``.../nodes[/<name>]``
(read-only, ``get`` and ``list`` with ``labelSelector``). For each Node in the store the kubelet at
its InternalIP and ``daemonEndpoints.kubeletEndpoint.Port`` is asked for its summary
(``?node=<name>``, so one fake-node kubelet serving many nodes answers for each), concurrently, with
a 5 s timeout; answers are cached 10 s (the metrics-server resolution) so ``kubectl top`` and the HPA
do not hammer the kubelets. A node whose kubelet does not answer simply has no metrics (as upstream).

Usage is what ``kubectl top`` prints: ``cpu`` from ``usageNanoCores`` (e.g. ``"12345678n"``) and
``memory`` from ``workingSetBytes`` (e.g. ``"40960Ki"``), per container for pods, per node for nodes.
The caller's bearer token is forwarded; the kubelet authorizes ``nodes/stats get`` for it.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp
import orjson
from aiohttp import web

from apimachinery import errors
from apimachinery.errors import StatusError
from apimachinery.selectors import LabelSelector

if TYPE_CHECKING:
    from .app import APIServer
    from .requestinfo import RequestInfo

GROUP_VERSION = "metrics.k8s.io/v1beta1"
CACHE_SECONDS = 10.0
WINDOW = "10s"  # the kubelet samples usage every 10 s
TIMEOUT = 5.0

def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def cpu_quantity(nanocores: int | float | None) -> str:
    return f"{int(nanocores or 0)}n"


def memory_quantity(num_bytes: int | float | None) -> str:
    return f"{int(num_bytes or 0) // 1024}Ki"


def _endpoint(node: dict[str, Any]) -> str | None:
    status = node.get("status") or {}
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or [] if isinstance(a, dict)}
    host = addresses.get("InternalIP") or addresses.get("ExternalIP")
    if not port or not host:
        return None
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


def _list(kind: str, items: list[dict[str, Any]]) -> web.Response:
    body = {"kind": f"{kind}List", "apiVersion": GROUP_VERSION, "metadata": {}, "items": items}
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def _one(obj: dict[str, Any]) -> web.Response:
    return web.Response(body=orjson.dumps(obj), content_type="application/json")


class MetricsAPI:
    """metrics.k8s.io for one API server: its client to the kubelets and the summaries it fetched."""

    def __init__(self, server: APIServer) -> None:
        self._server = server
        self._session: aiohttp.ClientSession | None = None
        self._cache: dict[str, tuple[float, dict[str, Any] | None]] = {}  # node -> (expires, summary)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False, limit=64),
                                                  timeout=aiohttp.ClientTimeout(total=TIMEOUT))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _summary(self, node: dict[str, Any], authorization: str) -> dict[str, Any] | None:
        name = (node.get("metadata") or {}).get("name", "")
        hit = self._cache.get(name)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        base = _endpoint(node)
        summary = None
        if base is not None:
            try:
                headers = {"Authorization": authorization} if authorization else {}
                async with self._client().get(f"{base}/stats/summary?node={quote(name)}", headers=headers) as resp:
                    if resp.status == 200:
                        summary = orjson.loads(await resp.read())
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError, ValueError):
                summary = None
        self._cache[name] = (now + CACHE_SECONDS, summary)
        return summary


    async def _summaries(self, request: web.Request, only_node: str = "") -> list[tuple[dict[str, Any], dict[str, Any]]]:
        nodes_rt = self._server.registry.get("", "v1", "nodes")
        assert nodes_rt is not None
        if only_node:
            try:
                nodes = [await self._server.storage.get(nodes_rt, "", only_node)]
            except StatusError as err:
                if err.code == 404:
                    return []
                raise
        else:
            nodes = (await self._server.storage.list(nodes_rt, "")).items
        auth = request.headers.get("Authorization", "")
        results = await asyncio.gather(*(self._summary(n, auth) for n in nodes))
        return [(n, s) for n, s in zip(nodes, results) if s is not None]


    async def handle(self, request: web.Request, info: RequestInfo, verb: str) -> web.StreamResponse:
        rt = info.rt
        if info.subresource or verb not in ("get", "list"):
            raise errors.method_not_allowed(resource=rt.plural, action=verb, group=rt.group)
        try:
            selector = LabelSelector.parse(request.query.get("labelSelector", ""))
        except ValueError as exc:
            raise errors.bad_request(f"unable to parse requirement: {exc}") from None
        if rt.plural == "nodes":
            return await self._nodes(request, info, selector)
        return await self._pods(request, info, selector)


    async def _nodes(self, request: web.Request, info: RequestInfo, selector: LabelSelector) -> web.Response:
        items = []
        for node, summary in await self._summaries(request, info.name):
            labels = (node.get("metadata") or {}).get("labels") or {}
            if not info.name and not selector.matches(labels):
                continue
            stats = summary.get("node") or {}
            cpu, memory = stats.get("cpu") or {}, stats.get("memory") or {}
            items.append({"kind": "NodeMetrics", "apiVersion": GROUP_VERSION,
                          "metadata": {"name": node["metadata"]["name"], "creationTimestamp": _now(), "labels": labels},
                          "timestamp": cpu.get("time") or _now(), "window": WINDOW,
                          "usage": {"cpu": cpu_quantity(cpu.get("usageNanoCores")),
                                    "memory": memory_quantity(memory.get("workingSetBytes"))}})
        if info.name:
            if not items:
                raise errors.not_found(resource="nodes", name=info.name, group="metrics.k8s.io")
            return _one(items[0])
        return _list("NodeMetrics", items)


    async def _pods(self, request: web.Request, info: RequestInfo, selector: LabelSelector) -> web.Response:
        pods_rt = self._server.registry.get("", "v1", "pods")
        assert pods_rt is not None
        if info.name:
            try:
                pods = [await self._server.storage.get(pods_rt, info.namespace, info.name)]
            except StatusError as err:
                if err.code == 404:
                    raise errors.not_found(resource="pods", name=info.name, group="metrics.k8s.io") from None
                raise
        else:
            pods = [p for p in (await self._server.storage.list(pods_rt, info.namespace)).items
                    if selector.matches((p.get("metadata") or {}).get("labels") or {})]
        wanted = {(p["metadata"].get("namespace"), p["metadata"].get("name")): p for p in pods
                  if (p.get("spec") or {}).get("nodeName")}
        nodes = {(p.get("spec") or {}).get("nodeName") for p in wanted.values()}
        summaries = await self._summaries(request, next(iter(nodes)) if len(nodes) == 1 else "") if nodes else []
        items = []
        for _node, summary in summaries:
            for stat in summary.get("pods") or []:
                ref = stat.get("podRef") or {}
                pod = wanted.get((ref.get("namespace"), ref.get("name")))
                if pod is None or pod["metadata"].get("uid") != ref.get("uid"):
                    continue
                containers = [{"name": c.get("name"),
                               "usage": {"cpu": cpu_quantity((c.get("cpu") or {}).get("usageNanoCores")),
                                         "memory": memory_quantity((c.get("memory") or {}).get("workingSetBytes"))}}
                              for c in stat.get("containers") or []]
                ts = (stat.get("cpu") or {}).get("time") or _now()
                items.append({"kind": "PodMetrics", "apiVersion": GROUP_VERSION,
                              "metadata": {"name": ref.get("name"), "namespace": ref.get("namespace"),
                                           "creationTimestamp": _now(),
                                           "labels": (pod.get("metadata") or {}).get("labels") or {}},
                              "timestamp": ts, "window": WINDOW, "containers": containers})
        items.sort(key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"]))
        if info.name:
            if not items:
                raise errors.not_found(resource="pods", name=info.name, group="metrics.k8s.io")
            return _one(items[0])
        return _list("PodMetrics", items)
