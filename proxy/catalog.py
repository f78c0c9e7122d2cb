"""Services and their EndpointSlices, watched from the API server: what proxy, DNS and ingress know.

Two informers (list + watch, relist on 410, see ``apiclient.informer``); slices are indexed by
the Service they belong to (label ``kubernetes.io/service-name``). Consumers register callbacks
for "this Service changed" and "this Service's endpoints changed"; both are called on the event
loop right after the watch event, so an endpoint change reaches a balancer as soon as the API
server sends it (well under the 1 s the issue asks for).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from apiclient.informer import INDEX_NAMESPACE, Informer, namespace_index
from apiclient.rest import SERVICES, RESTClient, resource
from apimachinery import meta as m

from .model import (Endpoint, ServicePortKey, affinity_timeout, cluster_ips, service_key_of_slice, slice_endpoints,
                    usable_endpoints)

ENDPOINT_SLICES = resource("endpointslices", "discovery.k8s.io", "v1")
INDEX_SERVICE = "service"
INDEX_CLUSTER_IP = "clusterIP"
INDEX_ADDRESS = "address"

Obj = dict[str, Any]


def _slice_service_index(obj: Obj) -> list[str]:
    key = service_key_of_slice(obj)
    return [key] if key else []


def _slice_addresses(obj: Obj) -> list[str]:
    return sorted({str(ip) for ep in obj.get("endpoints") or [] for ip in ep.get("addresses") or []})


class ServiceCatalog:
    def __init__(self, client: RESTClient) -> None:
        self.client = client
        self.services = Informer(client, SERVICES, name="services",
                                 indexers={INDEX_NAMESPACE: namespace_index,
                                           INDEX_CLUSTER_IP: lambda svc: list(cluster_ips(svc))})
        self.slices = Informer(client, ENDPOINT_SLICES, name="endpointslices",
                               indexers={INDEX_SERVICE: _slice_service_index, INDEX_ADDRESS: _slice_addresses})
        self.on_service: list[Callable[[str], None]] = []  # called with "namespace/name"
        self.on_endpoints: list[Callable[[str], None]] = []
        self.services.add_event_handler(on_add=self._svc, on_update=lambda _o, n: self._svc(n), on_delete=self._svc)
        self.slices.add_event_handler(on_add=self._slice, on_update=self._slice_update, on_delete=self._slice)

    # ------------------------------------------------------------------ events

    def _svc(self, obj: Obj) -> None:
        key = m.object_key(obj)
        for fn in self.on_service:
            fn(key)

    def _slice(self, obj: Obj) -> None:
        key = service_key_of_slice(obj)
        if key:
            for fn in self.on_endpoints:
                fn(key)

    def _slice_update(self, old: Obj, new: Obj) -> None:
        before, after = service_key_of_slice(old), service_key_of_slice(new)
        if before and before != after:
            self._slice(old)  # the slice moved to another Service (label edited)
        self._slice(new)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.services.start()
        self.slices.start()

    async def stop(self) -> None:
        await asyncio.gather(self.services.stop(), self.slices.stop())

    async def wait_for_sync(self, timeout: float | None = None) -> bool:
        results = await asyncio.gather(self.services.wait_for_sync(timeout), self.slices.wait_for_sync(timeout))
        return all(results)

    @property
    def synced(self) -> bool:
        return self.services.has_synced and self.slices.has_synced

    # ------------------------------------------------------------------ queries

    def service(self, key: str) -> Obj | None:
        return self.services.get(key)

    def all_services(self) -> list[Obj]:
        return self.services.list()

    def namespace_has_services(self, namespace: str) -> bool:
        return bool(self.services.by_index(INDEX_NAMESPACE, namespace))

    def slices_of(self, service_key: str) -> list[Obj]:
        return self.slices.by_index(INDEX_SERVICE, service_key)

    def services_with_ip(self, ip: str) -> list[Obj]:
        """Services whose ClusterIP is ``ip`` (reverse DNS)."""
        return self.services.by_index(INDEX_CLUSTER_IP, ip)

    def slices_with_address(self, ip: str) -> list[Obj]:
        """EndpointSlices listing ``ip`` as an endpoint address (reverse DNS)."""
        return self.slices.by_index(INDEX_ADDRESS, ip)

    def endpoints(self, key: ServicePortKey) -> list[Endpoint]:
        return slice_endpoints(self.slices_of(key.service_key), key.port_name, key.protocol)

    def balancer_lookup(self, key: ServicePortKey) -> tuple[tuple[Endpoint, ...], float | None]:
        """Usable endpoints and the ClientIP affinity timeout of a Service port (``Balancers``' lookup)."""
        svc = self.service(key.service_key)
        return usable_endpoints(self.endpoints(key)), (affinity_timeout(svc) if svc else None)
