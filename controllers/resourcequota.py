"""ResourceQuota controller (upstream's ``pkg/controller/resourcequota``): keeps ``status.used`` of
every ResourceQuota equal to the real usage of the objects in its namespace.

The admission plugin keeps ``status.used`` as a ledger (charged before a create is stored, moved
after updates and deletes are committed; see ``apiserver/admission_plugins/resourcequota.py``).
The ledger drifts: a crash between a commit and its ledger update, a reservation whose outcome
was unknown (kept: the object may exist), an administrator's hand edit. This controller recounts
with the same evaluators (``apimachinery.quota``) and writes the difference.

* Informers on the quotas and on the kinds most quotas track (pods, services, claims, configmaps,
  secrets, replicationcontrollers, resourcequotas). ``count/<resource>`` of any other kind is
  counted by a list of that resource in the namespace when the quota is synced (at least every
  ``--resource-quota-sync-period``, upstream's flag, default 5 minutes). A kind this build does not
  know (a custom resource) keeps the ledger's value.
* The queue is keyed by quota (``namespace/name``). A quota's own add/update syncs it; an event on
  a tracked object whose usage changed (created, deleted, a pod turning Succeeded/Failed, a claim
  resized, a Service changing type) syncs every quota of its namespace (upstream's
  "replenishment"); every quota is synced again each sync period.
* ``sync(key)`` reads the quota and the objects from the caches, computes ``used`` for the keys of
  ``spec.hard`` and, only if ``status`` differs, writes ``status`` (hard + used) with the
  resourceVersion of the quota it read: if the ledger moved meanwhile (an admission charge, a
  release) the write is refused with 409 and the key is synced again from fresh caches.

The race with admission. Admission charges the quota *before* the object is stored, so for a moment
the ledger holds a reservation the caches cannot show (the object is not stored yet, or the pod
informer has not seen it). A recount at that moment is lower than the ledger, and writing it would
hand the reserved unit to a second create: the quota could be exceeded. Upstream accepts this
window; here a recount that *lowers* an entry is held back: the first time a sync sees the ledger
above the recount, it remembers the quota's resourceVersion and the time, keeps the higher value
for that entry and syncs the key again ``RELEASE_DELAY`` later. Only if the quota was not written
for that long (no charge or release: its resourceVersion is the same) and the recount is still
lower is the lower value written, still conditional on that resourceVersion. A reservation is followed by its object
within the store's write time, so it is in the caches by then; one whose create is still in flight
after that (a store that stalls for longer) can be counted out for a moment, and the sync its
object's arrival triggers counts it in again. Raising an entry (the ledger under-counts: safe to
fix at once) is written at once. The controller therefore never wipes a concurrent reservation for
good, and a transient difference is corrected by a later sync.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, ClassVar

from apimachinery import meta as m
from apimachinery.errors import StatusError
from apimachinery.quota import ZERO, Usage, add_usage, counts_toward, resource_list, same_usage, usage
from apimachinery.registry import Registry, ResourceType
from apiclient.informer import INDEX_NAMESPACE, Informer
from apiclient.rest import Resource

from .context import BaseController, ControllerContext

log = logging.getLogger("controllers.resourcequota")

Obj = dict[str, Any]
SYNC_PERIOD = 300.0  # --resource-quota-sync-period
RELEASE_DELAY = 5.0  # seconds a lower recount must hold, the quota unchanged, before it is written

# The kinds watched through informers (upstream's evaluators with replenishment).
TRACKED = ("pods", "services", "persistentvolumeclaims", "configmaps", "secrets", "replicationcontrollers",
           "resourcequotas")


def _as_resource(rt: ResourceType) -> Resource:
    return Resource(rt.group, rt.version, rt.plural, rt.namespaced, rt.kind)


class ResourceQuotaController(BaseController):
    name: ClassVar[str] = "resourcequota"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.registry = Registry()
        self.period = float(ctx.options.extra.get("resource_quota_sync_period", SYNC_PERIOD))
        self.release_delay = float(ctx.options.extra.get("resource_quota_release_delay", RELEASE_DELAY))
        self.types: dict[str, ResourceType] = {}
        self.informers: dict[str, Informer] = {}
        for plural in TRACKED:
            rt = self.registry.get("", "v1", plural)
            assert rt is not None, plural
            self.types[plural] = rt
            self.informers[plural] = ctx.informer(_as_resource(rt))
        self.quotas = self.informers["resourcequotas"]
        # quota key -> (uid, resourceVersion, monotonic time) when a sync first saw the ledger above
        # the recount at that resourceVersion
        self._pending: dict[str, tuple[str, str, float]] = {}
        self.on(self.quotas, add=self._quota_changed, update=self._quota_updated, delete=self._quota_deleted)
        for plural, inf in self.informers.items():
            if plural == "resourcequotas":
                continue
            rt = self.types[plural]
            self.on(inf, add=self._object_added, update=lambda old, new, rt=rt: self._object_updated(rt, old, new),
                    delete=self._object_added)

    # .................................................................. events

    def _enqueue_namespace(self, namespace: str) -> None:
        for q in self.quotas.by_index(INDEX_NAMESPACE, namespace):
            self.queue.add(m.object_key(q))

    def _quota_changed(self, quota: Obj) -> None:
        self.queue.add(m.object_key(quota))
        self._enqueue_namespace(m.namespace(quota))  # other quotas may count resourcequotas

    def _quota_updated(self, old: Obj, new: Obj) -> None:
        self.queue.add(m.object_key(new))

    def _quota_deleted(self, quota: Obj) -> None:
        self._pending.pop(m.object_key(quota), None)
        self._enqueue_namespace(m.namespace(quota))

    def _object_added(self, obj: Obj) -> None:
        """Created or deleted: its usage appeared or went away."""
        self._enqueue_namespace(m.namespace(obj))

    def _object_updated(self, rt: ResourceType, old: Obj, new: Obj) -> None:
        if m.resource_version(old) == m.resource_version(new):
            return  # a resync; the periodic tick covers those
        if usage(rt, old) != usage(rt, new) or (rt.plural == "pods" and old.get("spec") != new.get("spec")):
            self._enqueue_namespace(m.namespace(new))  # a pod finishing, a claim resized, a pod re-scoped

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            for q in self.quotas.list():
                self.queue.add(m.object_key(q))

    async def run(self) -> None:
        self.spawn(self._tick(), "resourcequota-resync")
        await super().run()

    # .................................................................. sync

    async def _count(self, namespace: str, quota: Obj, keys: list[str]) -> tuple[Usage, set[str]]:
        """Usage of ``keys`` by the namespace's objects, and the keys that could not be counted
        (``count/`` of a kind this build does not know, or that the API server does not serve)."""
        total: Usage = {}
        uncounted: set[str] = set()
        for plural, rt in self.types.items():
            mine = [k for k in keys if counts_toward(rt, k)]
            if mine:
                add_usage(total, quota, rt, self.informers[plural].by_index(INDEX_NAMESPACE, namespace), mine)
        for key in keys:
            if not key.startswith("count/") or any(counts_toward(rt, key) for rt in self.types.values()):
                continue  # counted above (a key nothing uses is counted as zero, as upstream does)
            rt = self._count_type(key)
            if rt is None:
                uncounted.add(key)
                continue
            try:
                result = await self.client.list(_as_resource(rt), namespace=namespace)
            except StatusError as err:
                if err.code in (403, 404):  # not served here (or not allowed): leave the ledger alone
                    uncounted.add(key)
                    continue
                raise
            add_usage(total, quota, rt, result.get("items") or [], [key])
        return total, uncounted

    def _count_type(self, key: str) -> ResourceType | None:
        """The built-in type ``count/<plural>[.<group>]`` names (preferred version), or None."""
        plural, _, group = key[len("count/"):].partition(".")
        for version in self.registry.groups().get(group, []):
            rt = self.registry.get(group, version, plural)
            if rt is not None and rt.namespaced and not rt.virtual:
                return rt
        return None

    async def sync(self, key: str) -> None:
        quota = self.quotas.get(key)
        if quota is None:
            self._pending.pop(key, None)
            return
        namespace = m.namespace(quota)
        spec_hard = (quota.get("spec") or {}).get("hard") or {}
        if not isinstance(spec_hard, dict):
            return
        status = quota.get("status") if isinstance(quota.get("status"), dict) else {}
        old_used_raw = status.get("used") if isinstance(status.get("used"), dict) else {}
        ledger = resource_list(old_used_raw)
        keys = sorted(str(k) for k in spec_hard)
        computed, uncounted = await self._count(namespace, quota, keys)

        ident = (m.uid(quota), m.resource_version(quota))
        now = time.monotonic()
        pending = self._pending.get(key)
        since = pending[2] if pending is not None and pending[:2] == ident else now
        wait = since + self.release_delay - now  # > 0: lower entries are not written yet
        used: dict[str, str] = {}
        lowered: list[str] = []
        hold = False
        for k in keys:
            if k in uncounted:  # cannot count it: keep what the ledger says
                if k in old_used_raw:
                    used[k] = str(old_used_raw[k])
                else:
                    used[k] = ZERO.to_string()
                continue
            value = computed.get(k, ZERO)
            if k in ledger and value < ledger[k]:
                lowered.append(k)
                if wait > 0:
                    hold = True
                    value = ledger[k]  # maybe a reservation whose object is on its way: not yet
            used[k] = value.to_string()
        if hold:
            self._pending[key] = (*ident, since)
            self.queue.add_after(key, wait)
        elif not lowered:
            self._pending.pop(key, None)

        want = {"hard": dict(spec_hard), "used": used}
        if same_usage(status.get("hard"), want["hard"]) and same_usage(old_used_raw, used):
            return
        body = dict(quota)
        body["status"] = {**status, **want}
        try:
            await self.client.update(_as_resource(self.types["resourcequotas"]), body, namespace=namespace,
                                     subresource="status")
        except StatusError as err:
            if err.code == 404:
                return  # deleted meanwhile
            raise  # 409: the ledger moved; BaseController syncs the key again soon
        if lowered and not hold:
            self._pending.pop(key, None)
        log.info("quota %s: used %s (was %s)", key, used, dict(old_used_raw),
                 extra={"event": "quota_synced", "quota": key})
