"""Deployment controller: roll a Deployment's pod template out through ReplicaSets.

``sync(key)`` works from the informer caches, as upstream's ``syncDeployment``:

* claim ReplicaSets (owner references, adoption and release by selector);
* paused, or only ``replicas`` changed (a *scaling event*): scale the ReplicaSets proportionally,
  clean up old ones while paused, update status;
* ``RollingUpdate``: find or create the new ReplicaSet ``<name>-<pod-template-hash>`` (revision =
  highest old revision + 1, so a rolled-back-to ReplicaSet gets max+1), scale it up as far as
  ``replicas + maxSurge`` allows, scale old ReplicaSets down as far as ``replicas - maxUnavailable``
  available pods allow (unhealthy old pods first); when complete, delete old ReplicaSets beyond
  ``revisionHistoryLimit``;
* ``Recreate``: scale every old ReplicaSet to 0, wait until none of their pods runs, then create and
  scale up the new one;
* status: replicas/updated/ready/available/unavailable, ``observedGeneration``, the ``Available``
  and ``Progressing`` conditions with upstream's reasons, ``ProgressDeadlineExceeded`` once no
  progress was reported for ``progressDeadlineSeconds`` (the key is requeued for that moment).

Every write is an update with the cached resourceVersion: if another writer (or our own earlier
term) changed the object, the API server answers 409 and the key is synced again from fresher
caches; nothing is decided twice from stale data.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from apimachinery import meta as m
from apimachinery.errors import StatusError
from apiclient.events import NORMAL, WARNING
from apiclient.informer import INDEX_CONTROLLER_UID, INDEX_NAMESPACE
from apiclient.rest import PODS, resource

from . import deploymentutil as du
from . import podutil as pu
from .context import BaseController, ChildEvents, ControllerContext
from .refmanager import RefManager
from .replicaset import REPLICASETS

log = logging.getLogger("controllers.deployment")

Obj = dict[str, Any]
DEPLOYMENTS = resource("deployments", "apps")
KIND = "Deployment"
API_VERSION = "apps/v1"


class Requeue(Exception):
    """Stop this sync and try again soon (e.g. after a ReplicaSet name collision bumped collisionCount)."""


class DeploymentController(BaseController):
    name: ClassVar[str] = "deployment"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.deployments = ctx.informer(DEPLOYMENTS)
        self.rss = ctx.informer(REPLICASETS)
        self.pods = ctx.informer(PODS)
        self.on(self.deployments, add=self._enqueue, update=lambda _o, n: self._enqueue(n), delete=self._enqueue)
        self.children = ChildEvents(self.deployments, KIND, self._enqueue)
        self.on(self.rss, add=self.children.add, update=self.children.update, delete=self.children.delete)
        self.on(self.pods, delete=self._pod_deleted)

    # ------------------------------------------------------------------ handlers

    def _enqueue(self, d: Obj) -> None:
        self.queue.add(m.object_key(d))

    def _pod_deleted(self, pod: Obj) -> None:
        """A Recreate rollout waits for the old pods to be gone."""
        ref = m.controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        rs = self.rss.get_by_name(m.namespace(pod), str(ref.get("name") or ""))
        if rs is None:
            return
        d = self.children.owner_of(rs)
        if d is not None and not du.is_rolling(d):
            self._enqueue(d)

    # ------------------------------------------------------------------ sync

    async def sync(self, key: str) -> None:
        cached = self.deployments.get(key)
        if cached is None:
            return
        d: Obj = m.deep_copy(cached)
        try:
            await self._sync(d)
        except Requeue:
            self.queue.add_after(key, 0.05)

    async def _sync(self, d: Obj) -> None:
        sel = (d.get("spec") or {}).get("selector")
        if sel == {} or (isinstance(sel, dict) and not sel.get("matchLabels") and not sel.get("matchExpressions")):
            self.recorder.event(d, WARNING, "SelectingAll",
                                "This deployment is selecting all pods. A non-empty selector is required.")
            if du.status_int(d, "observedGeneration") < m.generation(d):
                d.setdefault("status", {})["observedGeneration"] = m.generation(d)
                await self._update_status(d, d["status"])
            return
        rs_list = await self._claim_replica_sets(d)
        if pu.is_terminating(d):
            await self._sync_status_only(d, rs_list)
            return
        d = await self._check_paused_conditions(d)
        if (d.get("spec") or {}).get("paused"):
            await self._sync_scale(d, rs_list)
            return
        if await self._is_scaling_event(d, rs_list):
            await self._sync_scale(d, rs_list)
            return
        if du.is_rolling(d):
            await self._rollout_rolling(d, rs_list)
        else:
            await self._rollout_recreate(d, rs_list)

    async def _claim_replica_sets(self, d: Obj) -> list[Obj]:
        uid = m.uid(d)
        candidates = [rs for rs in self.rss.by_index(INDEX_NAMESPACE, m.namespace(d))
                      if (ref := m.controller_ref(rs)) is None or ref.get("uid") == uid]
        manager = RefManager(self.client, owner=d, owner_res=DEPLOYMENTS,
                             owner_ref=pu.owner_ref_of(d, KIND, API_VERSION), selector=pu.selector_of(d))
        return await manager.claim(REPLICASETS, candidates)

    # ------------------------------------------------------------------ new and old ReplicaSets

    async def _get_all_rss(self, d: Obj, rs_list: list[Obj], create: bool) -> tuple[Obj | None, list[Obj]]:
        """(new ReplicaSet or None, all old ReplicaSets); syncs the revision annotations."""
        _, all_old = du.find_old_rss(d, rs_list)
        new_rs = await self._get_new_rs(d, rs_list, all_old, create)
        return new_rs, all_old

    async def _get_new_rs(self, d: Obj, rs_list: list[Obj], old_rss: list[Obj], create: bool) -> Obj | None:
        existing = du.find_new_rs(d, rs_list)
        new_revision = du.max_revision(old_rss) + 1
        if existing is not None:
            rs = m.deep_copy(existing)
            changed = du.set_new_rs_annotations(d, rs, new_revision, exists=True)
            min_ready = int((d.get("spec") or {}).get("minReadySeconds") or 0)
            if int((rs.get("spec") or {}).get("minReadySeconds") or 0) != min_ready:
                rs["spec"]["minReadySeconds"] = min_ready
                changed = True
            if changed:
                rs = await self.client.update(REPLICASETS, rs, namespace=m.namespace(rs))
            needs_update = self._set_deployment_revision(d, m.annotations(rs).get(du.REVISION, ""))
            st = d.setdefault("status", {})
            if du.has_progress_deadline(d) and du.get_condition(st, "Progressing") is None:
                du.set_condition(st, du.new_condition("Progressing", "True", du.FOUND_NEW_RS,
                                                      f'Found new replica set "{m.name(rs)}"'))
                needs_update = True
            if needs_update:
                await self._update_deployment(d)
            return rs
        if not create:
            return None
        collision = (d.get("status") or {}).get("collisionCount")
        template = m.deep_copy(du.template_of(d))
        pod_hash = du.compute_hash(template, collision)
        template.setdefault("metadata", {}).setdefault("labels", {})[du.POD_TEMPLATE_HASH] = pod_hash
        selector = m.deep_copy((d.get("spec") or {}).get("selector") or {})
        selector.setdefault("matchLabels", {})[du.POD_TEMPLATE_HASH] = pod_hash
        rs: Obj = {
            "apiVersion": API_VERSION, "kind": "ReplicaSet",
            "metadata": {"name": f"{m.name(d)}-{pod_hash}", "namespace": m.namespace(d),
                         "ownerReferences": [pu.owner_ref_of(d, KIND, API_VERSION)],
                         "labels": dict(template["metadata"]["labels"])},
            "spec": {"replicas": 0, "minReadySeconds": int((d.get("spec") or {}).get("minReadySeconds") or 0),
                     "selector": selector, "template": template},
        }
        rs["spec"]["replicas"] = du.new_rs_new_replicas(d, [*old_rss, rs], rs)
        du.set_new_rs_annotations(d, rs, new_revision, exists=False)
        already_exists = False
        try:
            created = await self.client.create(REPLICASETS, rs, namespace=m.namespace(d))
        except StatusError as err:
            if err.code == 409 and err.reason == "AlreadyExists":
                current = await self.client.get(REPLICASETS, m.name(rs), namespace=m.namespace(d))
                if m.is_controlled_by(current, d) and du.equal_ignore_hash(du.template_of(current), du.template_of(d)):
                    # Our own earlier create (another term, or a lost answer): use it.
                    created, already_exists = current, True
                else:
                    # A hash collision: a different template under the same name. Bump collisionCount so the
                    # next hash differs, and try again.
                    st = d.setdefault("status", {})
                    st["collisionCount"] = int(st.get("collisionCount") or 0) + 1
                    await self._update_status(d, st)
                    raise Requeue() from err
            else:
                if du.has_progress_deadline(d):
                    st = d.setdefault("status", {})
                    du.set_condition(st, du.new_condition("Progressing", "False", du.FAILED_RS_CREATE,
                                                          f"Failed to create new replica set \"{m.name(rs)}\": "
                                                          f"{err.message}"))
                    await self._update_status(d, st)
                self.recorder.event(d, WARNING, du.FAILED_RS_CREATE,
                                    f'Failed to create new replica set "{m.name(rs)}": {err.message}')
                raise
        if not already_exists and du.replicas(created) > 0:
            self.recorder.event(d, NORMAL, "ScalingReplicaSet",
                                f"Scaled up replica set {m.name(created)} from 0 to {du.replicas(created)}")
        needs_update = self._set_deployment_revision(d, str(new_revision))
        if not already_exists and du.has_progress_deadline(d):
            du.set_condition(d.setdefault("status", {}),
                             du.new_condition("Progressing", "True", du.NEW_RS_CREATED,
                                              f'Created new replica set "{m.name(created)}"'))
            needs_update = True
        if needs_update:
            await self._update_deployment(d)
        return created

    @staticmethod
    def _set_deployment_revision(d: Obj, revision: str) -> bool:
        ann = m.ensure_metadata(d).setdefault("annotations", {})
        if revision and ann.get(du.REVISION) != revision:
            ann[du.REVISION] = revision
            return True
        return False

    async def _update_deployment(self, d: Obj) -> None:
        """Write the revision annotation (metadata) and then the status, keeping ``d`` current."""
        want_ann = m.annotations(d).get(du.REVISION)
        cached = self.deployments.get(m.object_key(d)) or {}
        if want_ann is not None and m.annotations(cached).get(du.REVISION) != want_ann:
            # The annotation is metadata: a status write would not store it.
            patch = {"metadata": {"annotations": {du.REVISION: want_ann}, "resourceVersion": m.resource_version(d)}}
            updated = await self.client.patch(DEPLOYMENTS, m.name(d), patch, namespace=m.namespace(d))
            m.set_resource_version(d, m.resource_version(updated))
        await self._update_status(d, d.get("status") or {})

    async def _update_status(self, d: Obj, st: Mapping[str, Any]) -> None:
        body = dict(d)
        body["status"] = dict(st)
        updated = await self.client.update(DEPLOYMENTS, body, namespace=m.namespace(d), subresource="status")
        d["status"] = updated.get("status") or {}
        m.set_resource_version(d, m.resource_version(updated))

    # ------------------------------------------------------------------ scaling

    async def _scale_rs(self, rs: Obj, size: int, d: Obj, operation: str) -> tuple[bool, Obj]:
        want_d = du.replicas(d)
        max_total = want_d + du.max_surge(d)
        size_changes = du.replicas(rs) != size
        if not size_changes and not du.replicas_annotations_need_update(rs, want_d, max_total):
            return False, rs
        old = du.replicas(rs)
        copy = m.deep_copy(rs)
        copy.setdefault("spec", {})["replicas"] = size
        du.set_replicas_annotations(copy, want_d, max_total)
        updated = await self.client.update(REPLICASETS, copy, namespace=m.namespace(rs))
        if size_changes:
            self.recorder.event(d, NORMAL, "ScalingReplicaSet",
                                f"Scaled {operation} replica set {m.name(rs)} from {old} to {size}")
        return size_changes, updated

    async def _scale(self, d: Obj, new_rs: Obj | None, old_rss: list[Obj]) -> None:
        """Proportional scaling when ``replicas`` changes mid-rollout (``dc.scale``)."""
        want = du.replicas(d)
        target = du.find_active_or_latest(new_rs, old_rss)
        if target is not None:
            if du.replicas(target) != want:
                await self._scale_rs(target, want, d, "up" if want > du.replicas(target) else "down")
            return
        if du.is_saturated(d, new_rs):
            for old in du.active(old_rss):
                await self._scale_rs(old, 0, d, "down")
            return
        if not du.is_rolling(d):
            return
        all_rss = du.active([*old_rss, new_rs])
        allowed = want + du.max_surge(d) if want > 0 else 0
        to_add = allowed - du.spec_replicas_sum(all_rss)
        if to_add > 0:  # larger first; equal sizes: newer first
            all_rss.sort(key=lambda rs: (-du.replicas(rs), tuple(-ord(c) for c in m.creation_timestamp(rs))))
            operation = "up"
        elif to_add < 0:  # larger first; equal sizes: older first
            all_rss.sort(key=lambda rs: (-du.replicas(rs), du.creation_key(rs)))
            operation = "down"
        else:
            operation = ""
        sizes: dict[str, int] = {}
        added = 0
        for rs in all_rss:
            if to_add:
                share = du.proportion(rs, d, to_add, added)
                sizes[m.name(rs)] = du.replicas(rs) + share
                added += share
            else:
                sizes[m.name(rs)] = du.replicas(rs)
        for i, rs in enumerate(all_rss):
            if i == 0 and to_add:
                sizes[m.name(rs)] = max(0, sizes[m.name(rs)] + to_add - added)
            await self._scale_rs(rs, sizes[m.name(rs)], d, operation)

    async def _is_scaling_event(self, d: Obj, rs_list: list[Obj]) -> bool:
        new_rs, old_rss = await self._get_all_rss(d, rs_list, create=False)
        for rs in du.active([*old_rss, new_rs]):
            desired = du.desired_replicas_annotation(rs)
            if desired is not None and desired != du.replicas(d):
                return True
        return False

    async def _sync_scale(self, d: Obj, rs_list: list[Obj]) -> None:
        """``dc.sync``: scale (proportionally), clean up while paused, update status."""
        new_rs, old_rss = await self._get_all_rss(d, rs_list, create=False)
        await self._scale(d, new_rs, old_rss)
        if (d.get("spec") or {}).get("paused"):
            await self._cleanup(d, old_rss)
        new_rs, old_rss = self._refresh(new_rs, old_rss)
        await self._sync_deployment_status(d, [*old_rss, new_rs], new_rs)

    def _refresh(self, new_rs: Obj | None, old_rss: list[Obj]) -> tuple[Obj | None, list[Obj]]:
        """The ReplicaSets as the cache has them now (our own updates may have landed)."""
        def fresh(rs: Obj) -> Obj:
            cur = self.rss.get(m.object_key(rs))
            if cur is not None and m.uid(cur) == m.uid(rs) and \
                    int(m.resource_version(cur) or 0) > int(m.resource_version(rs) or 0):
                return cur
            return rs
        return (fresh(new_rs) if new_rs is not None else None), [fresh(rs) for rs in old_rss]

    async def _sync_status_only(self, d: Obj, rs_list: list[Obj]) -> None:
        new_rs, old_rss = await self._get_all_rss(d, rs_list, create=False)
        await self._sync_deployment_status(d, [*old_rss, new_rs], new_rs)

    async def _sync_deployment_status(self, d: Obj, all_rss: list[Obj | None], new_rs: Obj | None) -> None:
        st = du.calculate_status(d, all_rss, new_rs)
        if st != (d.get("status") or {}):
            await self._update_status(d, st)

    async def _cleanup(self, d: Obj, old_rss: list[Obj]) -> None:
        """Delete the oldest ReplicaSets beyond ``revisionHistoryLimit`` (only empty, settled ones)."""
        limit = du.revision_history_limit(d)
        if limit is None:
            return
        cleanable = [rs for rs in old_rss if not pu.is_terminating(rs)]
        diff = len(cleanable) - limit
        if diff <= 0:
            return
        cleanable.sort(key=lambda rs: (du.revision(rs), du.creation_key(rs)))
        for rs in cleanable[:diff]:
            if du.status_int(rs, "replicas") != 0 or du.replicas(rs) != 0 or \
                    m.generation(rs) > du.status_int(rs, "observedGeneration"):
                continue
            try:
                await self.client.delete(REPLICASETS, m.name(rs), namespace=m.namespace(rs),
                                         preconditions={"uid": m.uid(rs)})
            except StatusError as err:
                if err.code not in (404, 409):
                    raise

    async def _check_paused_conditions(self, d: Obj) -> Obj:
        if not du.has_progress_deadline(d):
            return d
        st = d.setdefault("status", {})
        cond = du.get_condition(st, "Progressing")
        if cond is not None and cond.get("reason") == du.TIMED_OUT:
            return d
        paused_cond = cond is not None and cond.get("reason") == du.PAUSED
        paused = bool((d.get("spec") or {}).get("paused"))
        if paused and not paused_cond:
            du.set_condition(st, du.new_condition("Progressing", "Unknown", du.PAUSED, "Deployment is paused"))
        elif not paused and paused_cond:
            du.set_condition(st, du.new_condition("Progressing", "Unknown", du.RESUMED, "Deployment is resumed"))
        else:
            return d
        await self._update_status(d, st)
        return d

    # ------------------------------------------------------------------ rolling update

    async def _rollout_rolling(self, d: Obj, rs_list: list[Obj]) -> None:
        new_rs, old_rss = await self._get_all_rss(d, rs_list, create=True)
        assert new_rs is not None
        all_rss: list[Obj] = [*old_rss, new_rs]
        if await self._reconcile_new_rs(all_rss, new_rs, d):
            await self._sync_rollout_status(d, all_rss, new_rs)
            return
        if await self._reconcile_old_rss(all_rss, du.active(old_rss), new_rs, d):
            await self._sync_rollout_status(d, all_rss, new_rs)
            return
        if du.deployment_complete(d, d.get("status") or {}):
            await self._cleanup(d, old_rss)
        await self._sync_rollout_status(d, all_rss, new_rs)

    async def _reconcile_new_rs(self, all_rss: list[Obj], new_rs: Obj, d: Obj) -> bool:
        want = du.replicas(d)
        if du.replicas(new_rs) == want:
            return False
        if du.replicas(new_rs) > want:
            scaled, _ = await self._scale_rs(new_rs, want, d, "down")
            return scaled
        count = du.new_rs_new_replicas(d, all_rss, new_rs)
        scaled, _ = await self._scale_rs(new_rs, count, d, "up")
        return scaled

    async def _reconcile_old_rss(self, all_rss: list[Obj], old_rss: list[Obj], new_rs: Obj, d: Obj) -> bool:
        if du.spec_replicas_sum(old_rss) == 0:
            return False
        if self._status_behind(old_rss):
            # An old ReplicaSet has not acted on its last scale-down yet: its availability is not
            # known, so scaling further could overshoot maxUnavailable. Its status update requeues us.
            return False
        all_pods = du.spec_replicas_sum(all_rss)
        min_available = du.replicas(d) - du.max_unavailable(d)
        new_unavailable = du.replicas(new_rs) - du.status_int(new_rs, "availableReplicas")
        max_scaled_down = all_pods - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        old_rss, cleaned = await self._cleanup_unhealthy(old_rss, d, max_scaled_down)
        all_rss = [*old_rss, new_rs]
        scaled = await self._scale_down_old_for_rolling(all_rss, old_rss, d, max_scaled_down - cleaned)
        return cleaned + scaled > 0

    @staticmethod
    def _status_behind(rss: list[Obj]) -> bool:
        return any(du.status_int(rs, "observedGeneration") < m.generation(rs) for rs in rss)

    async def _cleanup_unhealthy(self, old_rss: list[Obj], d: Obj, max_cleanup: int) -> tuple[list[Obj], int]:
        """Scale old ReplicaSets down by their unavailable pods first (oldest first)."""
        total = 0
        out: list[Obj] = []
        for rs in sorted(old_rss, key=du.creation_key):
            if total >= max_cleanup or du.replicas(rs) == 0:
                out.append(rs)
                continue
            unhealthy = du.replicas(rs) - du.safe_available(rs)
            if unhealthy <= 0:
                out.append(rs)
                continue
            count = min(max_cleanup - total, unhealthy)
            _, updated = await self._scale_rs(rs, du.replicas(rs) - count, d, "down")
            total += count
            out.append(updated)
        return out, total

    async def _scale_down_old_for_rolling(self, all_rss: list[Obj], old_rss: list[Obj], d: Obj, limit: int) -> int:
        min_available = du.replicas(d) - du.max_unavailable(d)
        available = sum(du.safe_available(rs) for rs in all_rss)
        if available <= min_available or limit <= 0:
            return 0
        to_scale = min(available - min_available, limit)
        total = 0
        for rs in sorted(old_rss, key=du.creation_key):
            if total >= to_scale:
                break
            if du.replicas(rs) == 0:
                continue
            count = min(du.replicas(rs), to_scale - total)
            await self._scale_rs(rs, du.replicas(rs) - count, d, "down")
            total += count
        return total

    async def _sync_rollout_status(self, d: Obj, all_rss: list[Obj | None], new_rs: Obj | None) -> None:
        new_rs, old = self._refresh(new_rs, [rs for rs in all_rss if rs is not None and rs is not new_rs])
        all_rss = [*old, new_rs]
        st = du.calculate_status(d, all_rss, new_rs)
        if not du.has_progress_deadline(d):
            du.remove_condition(st, "Progressing")
        current = du.get_condition(d.get("status") or {}, "Progressing")
        complete_before = (st.get("replicas") == st.get("updatedReplicas") and current is not None
                           and current.get("reason") == du.NEW_RS_AVAILABLE)
        at = pu.now()
        if du.has_progress_deadline(d) and not complete_before:
            rs_name = f'ReplicaSet "{m.name(new_rs)}"' if new_rs is not None else f'Deployment "{m.name(d)}"'
            if du.deployment_complete(d, st):
                du.set_condition(st, du.new_condition("Progressing", "True", du.NEW_RS_AVAILABLE,
                                                      f"{rs_name} has successfully progressed."))
            elif du.deployment_progressing(d, st):
                cond = du.new_condition("Progressing", "True", du.RS_UPDATED, f"{rs_name} is progressing.")
                if current is not None:
                    if current.get("status") == "True":
                        cond["lastTransitionTime"] = current.get("lastTransitionTime")
                    du.remove_condition(st, "Progressing")
                du.set_condition(st, cond)
            elif du.deployment_timed_out(d, st, at):
                du.set_condition(st, du.new_condition("Progressing", "False", du.TIMED_OUT,
                                                      f"{rs_name} has timed out progressing."))
                self.recorder.event(d, WARNING, du.TIMED_OUT, f"{rs_name} has timed out progressing.")
        failure = self._replica_failure(all_rss, new_rs)
        if failure is not None:
            du.set_condition(st, failure)
        else:
            du.remove_condition(st, "ReplicaFailure")
        if st != (d.get("status") or {}):
            await self._update_status(d, st)
        wait = du.seconds_to_deadline(d, st, at)
        if wait is not None:
            self.queue.add_after(m.object_key(d), wait)

    @staticmethod
    def _replica_failure(all_rss: list[Obj | None], new_rs: Obj | None) -> Obj | None:
        ordered = ([new_rs] if new_rs is not None else []) + [rs for rs in all_rss if rs is not None and rs is not new_rs]
        for rs in ordered:
            for c in (rs.get("status") or {}).get("conditions") or []:
                if c.get("type") == "ReplicaFailure" and c.get("status") == "True":
                    when = c.get("lastTransitionTime")
                    return {"type": "ReplicaFailure", "status": "True", "lastUpdateTime": when,
                            "lastTransitionTime": when, "reason": c.get("reason"), "message": c.get("message")}
        return None

    # ------------------------------------------------------------------ recreate

    async def _rollout_recreate(self, d: Obj, rs_list: list[Obj]) -> None:
        new_rs, old_rss = await self._get_all_rss(d, rs_list, create=False)
        all_rss: list[Obj | None] = [*old_rss, new_rs]
        scaled_down = False
        for rs in du.active(old_rss):
            changed, _ = await self._scale_rs(rs, 0, d, "down")
            scaled_down = scaled_down or changed
        if scaled_down:
            await self._sync_rollout_status(d, all_rss, new_rs)
            return
        if self._old_pods_running(new_rs, old_rss, d):
            await self._sync_rollout_status(d, all_rss, new_rs)
            return
        if new_rs is None:
            new_rs, old_rss = await self._get_all_rss(d, rs_list, create=True)
            all_rss = [*old_rss, new_rs]
        assert new_rs is not None
        if du.replicas(new_rs) != du.replicas(d):
            await self._scale_rs(new_rs, du.replicas(d), d, "up")
        if du.deployment_complete(d, d.get("status") or {}):
            await self._cleanup(d, old_rss)
        await self._sync_rollout_status(d, all_rss, new_rs)

    def _old_pods_running(self, new_rs: Obj | None, old_rss: list[Obj], d: Obj) -> bool:
        if du.actual_replicas_sum(old_rss) > 0:
            return True
        new_uid = m.uid(new_rs) if new_rs is not None else ""
        for rs in old_rss:
            if m.uid(rs) == new_uid:
                continue
            for pod in self.pods.by_index(INDEX_CONTROLLER_UID, m.uid(rs)):
                if pu.phase(pod) not in ("Failed", "Succeeded"):
                    return True
        return False
