"""Choosing an endpoint for a new connection or request: round robin, ClientIP affinity, failure marks.

One ``Balancer`` per Service port. Its endpoint list is replaced in place when the
EndpointSlices change; connections already open keep their backend (nothing here touches them),
new ones see the new list at once.

* Round robin over the usable endpoints, skipping those the caller already tried for this
  connection (``exclude``) — a refused connect is retried on the next endpoint.
* An endpoint that refused a connection is marked failed for ``fail_timeout`` seconds and
  skipped while others are available (a passive health check, as nginx's ``max_fails``), so a
  killed replica costs one refused connect, not one per round.
* ``sessionAffinity: ClientIP``: a client address sticks to the endpoint it was given until it
  has been idle for ``timeoutSeconds`` or the endpoint disappears or fails; the table is bounded
  (least recently used entries go first).

Pure logic with an injectable clock, so it is unit-tested without sockets.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable

from .model import Endpoint, ServicePortKey

Addr = tuple[str, int]


class Balancer:
    def __init__(self, endpoints: Iterable[Endpoint] = (), *, affinity_timeout: float | None = None,
                 fail_timeout: float = 2.0, max_affinity: int = 65536,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.endpoints: tuple[Endpoint, ...] = tuple(endpoints)
        self.affinity_timeout = affinity_timeout
        self.fail_timeout = fail_timeout
        self.max_affinity = max_affinity
        self.clock = clock
        self._rr = 0
        self._down: dict[Addr, float] = {}  # addr -> until
        self._affinity: OrderedDict[str, tuple[Addr, float]] = OrderedDict()  # client ip -> (addr, last use)

    def __len__(self) -> int:
        return len(self.endpoints)

    def set_endpoints(self, endpoints: Iterable[Endpoint]) -> set[Addr]:
        """Replace the endpoint list; returns the addresses that are gone."""
        new = tuple(endpoints)
        old_addrs = {e.addr for e in self.endpoints}
        self.endpoints = new
        gone = old_addrs - {e.addr for e in new}
        for addr in gone:
            self._down.pop(addr, None)
        return gone

    def set_affinity(self, timeout: float | None) -> None:
        if timeout != self.affinity_timeout:
            self.affinity_timeout = timeout
            self._affinity.clear()

    def failed(self, ep: Endpoint) -> None:
        self._down[ep.addr] = self.clock() + self.fail_timeout

    def succeeded(self, ep: Endpoint) -> None:
        self._down.pop(ep.addr, None)

    def is_down(self, addr: Addr, now: float | None = None) -> bool:
        until = self._down.get(addr)
        return until is not None and until > (self.clock() if now is None else now)

    def pick(self, client_ip: str | None = None, exclude: Collection[Addr] = ()) -> Endpoint | None:
        """The endpoint for a new connection from ``client_ip``, or None when none is left to try."""
        candidates = [e for e in self.endpoints if e.addr not in exclude] if exclude else list(self.endpoints)
        if not candidates:
            return None
        now = self.clock()
        sticky = self.affinity_timeout is not None and bool(client_ip)
        if sticky:
            entry = self._affinity.get(client_ip)  # type: ignore[arg-type]
            if entry is not None and now - entry[1] <= self.affinity_timeout:  # type: ignore[operator]
                for e in candidates:
                    if e.addr == entry[0] and not self.is_down(e.addr, now):
                        self._remember(client_ip, e.addr, now)  # type: ignore[arg-type]
                        return e
        healthy = [e for e in candidates if not self.is_down(e.addr, now)] or candidates
        choice = healthy[self._rr % len(healthy)]
        self._rr = (self._rr + 1) % (1 << 30)
        if sticky:
            self._remember(client_ip, choice.addr, now)  # type: ignore[arg-type]
        return choice

    def _remember(self, client_ip: str, addr: Addr, now: float) -> None:
        self._affinity[client_ip] = (addr, now)
        self._affinity.move_to_end(client_ip)
        while len(self._affinity) > self.max_affinity:
            self._affinity.popitem(last=False)


class Balancers:
    """The balancers of every Service port in use, refreshed from a lookup when endpoints change."""

    def __init__(self, lookup: Callable[[ServicePortKey], tuple[tuple[Endpoint, ...], float | None]], *,
                 fail_timeout: float = 2.0) -> None:
        self.lookup = lookup
        self.fail_timeout = fail_timeout
        self._by_key: dict[ServicePortKey, Balancer] = {}
        self.on_endpoints_gone: list[Callable[[ServicePortKey, set[Addr]], None]] = []

    def get(self, key: ServicePortKey) -> Balancer:
        bal = self._by_key.get(key)
        if bal is None:
            eps, timeout = self.lookup(key)
            bal = self._by_key[key] = Balancer(eps, affinity_timeout=timeout, fail_timeout=self.fail_timeout)
        return bal

    def keys(self) -> list[ServicePortKey]:
        return list(self._by_key)

    def refresh(self, service_key: str) -> None:
        """Re-read the endpoints of every port of ``namespace/name`` that has a balancer."""
        for key, bal in list(self._by_key.items()):
            if key.service_key != service_key:
                continue
            eps, timeout = self.lookup(key)
            bal.set_affinity(timeout)
            gone = bal.set_endpoints(eps)
            if gone:
                for fn in self.on_endpoints_gone:
                    fn(key, gone)

    def retain(self, keys: Collection[ServicePortKey]) -> None:
        """Forget balancers of ports no longer in use."""
        for key in [k for k in self._by_key if k not in keys]:
            del self._by_key[key]

    def endpoint_count(self) -> int:
        return sum(len(b) for b in self._by_key.values())
