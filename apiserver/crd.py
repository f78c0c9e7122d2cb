"""CustomResourceDefinitions: serve new resource types while the server runs.

Every API server replica watches CRDs through its watch cache and (re)registers each served
version as a ``ResourceType`` — routing, discovery, OpenAPI and storage then treat it like a
built-in. Custom objects are validated, defaulted and pruned with the version's structural schema
(apimachinery/schema.py). Versions share one storage location (conversion strategy None: only
``apiVersion`` differs). Deleting a CRD deletes its objects.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from apimachinery import schema as structural
from apimachinery.registry import ALL_VERBS, Registry, ResourceType, Subresource
from apimachinery.validation import FieldError, Path
from kvstore.client import EtcdClient, prefix_end

from .storage import Storage, resource_prefix
from .strategy import Strategy
from .watchcache import Event, ResourceCache

log = logging.getLogger(__name__)
CRD_GROUP = "apiextensions.k8s.io"


def resource_types(crd: dict[str, Any]) -> list[tuple[ResourceType, dict[str, Any]]]:
    """One ResourceType per served version, with that version's spec."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    out = []
    for version in spec.get("versions") or []:
        if not version.get("served", True):
            continue
        subs = []
        sub_spec = version.get("subresources") or {}
        if "status" in sub_spec:
            subs.append(Subresource("status", names.get("kind", "")))
        if "scale" in sub_spec:
            subs.append(Subresource("scale", "Scale", group="autoscaling", version="v1"))
        rt = ResourceType(
            group=spec.get("group", ""), version=version.get("name", ""), kind=names.get("kind", ""),
            plural=names.get("plural", ""), singular=names.get("singular") or names.get("kind", "").lower(),
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            short_names=tuple(names.get("shortNames") or ()), categories=tuple(names.get("categories") or ()),
            verbs=ALL_VERBS, subresources=tuple(subs), virtual=False, has_spec_generation=True,
            status_subresource="status" in sub_spec)
        out.append((rt, version))
    return out


def validate_crd(crd: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
    errs: list[FieldError] = []
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group", "")
    name = (crd.get("metadata") or {}).get("name", "")
    if not group:
        errs.append(FieldError.required(Path.of("spec", "group"), ""))
    for field in ("plural", "kind"):
        if not names.get(field):
            errs.append(FieldError.required(Path.of("spec", "names", field), ""))
    if names.get("plural") and group and name != f"{names['plural']}.{group}":
        errs.append(FieldError.invalid(Path.of("metadata", "name"), name,
                                       "must be spec.names.plural+\".\"+spec.group"))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        errs.append(FieldError.not_supported(Path.of("spec", "scope"), spec.get("scope"), ["Cluster", "Namespaced"]))
    versions = spec.get("versions") or []
    if not versions:
        errs.append(FieldError.required(Path.of("spec", "versions"), "must have exactly one version marked as storage version"))
    elif sum(1 for v in versions if v.get("storage")) != 1:
        errs.append(FieldError.invalid(Path.of("spec", "versions"), [v.get("name") for v in versions],
                                       "must have exactly one version marked as storage version"))
    for i, v in enumerate(versions):
        schema = (v.get("schema") or {}).get("openAPIV3Schema")
        if not isinstance(schema, dict):
            errs.append(FieldError.required(Path.of("spec", "versions").index(i).child("schema", "openAPIV3Schema"),
                                            "schemas are required"))
    if old is not None:
        if (old.get("spec") or {}).get("group") != group:
            errs.append(FieldError.invalid(Path.of("spec", "group"), group, "field is immutable"))
        if (old.get("spec") or {}).get("scope") != spec.get("scope"):
            errs.append(FieldError.invalid(Path.of("spec", "scope"), spec.get("scope"), "field is immutable"))
    return errs


def established_status(crd: dict[str, Any], now: str) -> dict[str, Any]:
    names = (crd.get("spec") or {}).get("names") or {}
    accepted = {k: v for k, v in names.items() if k in ("plural", "singular", "shortNames", "kind", "listKind", "categories")}
    accepted.setdefault("listKind", f"{names.get('kind', '')}List")
    accepted.setdefault("singular", names.get("kind", "").lower())
    cond = lambda t, r, m: {"type": t, "status": "True", "lastTransitionTime": now, "reason": r, "message": m}  # noqa: E731
    return {"acceptedNames": accepted,
            "conditions": [cond("NamesAccepted", "NoConflicts", "no conflicts found"),
                           cond("Established", "InitialNamesAccepted", "the initial names have been accepted")],
            "storedVersions": [v.get("name") for v in (crd.get("spec") or {}).get("versions") or [] if v.get("storage")]}


class CustomResourceStrategy(Strategy):
    """Built-in rules plus the version's structural schema: prune, default, validate."""

    def __init__(self, rt: ResourceType, version: dict[str, Any]) -> None:
        super().__init__(rt)
        self.schema = ((version.get("schema") or {}).get("openAPIV3Schema")) or {}

    def _shape(self, obj: dict[str, Any]) -> None:
        structural.prune(self.schema, obj)
        structural.apply_defaults(self.schema, obj)

    def prepare_create(self, obj: dict[str, Any]) -> None:
        super().prepare_create(obj)
        self._shape(obj)

    def prepare_update(self, new: dict[str, Any], old: dict[str, Any]) -> None:
        super().prepare_update(new, old)
        self._shape(new)

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
        errs = super().validate(obj, old)
        body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
        props = dict(self.schema.get("properties") or {})
        for key in ("apiVersion", "kind", "metadata"):
            props.pop(key, None)
        errs.extend(structural.validate({**self.schema, "properties": props,
                                         "required": [r for r in self.schema.get("required") or []
                                                      if r not in ("apiVersion", "kind", "metadata")]}, body))
        return errs


class CRDStrategy(Strategy):
    """The CustomResourceDefinition objects themselves: validated, and Established on create."""

    def prepare_create(self, obj: dict[str, Any]) -> None:
        super().prepare_create(obj)
        from apimachinery.meta import now_rfc3339

        obj["status"] = established_status(obj, now_rfc3339())

    def prepare_update(self, new: dict[str, Any], old: dict[str, Any]) -> None:
        super().prepare_update(new, old)
        from apimachinery.meta import now_rfc3339

        new["status"] = established_status(new, now_rfc3339())

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
        return super().validate(obj, old) + validate_crd(obj, old)


class CRDManager:
    """Keeps the registry, caches and strategies in step with the CRDs in the store."""

    def __init__(self, *, registry: Registry, storage: Storage, client: EtcdClient,
                 caches: dict[tuple[str, str], ResourceCache]) -> None:
        self.registry = registry
        self.storage = storage
        self.client = client
        self.caches = caches
        self.versions: dict[tuple[str, str, str], dict[str, Any]] = {}  # (group, version, plural) -> version spec
        self._served: dict[str, list[ResourceType]] = {}  # CRD name -> its registered types
        self._known: dict[str, dict[str, Any]] = {}  # CRD name -> the CRD as last seen
        self._task: asyncio.Task[None] | None = None

    def strategy(self, rt: ResourceType) -> Strategy | None:
        version = self.versions.get((rt.group, rt.version, rt.plural))
        return CustomResourceStrategy(rt, version) if version is not None else None

    def schema(self, rt: ResourceType) -> dict[str, Any] | None:
        version = self.versions.get((rt.group, rt.version, rt.plural))
        if version is None:
            return None
        return (version.get("schema") or {}).get("openAPIV3Schema")

    def printer_columns(self, rt: ResourceType) -> list[dict[str, Any]] | None:
        version = self.versions.get((rt.group, rt.version, rt.plural))
        if version is None:
            return None
        return list(version.get("additionalPrinterColumns") or [])

    def start(self, crd_cache: ResourceCache) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(crd_cache), name="crd-manager")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self, cache: ResourceCache) -> None:
        await cache.ready.wait()
        watcher, initial = cache.watch("", lambda o: True, None)
        try:
            await self._resync(initial)
            while True:
                ev = await watcher.queue.get()
                if ev is None:  # the cache dropped us (it relisted): start over from its current state
                    watcher, initial = cache.watch("", lambda o: True, None)
                    await self._resync(initial)
                    continue
                self._apply(ev.type, ev.object)
                if ev.type == "DELETED":
                    await self._delete_objects(ev.object)
        finally:
            cache.unwatch(watcher)

    async def _resync(self, current: list[Event]) -> None:
        """Serve the CRDs of a fresh listing, and retire those it no longer has (deleted unseen)."""
        present = {(e.object.get("metadata") or {}).get("name", "") for e in current}
        for name in [n for n in self._known if n not in present]:
            gone = self._known[name]
            self._apply("DELETED", gone)
            await self._delete_objects(gone)
        for ev in current:
            self._apply(ev.type, ev.object)

    def _apply(self, kind: str, crd: dict[str, Any]) -> None:
        name = (crd.get("metadata") or {}).get("name", "")
        for rt in self._served.pop(name, []):
            self.registry.remove(rt.group, rt.version, rt.plural)
            self.versions.pop((rt.group, rt.version, rt.plural), None)
        if kind == "DELETED":
            self._known.pop(name, None)
            return
        self._known[name] = crd
        if (crd.get("metadata") or {}).get("deletionTimestamp"):
            return
        served = []
        for rt, version in resource_types(crd):
            self.registry.add(rt)
            self.versions[(rt.group, rt.version, rt.plural)] = version
            served.append(rt)
            if (rt.group, rt.plural) not in self.caches:
                cache = ResourceCache(rt, self.storage, self.client)
                self.caches[(rt.group, rt.plural)] = cache
                cache.start()
        self._served[name] = served
        log.info("serving custom resource %s (%s)", name, ", ".join(rt.version for rt in served))

    async def _delete_objects(self, crd: dict[str, Any]) -> None:
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        group, plural = spec.get("group", ""), names.get("plural", "")
        if not group or not plural:
            return
        cache = self.caches.pop((group, plural), None)
        if cache is not None:
            await cache.stop()
        probe = ResourceType(group, "v1", names.get("kind", ""), plural, plural, True)
        prefix = resource_prefix(probe)
        try:
            await self.client.delete_range(prefix, prefix_end(prefix))
        except Exception:  # noqa: BLE001 - another replica may have done it; log and go on
            log.exception("deleting the objects of CRD %s.%s failed", plural, group)
