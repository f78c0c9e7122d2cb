"""Container restart backoff (CrashLoopBackOff), with the kubelet's semantics (pure; the clock is passed in).

The first restart after a crash is immediate; every restart then sets the key's backoff to
``base`` (first) or twice the previous (capped at ``cap``): 10 s, 20 s, 40 s ... 5 min. A container
that exits while ``now - finishedAt`` is inside the backoff waits (state ``waiting``, reason
``CrashLoopBackOff``) until the backoff has passed since it finished. A container that ran for
``reset_after`` (10 min) before it exited starts over at ``base``; so does a key not restarted for
twice the cap (upstream's garbage collection of backoff entries).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class _Entry:
    duration: float
    updated: float


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration.String`` for whole seconds: 10s, 1m20s, 5m0s."""
    total = int(round(seconds))
    if total < 60:
        return f"{total}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m{secs}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes}m{secs}s"


class Backoff:
    def __init__(self, base: float = 10.0, cap: float = 300.0, reset_after: float = 600.0) -> None:
        self.base = base
        self.cap = cap
        self.reset_after = reset_after
        self._entries: dict[tuple[str, str], _Entry] = {}

    def remaining(self, key: tuple[str, str], *, started_at: float, finished_at: float, now: float) -> float:
        """Seconds left before the container may restart (0: restart now)."""
        entry = self._entries.get(key)
        if entry is None:
            return 0.0
        if finished_at - started_at >= self.reset_after or now - entry.updated > 2 * self.cap:
            del self._entries[key]
            return 0.0
        return max(0.0, entry.duration - (now - finished_at))

    def current(self, key: tuple[str, str]) -> float:
        entry = self._entries.get(key)
        return entry.duration if entry is not None else 0.0

    def next(self, key: tuple[str, str], *, now: float) -> float:
        """Record a restart; returns the backoff the next crash will wait."""
        entry = self._entries.get(key)
        if entry is None or now - entry.updated > 2 * self.cap:
            entry = _Entry(self.base, now)
        else:
            entry = _Entry(min(entry.duration * 2, self.cap), now)
        self._entries[key] = entry
        return entry.duration

    def forget_pod(self, pod_uid: str) -> None:
        for key in [k for k in self._entries if k[0] == pod_uid]:
            del self._entries[key]
