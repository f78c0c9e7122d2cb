"""Service ClusterIP and NodePort allocation that never hands a value out twice.

Each allocated value is a key in the store created with ``create_revision == 0``, so two API
server replicas racing for the same IP or port cannot both win; the loser picks another. The key
holds the owning Service's storage key, and is deleted when the Service is.

The first address of the range belongs to the ``default/kubernetes`` Service (``first_ip_owner``,
see ``kubernetes_service.py``): random allocation never picks it, and a request for it by any other
Service is refused even in the moment between that Service's deletion and its re-creation.
"""

from __future__ import annotations

import base64
import ipaddress
import random

from apimachinery import errors
from apimachinery.validation import FieldError
from kvstore.client import Compare, EtcdClient, Op

IP_PREFIX = b"/registry/ipallocations/"
PORT_PREFIX = b"/registry/nodeportallocations/"


class Allocator:
    def __init__(self, client: EtcdClient, *, cidr: str, node_ports: tuple[int, int] = (30000, 32767),
                 first_ip_owner: bytes = b"") -> None:
        self.client = client
        self.first_ip_owner = first_ip_owner
        self.network = ipaddress.ip_network(cidr, strict=False)
        self.node_ports = node_ports
        self._rnd = random.Random()

    @property
    def first_ip(self) -> str:
        """The address reserved for the ``kubernetes`` Service."""
        return str(self.network.network_address + 1)

    def contains(self, ip: str) -> bool:
        try:
            return ipaddress.ip_address(ip) in self.network
        except ValueError:
            return False

    async def _claim(self, key: bytes, owner: bytes) -> bool:
        result = await self.client.txn([Compare.create_revision(key, "=", 0)], [Op.put(key, owner)],
                                       [Op.get(key)])
        if result.succeeded:
            return True
        # Claimed before: ours if it names the same owner (an idempotent retry).
        kvs = result.responses[0].get("response_range", {}).get("kvs", []) if result.responses else []
        return bool(kvs) and base64.b64decode(kvs[0].get("value", "")) == owner

    async def allocate_ip(self, owner: bytes, requested: str | None = None, *, name: str = "") -> str:
        """A free ClusterIP, or ``requested``; refusals are the Service's 422 on ``spec.clusterIPs``."""
        if requested:
            def refuse(detail: str) -> errors.StatusError:
                return _invalid_service(name, "spec.clusterIPs", requested,
                                        f"failed to allocate IP {requested}: {detail}")

            if not self.contains(requested):
                raise refuse(f"the provided IP ({requested}) is not in the valid range. "
                             f"The range of valid IPs is {self.network}")
            if self.first_ip_owner and requested == self.first_ip and owner != self.first_ip_owner:
                raise refuse("provided IP is reserved for the kubernetes Service")
            if not await self._claim(IP_PREFIX + requested.encode(), owner):
                raise refuse("provided IP is already allocated")
            return requested
        size = self.network.num_addresses
        for _ in range(64):
            offset = self._rnd.randrange(2, max(size - 1, 3))
            ip = str(self.network.network_address + offset)
            if await self._claim(IP_PREFIX + ip.encode(), owner):
                return ip
        raise errors.internal_error("no free ClusterIP found in the service range")

    async def allocate_port(self, owner: bytes, requested: int | None = None, *, name: str = "",
                            index: int = 0) -> int:
        """A free NodePort, or ``requested``; refusals are 422 on ``spec.ports[index].nodePort``."""
        low, high = self.node_ports
        if requested:
            field = f"spec.ports[{index}].nodePort"
            if not low <= requested <= high:
                raise _invalid_service(name, field, requested, "provided port is not in the valid range. "
                                                               f"The range of valid ports is {low}-{high}")
            if not await self._claim(PORT_PREFIX + str(requested).encode(), owner):
                raise _invalid_service(name, field, requested, "provided port is already allocated")
            return requested
        for _ in range(64):
            port = self._rnd.randint(low, high)
            if await self._claim(PORT_PREFIX + str(port).encode(), owner):
                return port
        raise errors.internal_error("no free NodePort found")

    async def release_ip(self, ip: str) -> None:
        await self.client.delete_range(IP_PREFIX + ip.encode())

    async def release_port(self, port: int) -> None:
        await self.client.delete_range(PORT_PREFIX + str(port).encode())


def _invalid_service(name: str, field: str, value: object, detail: str) -> errors.StatusError:
    """``Service "web" is invalid: <field>: Invalid value: <value>: <detail>``, as upstream."""
    return errors.invalid(kind="Service", name=name, causes=[FieldError.invalid(field, value, detail)])
