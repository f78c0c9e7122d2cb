"""Admission: plugins that see every write after authorization and before storage, in order.

Mutating and validating plugins share one interface (``admit``); a plugin rejects a write by
raising a StatusError. The security work adds ServiceAccount, LimitRanger, ResourceQuota,
PodSecurity, image policy and webhooks to this chain.
"""

from __future__ import annotations

from typing import Protocol

from apimachinery import errors
from apimachinery.errors import StatusError

from .handlers import Operation
from .storage import Storage


class AdmissionPlugin(Protocol):
    async def admit(self, op: Operation) -> None: ...


class AdmissionChain:
    def __init__(self, plugins: list[AdmissionPlugin]) -> None:
        self.plugins = plugins

    async def __call__(self, op: Operation) -> None:
        for plugin in self.plugins:
            await plugin.admit(op)


class NamespaceLifecycle:
    """No objects in a namespace that does not exist or is being deleted."""

    EXEMPT = {("", "events"), ("events.k8s.io", "events")}

    def __init__(self, storage: Storage, namespaces_type) -> None:  # type: ignore[no-untyped-def]
        self.storage = storage
        self.namespaces = namespaces_type

    async def admit(self, op: Operation) -> None:
        rt = op.info.rt
        if op.verb != "create" or not rt.namespaced:
            return
        ns = op.info.namespace
        try:
            namespace = await self.storage.get(self.namespaces, "", ns)
        except StatusError as err:
            if err.code == 404:
                raise errors.not_found(resource="namespaces", name=ns) from None
            raise
        if (namespace.get("metadata") or {}).get("deletionTimestamp") and (rt.group, rt.plural) not in self.EXEMPT:
            raise errors.StatusError(
                code=403, reason="Forbidden",
                message=f"{rt.plural} \"{(op.obj or {}).get('metadata', {}).get('name', '')}\" is forbidden: "
                        f"unable to create new content in namespace {ns} because it is being terminated",
                details=errors.StatusDetails(name=(op.obj or {}).get("metadata", {}).get("name", ""),
                                             group=rt.group, kind=rt.plural))
