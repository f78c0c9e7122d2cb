"""DefaultStorageClass and DefaultIngressClass: a claim or an Ingress created without a class gets the default one.

As kube-apiserver's plugins of those names: on create only; a class given explicitly (even ``""``
for a claim) or through the legacy annotation is left alone; the default is the class annotated
``…/is-default-class: "true"``, the newest one when several are (then ties by name); with none,
nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..handlers import Operation
from .common import Lookups

Obj = dict[str, Any]


def newest_default(classes: list[Obj], annotations: tuple[str, ...]) -> str | None:
    """The name of the most recently created class marked default by any of ``annotations``."""
    defaults = [c for c in classes
                if any(((c.get("metadata") or {}).get("annotations") or {}).get(a) == "true" for a in annotations)]
    if not defaults:
        return None
    defaults.sort(key=lambda c: ((c.get("metadata") or {}).get("creationTimestamp") or "",
                                 (c.get("metadata") or {}).get("name") or ""))
    return str(defaults[-1]["metadata"]["name"])


@dataclass(frozen=True)
class _DefaultClass:
    """One defaulting rule: which objects, where their class lives, and which classes are default."""

    group: str
    plural: str
    class_group: str
    class_plural: str
    default_annotations: tuple[str, ...]
    legacy_annotation: str


_RULES = (
    _DefaultClass("", "persistentvolumeclaims", "storage.k8s.io", "storageclasses",
                  ("storageclass.kubernetes.io/is-default-class", "storageclass.beta.kubernetes.io/is-default-class"),
                  "volume.beta.kubernetes.io/storage-class"),
    _DefaultClass("networking.k8s.io", "ingresses", "networking.k8s.io", "ingressclasses",
                  ("ingressclass.kubernetes.io/is-default-class",), "kubernetes.io/ingress.class"),
)
_CLASS_FIELD = {"persistentvolumeclaims": "storageClassName", "ingresses": "ingressClassName"}


class DefaultClasses:
    """DefaultStorageClass and DefaultIngressClass in one plugin (they differ only in their rule)."""

    def __init__(self, *, lookups: Lookups) -> None:
        self.lookups = lookups

    async def admit(self, op: Operation) -> None:
        if op.verb != "create" or op.obj is None:
            return
        rt = op.info.rt
        rule = next((r for r in _RULES if r.group == rt.group and r.plural == rt.plural), None)
        if rule is None:
            return
        obj = op.obj
        spec = obj.setdefault("spec", {})
        field = _CLASS_FIELD[rule.plural]
        if spec.get(field) is not None or rule.legacy_annotation in ((obj.get("metadata") or {}).get("annotations") or {}):
            return
        classes_rt = self.lookups.registry.get(rule.class_group, "v1", rule.class_plural)
        if classes_rt is None:
            return
        name = newest_default(await self.lookups.list(classes_rt, ""), rule.default_annotations)
        if name is not None:
            spec[field] = name
