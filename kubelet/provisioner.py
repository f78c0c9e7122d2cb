"""The built-in local volume provisioner: StorageClass ``local``, claims bound to hostPath PVs on a node.

Every kubelet with ``--local-provisioner`` (the default for the process and docker runtimes) runs it:

* at start it creates the StorageClass ``local`` (provisioner ``pilothouse.io/local``,
  ``volumeBindingMode: Immediate``, ``reclaimPolicy: Delete``, marked the default class) if absent;
* a Pending claim of that class (or of no class, as the default) gets a PersistentVolume
  ``pvc-<claim uid>`` — a ``hostPath`` directory ``<data dir>/<namespace>_<claim>_<uid>`` with a
  ``nodeAffinity`` for this node. Several kubelets race with the same PV name: the API server lets
  exactly one create it (the others get 409 and just finish the binding if needed). The claim gets
  ``spec.volumeName`` and phase Bound, the PV ``claimRef`` and phase Bound.
  A pod bound to this node that uses a still-unbound claim provisions it here first (``provision``),
  so pods placed directly with ``spec.nodeName`` work without waiting for the watch;
* when the claim is deleted, the PV is Released and, with ``reclaimPolicy: Delete``, the kubelet of
  its node removes the directory and the PV; ``Retain`` keeps both.

The data directory is ``--data-dir`` (default ``<root dir>/volumes``): it survives pod replacement
and kubelet restarts — only the claim's deletion removes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from pathlib import Path
from typing import Any

from apiclient.informer import Informer
from apiclient.rest import PERSISTENT_VOLUME_CLAIMS, PERSISTENT_VOLUMES, APIConnectionError, RESTClient, resource
from apimachinery import meta as m
from apimachinery.errors import StatusError

log = logging.getLogger(__name__)

Obj = dict[str, Any]
STORAGE_CLASSES = resource("storageclasses", "storage.k8s.io")
CLASS_NAME = "local"
PROVISIONER = "pilothouse.io/local"
NODE_LABEL = "pilothouse.io/local-node"


def storage_class() -> Obj:
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": CLASS_NAME, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": PROVISIONER, "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"}


def wants_local(pvc: Obj) -> bool:
    spec = pvc.get("spec") or {}
    cls = spec.get("storageClassName")
    return cls == CLASS_NAME or cls is None


def persistent_volume(pvc: Obj, *, node_name: str, data_dir: Path, reclaim: str = "Delete") -> Obj:
    spec = pvc.get("spec") or {}
    storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage") or "1Gi"
    path = data_dir / f"{m.namespace(pvc)}_{m.name(pvc)}_{m.uid(pvc)}"
    return {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": f"pvc-{m.uid(pvc)}", "labels": {NODE_LABEL: node_name},
                     "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
        "spec": {"capacity": {"storage": storage}, "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
                 "persistentVolumeReclaimPolicy": reclaim, "storageClassName": CLASS_NAME,
                 "volumeMode": spec.get("volumeMode") or "Filesystem",
                 "hostPath": {"path": str(path), "type": "DirectoryOrCreate"},
                 "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                     {"key": "kubernetes.io/hostname", "operator": "In", "values": [node_name]}]}]}},
                 "claimRef": {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": m.namespace(pvc),
                              "name": m.name(pvc), "uid": m.uid(pvc)}}}


class LocalProvisioner:
    def __init__(self, client: RESTClient, *, node_name: str, data_dir: Path) -> None:
        self.client = client
        self.node_name = node_name
        self.data_dir = Path(data_dir)
        self.claims = Informer(client, PERSISTENT_VOLUME_CLAIMS, name="kubelet-pvcs")
        self.volumes = Informer(client, PERSISTENT_VOLUMES, name="kubelet-pvs")
        self._kick = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.claims.add_event_handler(on_add=lambda _o: self._kick.set(), on_update=lambda _o, _n: self._kick.set(),
                                      on_delete=lambda _o: self._kick.set())
        self.volumes.add_event_handler(on_add=lambda _o: self._kick.set(), on_update=lambda _o, _n: self._kick.set())
        self.claims.start()
        self.volumes.start()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="local-provisioner")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.claims.stop()
        await self.volumes.stop()

    async def _run(self) -> None:
        await self._ensure_class()
        await self.claims.wait_for_sync()
        await self.volumes.wait_for_sync()
        while True:
            self._kick.clear()
            try:
                await self.sync()
            except (StatusError, APIConnectionError) as exc:
                log.warning("local provisioner: %r", exc)
            except Exception:  # noqa: BLE001 - keep provisioning
                log.exception("local provisioner failed")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._kick.wait(), 30.0)

    async def _ensure_class(self) -> None:
        for attempt in range(30):
            try:
                await self.client.create(STORAGE_CLASSES, storage_class())
                return
            except StatusError as err:
                if err.code == 409:
                    return
                log.warning("cannot create StorageClass %s: %s", CLASS_NAME, err.message)
                return
            except APIConnectionError:
                await asyncio.sleep(min(10.0, 0.5 * (attempt + 1)))

    async def sync(self) -> None:
        for pvc in self.claims.list():
            phase = (pvc.get("status") or {}).get("phase")
            if phase in (None, "Pending") and wants_local(pvc) and not m.deletion_timestamp(pvc):
                await self.provision(pvc, self.node_name)
        await self.reclaim()

    async def provision(self, pvc: Obj, node_name: str) -> Obj | None:
        """Bind ``pvc`` to a new (or the already made) local PV; returns the PV, or None if not ours to make."""
        if not wants_local(pvc):
            return None
        async with self._lock:
            try:
                fresh = await self.client.get(PERSISTENT_VOLUME_CLAIMS, m.name(pvc), namespace=m.namespace(pvc))
            except StatusError as err:
                if err.code == 404:
                    return None
                raise
            bound = (fresh.get("spec") or {}).get("volumeName")
            if bound:
                try:
                    return await self.client.get(PERSISTENT_VOLUMES, bound)
                except StatusError as err:
                    if err.code == 404:
                        return None
                    raise
            pv = persistent_volume(fresh, node_name=node_name, data_dir=self.data_dir)
            try:
                pv = await self.client.create(PERSISTENT_VOLUMES, pv)
                Path(pv["spec"]["hostPath"]["path"]).mkdir(parents=True, exist_ok=True)
                log.info("provisioned %s for %s/%s", m.name(pv), m.namespace(fresh), m.name(fresh),
                         extra={"event": "provisioned", "pv": m.name(pv)})
            except StatusError as err:
                if err.code != 409:
                    raise
                pv = await self.client.get(PERSISTENT_VOLUMES, f"pvc-{m.uid(fresh)}")
            await self._bind(fresh, pv)
            return pv

    async def _bind(self, pvc: Obj, pv: Obj) -> None:
        ns, name = m.namespace(pvc), m.name(pvc)
        try:
            await self.client.patch(PERSISTENT_VOLUME_CLAIMS, name, {
                "metadata": {"annotations": {"pv.kubernetes.io/bind-completed": "yes",
                                             "pv.kubernetes.io/bound-by-controller": "yes",
                                             "volume.kubernetes.io/storage-provisioner": PROVISIONER}},
                "spec": {"volumeName": m.name(pv)}}, namespace=ns)
            await self.client.patch(PERSISTENT_VOLUME_CLAIMS, name, {"status": {
                "phase": "Bound", "accessModes": pv["spec"].get("accessModes"),
                "capacity": pv["spec"].get("capacity")}}, namespace=ns, subresource="status")
        except StatusError as err:
            if err.code != 404:
                raise
        try:
            await self.client.patch(PERSISTENT_VOLUMES, m.name(pv), {"status": {"phase": "Bound"}},
                                    subresource="status")
        except StatusError as err:  # the PV's phase is informational: the claim is bound either way
            log.warning("PV %s: phase not written: %s", m.name(pv), err.message)

    async def reclaim(self) -> None:
        """PVs of this node whose claim is gone: Released, then (reclaimPolicy Delete) removed with their data."""
        claims = {m.uid(c) for c in self.claims.list()}
        for pv in self.volumes.list():
            if (m.labels(pv).get(NODE_LABEL) != self.node_name
                    or m.annotations(pv).get("pv.kubernetes.io/provisioned-by") != PROVISIONER):
                continue
            ref = (pv.get("spec") or {}).get("claimRef") or {}
            if not ref.get("uid") or ref["uid"] in claims:
                continue
            # The claim may just not be in our cache yet: ask the API server before deleting data.
            try:
                current = await self.client.get(PERSISTENT_VOLUME_CLAIMS, ref.get("name", ""),
                                                namespace=ref.get("namespace", ""))
                if m.uid(current) == ref["uid"]:
                    continue
            except StatusError as err:
                if err.code != 404:
                    continue
            policy = (pv.get("spec") or {}).get("persistentVolumeReclaimPolicy") or "Delete"
            if policy != "Delete":
                if (pv.get("status") or {}).get("phase") != "Released":
                    with contextlib.suppress(StatusError):
                        await self.client.patch(PERSISTENT_VOLUMES, m.name(pv), {"status": {"phase": "Released"}},
                                                subresource="status")
                continue
            path = ((pv.get("spec") or {}).get("hostPath") or {}).get("path")
            if path and Path(path).resolve().is_relative_to(self.data_dir.resolve()):
                shutil.rmtree(path, ignore_errors=True)
            with contextlib.suppress(StatusError):
                await self.client.delete(PERSISTENT_VOLUMES, m.name(pv))
            log.info("deleted %s (claim %s/%s is gone)", m.name(pv), ref.get("namespace"), ref.get("name"),
                     extra={"event": "reclaimed", "pv": m.name(pv)})
