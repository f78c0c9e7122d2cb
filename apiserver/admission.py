"""Admission: plugins that see every write after authorization and before storage, in order.

Mutating and validating plugins share one interface (``admit``); a plugin rejects a write by
raising a StatusError. NamespaceLifecycle lives here; the rest of the chain (LimitRanger,
ServiceAccount, PodSecurity, image policy, webhooks, ResourceQuota) is in ``admission_plugins``.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from apimachinery import errors
from apimachinery.errors import StatusError
from apimachinery.registry import ResourceType

from .handlers import Operation
from .storage import Storage

log = logging.getLogger(__name__)


class AdmissionPlugin(Protocol):
    async def admit(self, op: Operation) -> None: ...


class AdmissionChain:
    """Runs the plugins in order. Plugins may also have:

    * ``async committed(rt, old, new)``: told after an update or delete (``new`` None) was stored;
      errors there are logged, never returned (the write already happened);
    * ``async close()``: release clients (webhook HTTP sessions) at shutdown.

    When a plugin refuses a write, the side effects earlier plugins registered on
    ``op.rollbacks`` are undone before the refusal goes back to the client.
    """

    def __init__(self, plugins: list[AdmissionPlugin]) -> None:
        self.plugins = plugins

    async def __call__(self, op: Operation) -> None:
        try:
            for plugin in self.plugins:
                await plugin.admit(op)
        except BaseException as exc:
            await op.rollback(exc)
            raise

    async def committed(self, rt: ResourceType, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        for plugin in self.plugins:
            hook = getattr(plugin, "committed", None)
            if hook is None:
                continue
            try:
                await hook(rt, old, new)
            except Exception:  # noqa: BLE001 - bookkeeping only; the write stands
                log.exception("admission plugin %s failed after a committed write", type(plugin).__name__)

    async def close(self) -> None:
        for plugin in self.plugins:
            close = getattr(plugin, "close", None)
            if close is not None:
                await close()


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
        op.memo[f"namespace/{ns}"] = namespace  # PodSecurity and the image policy read its labels too
        if (namespace.get("metadata") or {}).get("deletionTimestamp") and (rt.group, rt.plural) not in self.EXEMPT:
            raise errors.StatusError(
                code=403, reason="Forbidden",
                message=f"{rt.plural} \"{(op.obj or {}).get('metadata', {}).get('name', '')}\" is forbidden: "
                        f"unable to create new content in namespace {ns} because it is being terminated",
                details=errors.StatusDetails(name=(op.obj or {}).get("metadata", {}).get("name", ""),
                                             group=rt.group, kind=rt.plural))
