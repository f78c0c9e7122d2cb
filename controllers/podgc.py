"""Pod garbage collector: pods no kubelet will ever finish.

Every ``PERIOD`` seconds (upstream: 20 s):

* pods bound to a node that does not exist (checked with a live GET, the cache may lag) are deleted
  at once (grace 0) — their kubelet is gone with the node, nobody else would complete the deletion;
* terminating pods that were never scheduled are deleted at once (no kubelet owns them);
* finished pods (Succeeded/Failed) beyond ``--terminated-pod-gc-threshold`` are deleted, oldest first.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar

from apimachinery import meta as m
from apimachinery.errors import StatusError
from apiclient.rest import NODES, PODS

from . import podutil as pu
from .context import BaseController, ControllerContext

log = logging.getLogger("controllers.podgc")

Obj = dict[str, Any]
PERIOD = 20.0
KEY = "podgc"


class PodGCController(BaseController):
    name: ClassVar[str] = "podgc"
    default_workers: ClassVar[int] = 1

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.pods = self.uses(ctx.informer(PODS))
        self.nodes = self.uses(ctx.informer(NODES))
        self.threshold = int(ctx.options.extra.get("terminated_pod_gc_threshold", 12500))
        self.period = float(ctx.options.extra.get("podgc_period", PERIOD))

    async def _tick(self) -> None:
        while True:
            self.queue.add(KEY)
            await asyncio.sleep(self.period)

    async def run(self) -> None:
        self.spawn(self._tick(), "podgc-tick")
        await super().run()

    async def _force_delete(self, pod: Obj, why: str) -> None:
        try:
            await self.client.delete(PODS, m.name(pod), namespace=m.namespace(pod), grace_period_seconds=0,
                                     preconditions={"uid": m.uid(pod)})
        except StatusError as err:
            if err.code in (404, 409):
                return
            raise
        log.info("deleted pod %s: %s", m.object_key(pod), why, extra={"event": "pod_gc", "pod": m.object_key(pod),
                                                                        "why": why})

    async def _node_exists(self, name: str) -> bool:
        if self.nodes.get(name) is not None:
            return True
        try:
            await self.client.get(NODES, name)
        except StatusError as err:
            if err.code == 404:
                return False
            raise
        return True

    async def sync(self, key: str) -> None:
        pods = self.pods.list()
        missing: dict[str, bool] = {}
        for pod in pods:
            node = (pod.get("spec") or {}).get("nodeName")
            if node:
                if node not in missing:
                    missing[node] = not await self._node_exists(node)
                if missing[node]:
                    await self._force_delete(pod, f"its node {node} no longer exists")
            elif pu.is_terminating(pod):
                await self._force_delete(pod, "terminating and never scheduled")
        finished = sorted((p for p in pods if pu.phase(p) in ("Succeeded", "Failed") and not pu.is_terminating(p)),
                          key=lambda p: (m.creation_timestamp(p), m.name(p)))
        for pod in finished[:max(0, len(finished) - self.threshold)]:
            await self._force_delete(pod, "over the terminated-pod threshold")
