"""Per-namespace defaults: the ``default`` ServiceAccount, and the ``kube-root-ca.crt`` ConfigMap.

* ServiceAccount controller: every active namespace has a ServiceAccount ``default`` (pods run as it
  unless they name another); deleted, it is created again.
* Root CA publisher: every active namespace has a ConfigMap ``kube-root-ca.crt`` whose ``ca.crt`` is
  the cluster CA (from the kubeconfig's certificate-authority-data), so a pod can verify the API
  server; the projected service-account volume mounts it. Edited or deleted, it is put back.

Both key their queue by namespace and leave terminating namespaces alone (the API server would
refuse the create anyway, and the namespace controller is emptying them).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from apimachinery import meta as m
from apimachinery.errors import StatusError
from apiclient.rest import CONFIGMAPS, NAMESPACES, Resource, resource

from .context import BaseController, ControllerContext

log = logging.getLogger("controllers.serviceaccount")

Obj = dict[str, Any]
SERVICE_ACCOUNTS = resource("serviceaccounts")
DEFAULT_SA = "default"
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
ROOT_CA_DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
                       "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
                       "guaranteed across distributions of Kubernetes clusters.")


class _PerNamespace(BaseController):
    """Keeps one named object in every active namespace (the queue key is the namespace)."""

    object_name: ClassVar[str] = ""
    object_resource: ClassVar[Resource]
    owned_fields: ClassVar[tuple[str, ...]] = ()  # top-level fields this controller dictates

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.namespaces = ctx.informer(NAMESPACES)
        self.objects = ctx.informer(self.object_resource, field_selector=f"metadata.name={self.object_name}")
        self.on(self.namespaces, add=self._ns, update=lambda _o, n: self._ns(n))
        self.on(self.objects, add=self._obj, update=lambda _o, n: self._obj(n), delete=self._obj)

    def _ns(self, ns: Obj) -> None:
        self.queue.add(m.name(ns))

    def _obj(self, obj: Obj) -> None:
        if m.name(obj) == self.object_name:
            self.queue.add(m.namespace(obj))

    def desired(self, namespace: str) -> Obj:  # pragma: no cover - abstract
        raise NotImplementedError

    def needs_update(self, current: Obj, desired: Obj) -> bool:
        return False

    async def sync(self, key: str) -> None:
        ns = self.namespaces.get(key)
        if ns is None or m.deletion_timestamp(ns) or (ns.get("status") or {}).get("phase") == "Terminating":
            return
        want = self.desired(key)
        current = self.objects.get_by_name(key, self.object_name)
        try:
            if current is None:
                await self.client.create(self.object_resource, want, namespace=key)
            elif self.needs_update(current, want):
                body = {k: v for k, v in current.items() if k not in self.owned_fields}
                body.update({k: want[k] for k in self.owned_fields if k in want})
                meta = dict(current.get("metadata") or {})
                meta["annotations"] = {**(meta.get("annotations") or {}),
                                       **((want.get("metadata") or {}).get("annotations") or {})}
                body["metadata"] = meta
                await self.client.update(self.object_resource, body, namespace=key)
        except StatusError as err:
            if err.code == 409 and current is None:
                return  # created meanwhile (our cache was behind): the informer brings it
            if err.code == 403 and "being terminated" in err.message:
                return
            if err.code == 404:
                return  # the namespace went away
            raise


class ServiceAccountController(_PerNamespace):
    name: ClassVar[str] = "serviceaccount"
    object_name: ClassVar[str] = DEFAULT_SA
    object_resource: ClassVar[Resource] = SERVICE_ACCOUNTS

    def desired(self, namespace: str) -> Obj:
        return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": DEFAULT_SA, "namespace": namespace}}


class RootCAPublisher(_PerNamespace):
    name: ClassVar[str] = "root-ca-cert-publisher"
    object_name: ClassVar[str] = ROOT_CA_CONFIGMAP
    object_resource: ClassVar[Resource] = CONFIGMAPS
    owned_fields: ClassVar[tuple[str, ...]] = ("data", "binaryData")

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.ca = (ctx.ca_data or b"").decode()
        if not self.ca:
            log.warning("no certificate-authority-data in the kubeconfig: kube-root-ca.crt will be empty")

    def desired(self, namespace: str) -> Obj:
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": ROOT_CA_CONFIGMAP, "namespace": namespace,
                             "annotations": {"kubernetes.io/description": ROOT_CA_DESCRIPTION}},
                "data": {"ca.crt": self.ca}}

    def needs_update(self, current: Obj, desired: Obj) -> bool:
        return (current.get("data") or {}) != desired["data"] or bool(current.get("binaryData"))
