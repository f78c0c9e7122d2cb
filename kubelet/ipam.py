"""Pod IP addresses: one per pod from the node's pod CIDR, chosen deterministically from the pod's uid.

Process runtime (``DESIGN.md``: every pod has its own loopback address): node *i* owns the /16
``127.<i>.0.0/16`` (``127.0.0.0/16`` stays for the control plane: API servers on 127.0.0.1, node
IPs like 127.0.0.2). The index comes from ``--pod-cidr`` if given, else from the Node's
``spec.podCIDR`` if it was registered before, else ``1 + crc32(node name) % 254``, moved to the next
free index if another Node already holds that /16. It is written to ``spec.podCIDR`` of the Node.

Inside the /16 a pod's address starts at ``sha256(uid)`` modulo the usable range and probes forward
to the first free one, skipping ``.0``/``.255`` last octets and ``127.<i>.0.1`` (kept for the node),
so a pod keeps the same address across kubelet restarts (it is also persisted in the sandbox).

Fake nodes (nothing listens on their pods' addresses) take /24s of ``10.64.0.0/10`` instead:
fake node *k* gets ``10.(64 + k // 256).(k % 256).0/24``, enough for 16k nodes of 253 pods.
"""

from __future__ import annotations

import hashlib
import ipaddress
import zlib
from collections.abc import Iterable


class IPAMExhausted(Exception):
    pass


class IPAM:
    def __init__(self, cidr: str) -> None:
        self.network = ipaddress.ip_network(cidr, strict=False)
        if self.network.version != 4:
            raise ValueError("only IPv4 pod CIDRs are supported")
        self._base = int(self.network.network_address)
        self._size = self.network.num_addresses
        self._by_pod: dict[str, str] = {}
        self._used: set[str] = set()
        self.reserved = {str(self.network.network_address + 1)} if self._size > 4 else set()

    @property
    def cidr(self) -> str:
        return str(self.network)

    def _usable(self, addr: int) -> bool:
        last = addr & 0xFF
        return 0 < last < 255

    def allocate(self, pod_uid: str) -> str:
        if pod_uid in self._by_pod:
            return self._by_pod[pod_uid]
        start = int.from_bytes(hashlib.sha256(pod_uid.encode()).digest()[:8], "big") % self._size
        for step in range(self._size):
            addr = self._base + (start + step) % self._size
            if not self._usable(addr):
                continue
            ip = str(ipaddress.IPv4Address(addr))
            if ip in self._used or ip in self.reserved:
                continue
            self._used.add(ip)
            self._by_pod[pod_uid] = ip
            return ip
        raise IPAMExhausted(f"no free address in {self.network}")

    def restore(self, pod_uid: str, ip: str) -> None:
        self._by_pod[pod_uid] = ip
        self._used.add(ip)

    def release(self, pod_uid: str) -> None:
        ip = self._by_pod.pop(pod_uid, None)
        if ip is not None:
            self._used.discard(ip)

    def __len__(self) -> int:
        return len(self._by_pod)


def loopback_cidr(index: int) -> str:
    if not 1 <= index <= 255:
        raise ValueError("a loopback pod CIDR index is 1..255")
    return f"127.{index}.0.0/16"


def loopback_index(cidr: str) -> int | None:
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None
    if net.prefixlen == 16 and str(net).startswith("127."):
        return int(str(net).split(".")[1])
    return None


def choose_loopback_index(node_name: str, taken: Iterable[str]) -> int:
    """The /16 index for a node: its name's hash, moved past indexes other Nodes' podCIDRs hold."""
    used = {i for i in (loopback_index(c) for c in taken) if i is not None}
    start = zlib.crc32(node_name.encode()) % 254
    for step in range(255):
        index = 1 + (start + step) % 255
        if index not in used:
            return index
    raise IPAMExhausted("all 255 loopback /16s are taken")


def fake_cidr(k: int) -> str:
    if not 0 <= k < 64 * 256:
        raise ValueError("fake node index out of range")
    return f"10.{64 + k // 256}.{k % 256}.0/24"
