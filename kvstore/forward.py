"""A follower's writes reach the leader over the Raft peer connection and join its group commit.

pysyncobj forwards a follower's command as a separate ``apply_command`` message, and the leader makes
every forwarded command a log entry of its own: with clients spread over 3 members, 3 entries (3
rounds of fsyncs and AppendEntries) per round instead of 1. Here a follower's proposer sends its whole
batch to the leader as one ``forward`` peer message; the leader's proposer puts it, with the
follower's (proposer id, sequence), into its next entry (codec.py: ``"f"``), so every write that
arrived anywhere commits in one entry.

Why the peer connection: it is authenticated and encrypted with the peer secret already (peerwire,
and peertls when enabled), so nobody without the secret can forge a batch or an answer, and the Raft
threads at both ends are awake every tick anyway. A batch costs one pickled message each way; the
HTTP hop to the leader's client port it replaces (aiohttp on both members, signed bodies, a replay
guard) cost about a tenth of each member's CPU under write load.

Semantics are those of a write proposed locally:

* Idempotent retries. A batch keeps this member's (id, sequence) through every retry, forwarded or
  through pysyncobj, and the state machine applies a given (id, sequence) once.
* Outcomes. No leader known, no connection to it, or an answer "not leader" mean "not applied"
  (``ForwardNotApplied``); no answer within the attempt, the leader changing while the batch is out,
  or an error from the leader's own proposal mean "unknown" (``ForwardUnknown``). The proposer
  retries both until its deadline, then answers etcd's "context deadline exceeded" as for any write
  of unknown outcome.
* The follower answers once it has applied the write itself (up to the deadline), as etcd does.
* The leader takes only the operations a proposer submits (``FORWARDABLE_OPS``); a batch it refuses
  switches forwarding off for a while, and batches go through pysyncobj meanwhile.

Pieces: ``OutstandingForwards`` (follower, Raft thread) keeps the batches out by request id;
``ForwardedBatch``/``parse_forward`` (leader, Raft thread) checks what arrives; raft.RaftNode carries
both over pysyncobj's messages. On the loop, ``Forwarder`` (follower) sends and awaits a batch and
``ForwardIntake`` (leader) proposes one and answers it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Protocol

from . import errors
from .errors import EtcdError
from .proposer import ForwardNotApplied, ForwardUnknown, Proposer
from .threadsafe import LoopHandoff

log = logging.getLogger(__name__)

# What a proposer submits; reads never travel this way.
FORWARDABLE_OPS = frozenset({"put", "delete", "txn", "compact", "lease_grant", "lease_revoke",
                             "lease_keepalive", "publish"})
DISABLE_AFTER_REFUSAL = 30.0

# Answers, as dicts on the wire and to callbacks: exactly one of these keys.
RESULTS = "r"  # the batch committed: its results, one per request
NOT_APPLIED = "n"  # it was not proposed (why)
UNKNOWN = "u"  # it may or may not commit (why)
REFUSED = "x"  # the leader will not take it (why): not applied, and do not ask again soon

Answer = dict[str, Any]
AnswerCallback = Callable[[Answer], None]


def valid_requests(requests: Any) -> bool:
    return isinstance(requests, list) and all(
        isinstance(r, dict) and r.get("op") in FORWARDABLE_OPS for r in requests)


def max_revision(results: list[Any]) -> int:
    return max((r["revision"] for r in results
                if isinstance(r, dict) and isinstance(r.get("revision"), int)), default=0)


# ---------------------------------------------------------------- Raft thread


class OutstandingForwards:
    """A follower's batches out to the leader, by request id (Raft thread only)."""

    def __init__(self, max_age: float = 10.0) -> None:
        self._ids = itertools.count(1)
        self._max_age = max_age
        self._out: dict[int, tuple[float, Hashable, AnswerCallback]] = {}

    def __len__(self) -> int:
        return len(self._out)

    def add(self, leader: Hashable, callback: AnswerCallback, now: float) -> int:
        rid = next(self._ids)
        self._out[rid] = (now, leader, callback)
        return rid

    def answered(self, rid: Any, answer: Answer) -> None:
        entry = self._out.pop(rid, None) if isinstance(rid, int) else None
        if entry is not None:
            entry[2](answer)

    def leader_is(self, leader: Hashable | None) -> None:
        """Batches sent to another member than the leader now are out of reach: outcome unknown."""
        for rid in [r for r, (_, to, _) in self._out.items() if to is not leader]:
            self.answered(rid, {UNKNOWN: "the leader changed while the batch was out"})

    def expire(self, now: float) -> None:
        """Forget batches unanswered for ``max_age`` (their senders gave up long before)."""
        for rid in [r for r, (sent, _, _) in self._out.items() if now - sent > self._max_age]:
            self.answered(rid, {UNKNOWN: "no answer from the leader"})


@dataclass(frozen=True, slots=True)
class ForwardedBatch:
    """A follower's batch as the leader's Raft thread received it; ``reply`` is thread-safe."""

    client: bytes
    seq: int
    requests: list[dict[str, Any]]
    timeout: float
    reply: AnswerCallback


def parse_forward(message: dict[str, Any], reply: AnswerCallback) -> ForwardedBatch | None:
    """The batch in a ``forward`` peer message, or None (after refusing it) if it is not one."""
    client, seq, requests, timeout = message.get("c"), message.get("s"), message.get("r"), message.get("t")
    if (not isinstance(client, bytes) or not isinstance(seq, int) or isinstance(seq, bool)
            or not isinstance(timeout, (int, float)) or not valid_requests(requests)):
        reply({REFUSED: "malformed batch or an operation that is not forwarded"})
        return None
    return ForwardedBatch(client, seq, requests, float(timeout), reply)


# ---------------------------------------------------------------- the loop


class PeerForwarding(Protocol):
    def leader_address(self) -> str | None: ...

    def forward(self, batch: dict[str, Any], callback: AnswerCallback) -> None:
        """Thread-safe: send ``batch`` to the leader; ``callback(answer)`` later, on the Raft thread."""


class Forwarder:
    """The follower side: whether to forward, and one batch's trip to the leader and back."""

    def __init__(self, *, self_addr: str, raft: PeerForwarding, handoff: LoopHandoff,
                 wait_revision: Callable[[int, float], Any]) -> None:
        self._self_addr = self_addr
        self._raft = raft
        self._handoff = handoff
        self._wait_revision = wait_revision
        self._disabled_until = 0.0

    def available(self) -> bool:
        """True when a leader other than this member is known (and it has not refused a batch lately)."""
        if self._disabled_until and time.monotonic() < self._disabled_until:
            return False
        leader = self._raft.leader_address()
        return leader is not None and leader != self._self_addr

    async def forward(self, client: bytes, seq: int, requests: list[dict[str, Any]], timeout: float) -> list[Any]:
        fut: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._raft.forward({"c": client, "s": seq, "r": requests, "t": timeout},
                           lambda answer: self._handoff.resolve(fut, answer))
        try:
            answer = await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise ForwardUnknown("no answer from the leader in time") from None
        results = answer.get(RESULTS)
        if isinstance(results, list) and len(results) == len(requests):
            return results
        if NOT_APPLIED in answer:
            raise ForwardNotApplied(str(answer[NOT_APPLIED]))
        if REFUSED in answer:
            log.warning("the leader refused a forwarded batch (%s); writes go through Raft for %.0f s",
                        answer[REFUSED], DISABLE_AFTER_REFUSAL)
            self._disabled_until = time.monotonic() + DISABLE_AFTER_REFUSAL
            raise ForwardNotApplied(str(answer[REFUSED]))
        raise ForwardUnknown(str(answer.get(UNKNOWN, answer)))

    async def wait_applied(self, results: list[Any], timeout: float) -> None:
        revision = max_revision(results)
        if revision and timeout > 0:
            await self._wait_revision(revision, timeout)


class ForwardIntake:
    """The leader side: propose a follower's batch inside this member's next entry, then answer it."""

    def __init__(self, proposer: Proposer, is_leader: Callable[[], bool],
                 on_outcome: Callable[[str], None] | None = None) -> None:
        self._proposer = proposer
        self._is_leader = is_leader
        self._on_outcome = on_outcome
        self._tasks: set[asyncio.Task[None]] = set()

    def take(self, batch: ForwardedBatch) -> None:
        """On the loop: start proposing ``batch``; its answer goes back on its own."""
        task = asyncio.get_running_loop().create_task(self._propose(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _propose(self, batch: ForwardedBatch) -> None:
        if not self._is_leader():
            self._answer(batch, "not_leader", {NOT_APPLIED: "not the leader"})
            return
        timeout = min(batch.timeout, self._proposer.deadline)
        try:
            results = await asyncio.wait_for(
                self._proposer.submit_forwarded(batch.client, batch.seq, batch.requests), timeout)
        except asyncio.TimeoutError:
            self._answer(batch, "unknown", {UNKNOWN: errors.request_timed_out().message})
        except EtcdError as err:
            self._answer(batch, "unknown", {UNKNOWN: err.message})
        except Exception as exc:  # noqa: BLE001 - a bug; the follower still gets an answer
            log.exception("forwarded batch failed")
            self._answer(batch, "unknown", {UNKNOWN: f"{type(exc).__name__}: {exc}"})
        else:
            self._answer(batch, "committed", {RESULTS: results})

    def _answer(self, batch: ForwardedBatch, outcome: str, answer: Answer) -> None:
        if self._on_outcome is not None:
            self._on_outcome(outcome)
        batch.reply(answer)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
