"""The consensus layer: pysyncobj's Raft, wrapped to close its gaps (../shared/reference/pysyncobj-notes.md).

What this module adds on top of pysyncobj, each at the place the gap comes from:

* **No pickle in the log.** Entries are opaque msgpack payloads proposed with ``_applyCommand``
  and applied by ``_SyncObj__doApplyCommand``; snapshots go through the serializer hooks as msgpack.
* **Authenticated, bounded peer traffic.** A password is mandatory (Fernet: HMAC checked before
  anything is unpickled), peers bind to an explicit address, read-only peers and the unauthenticated
  utility protocol (``syncobj_admin``) are refused, and a frame whose length prefix is over
  ``max_frame`` closes the connection before it is buffered.
* **Durability.** A follower fsyncs ``DurableJournal`` before any message leaves it, so it never
  acknowledges what is not on its disk. The leader replicates entries while it fsyncs them (as
  etcd does) and syncs at the start and end of every tick, before it counts itself toward a commit.
  Term and vote are fsynced synchronously.
* **The catch-up livelock.** A leader sends several 64 KiB AppendEntries batches per tick and moves
  ``nextIndex`` optimistically past each. A follower with a conflicting tail rejects the first
  (``reset`` to ``prevLogIdx``: one step back) and then the later ones (``reset`` to its own last+1),
  and the second reset undid the first, forever. A failed AppendEntries can only ever move
  ``nextIndex`` *down*; ``_SyncObj__onMessageReceived`` below clamps it so.
* **Faster failure detection.** ``leaderFallbackTimeout`` is lowered from 30 s to about one election
  timeout, so a cut-off leader stops believing it leads quickly.
"""

from __future__ import annotations

import functools
import logging
import os
import struct
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import msgpack
import pysyncobj.syncobj as _syncobj_module
from pysyncobj import SyncObj, SyncObjConf
from pysyncobj.config import FAIL_REASON
from pysyncobj.journal import createJournal as _original_create_journal
from pysyncobj.syncobj import _COMMAND_TYPE, _RAFT_STATE
from pysyncobj.transport import TCPTransport

from .journal import DurableJournal, fsync_dir

log = logging.getLogger(__name__)

DEFAULT_MAX_FRAME = 32 * 1024 * 1024
_LEN = struct.Struct("i")


class StateMachine(Protocol):
    """What the Raft node replicates. Called only on the Raft thread, in log order."""

    def apply(self, payload: bytes) -> Any: ...

    def snapshot(self) -> bytes: ...

    def restore(self, data: bytes) -> None: ...


@dataclass(frozen=True, slots=True)
class RaftConfig:
    self_addr: str
    peers: tuple[str, ...]
    data_dir: str
    secret: str
    election_timeout: tuple[float, float] = (0.4, 0.8)
    heartbeat: float = 0.05
    snapshot_entries: int = 20000
    max_frame: int = DEFAULT_MAX_FRAME


# ---------------------------------------------------------------- durable journal hook

_journal_factory: Callable[[str], Any] | None = None


def _create_journal(journal_file: str | None) -> Any:
    if journal_file is not None and _journal_factory is not None:
        return _journal_factory(journal_file)
    return _original_create_journal(journal_file)


def _install_journal_factory(factory: Callable[[str], Any]) -> None:
    """SyncObj.__init__ builds its journal through the module-level ``createJournal``; route it here.

    There is no constructor argument for a journal class, so this one function of pysyncobj is
    replaced when a member starts (the installed package is never edited).
    """
    global _journal_factory
    _journal_factory = factory
    _syncobj_module.createJournal = _create_journal  # type: ignore[attr-defined]


# ---------------------------------------------------------------- hardened transport

def _guard_frames(conn: Any, max_frame: int) -> None:
    """Close a connection whose next frame announces more than ``max_frame`` bytes (or < 0)."""
    parse = conn._TcpConnection__processParseMessage

    def checked_parse() -> Any:
        buf = conn._TcpConnection__readBuffer
        if len(buf) >= _LEN.size:
            (length,) = _LEN.unpack_from(buf)
            if length < 0 or length > max_frame:
                log.warning("peer frame of %d bytes refused (limit %d); closing connection", length, max_frame)
                conn.disconnect()
                return None
        return parse()

    conn._TcpConnection__processParseMessage = checked_parse


class SecureTransport(TCPTransport):  # type: ignore[misc]
    """TCPTransport that accepts only known, authenticated members and bounded frames."""

    def _max_frame(self) -> int:
        return int(getattr(self._syncObj, "max_frame", DEFAULT_MAX_FRAME))

    def _onNewIncomingConnection(self, conn: Any) -> None:  # noqa: N802 (pysyncobj's names)
        _guard_frames(conn, self._max_frame())
        super()._onNewIncomingConnection(conn)

    def addNode(self, node: Any) -> None:  # noqa: N802
        super().addNode(node)
        conn = self._connections.get(node)
        if conn is not None:
            _guard_frames(conn, self._max_frame())

    def _onIncomingMessageReceived(self, conn: Any, message: Any) -> None:  # noqa: N802
        handshake = self._syncObj.encryptor and not conn.sendRandKey
        if not handshake and (not isinstance(message, str) or message not in self._nodeAddrToNode):
            # 'readonly' peers, utility commands (lists) and unknown addresses are all refused.
            log.warning("refused peer connection announcing %r", message if isinstance(message, str) else type(message))
            conn.disconnect()
            self._unknownConnections.discard(conn)
            return
        super()._onIncomingMessageReceived(conn, message)

    def send(self, node: Any, message: Any) -> bool:
        self._syncObj.before_send()
        return bool(super().send(node, message))


# ---------------------------------------------------------------- the node

OutcomeCallback = Callable[[Any, int], None]

# pysyncobj outcomes: definitely not applied (safe to retry) versus unknown (may have been applied).
NOT_APPLIED = frozenset({FAIL_REASON.QUEUE_FULL, FAIL_REASON.MISSING_LEADER, FAIL_REASON.NOT_LEADER,
                         FAIL_REASON.DISCARDED, FAIL_REASON.REQUEST_DENIED})
UNKNOWN = frozenset({FAIL_REASON.LEADER_CHANGED, FAIL_REASON.UNKNOWN_OUTCOME})
SUCCESS = FAIL_REASON.SUCCESS


class RaftNode(SyncObj):  # type: ignore[misc]
    """One Raft member replicating ``machine``. Thread-safe entry points: propose(), status()."""

    def __init__(self, cfg: RaftConfig, machine: StateMachine, *,
                 on_state_change: Callable[[bool], None] | None = None,
                 on_fsync: Callable[[float], None] | None = None) -> None:
        if not cfg.secret:
            raise ValueError("a peer secret is required: pysyncobj's peer protocol is pickle")
        os.makedirs(cfg.data_dir, mode=0o700, exist_ok=True)
        os.chmod(cfg.data_dir, 0o700)
        # Everything set before SyncObj.__init__ is outside the replicated state.
        self.max_frame = cfg.max_frame
        self._machine = machine
        self._on_state_change = on_state_change
        self._snapshot_path = os.path.join(cfg.data_dir, "snapshot.msgpack")
        _install_journal_factory(functools.partial(DurableJournal, on_fsync=on_fsync))
        low, high = cfg.election_timeout
        conf = SyncObjConf(
            password=cfg.secret,
            bindAddress=cfg.self_addr,
            journalFile=os.path.join(cfg.data_dir, "raft.journal"),
            fullDumpFile=self._snapshot_path,
            serializer=self._write_snapshot,
            deserializer=self._read_snapshot,
            appendEntriesUseBatch=False,  # send at once; batching happens a layer up (group commit)
            appendEntriesPeriod=cfg.heartbeat,
            raftMinTimeout=low,
            raftMaxTimeout=high,
            connectionTimeout=max(high, 1.0),
            connectionRetryTime=0.3,
            leaderFallbackTimeout=max(high, 1.0),
            commandsWaitLeader=False,
            logCompactionMinEntries=cfg.snapshot_entries,
            logCompactionMinTime=600,
            dynamicMembershipChange=False,
            onStateChanged=self._state_changed,
        )
        super().__init__(cfg.self_addr, [p for p in cfg.peers if p != cfg.self_addr], conf,
                         transportClass=SecureTransport)
        self.addOnTickCallback(self.sync_log)
        if len(cfg.peers) <= 1:
            self.addOnTickCallback(self._commit_alone)

    # -------------------------------------------------------------- proposing

    def propose(self, payload: bytes, callback: OutcomeCallback) -> None:
        """Append ``payload`` through the leader; ``callback(result, outcome)`` fires on the Raft thread."""
        self._applyCommand(payload, callback, _COMMAND_TYPE.REGULAR)

    def before_send(self) -> None:
        """A follower or candidate makes its log durable before any message leaves (its acks promise it).

        The leader does not: like etcd, it replicates entries while writing them to its own disk, and
        counts itself toward a commit only once they are synced (``_onTick`` syncs before the commit
        index is computed; ``sync_log`` at the end of every tick). Commit latency becomes
        max(leader fsync, follower round trip + fsync) instead of their sum.
        """
        if self._SyncObj__raftState != _RAFT_STATE.LEADER:
            self._SyncObj__raftLog.sync()

    def sync_log(self) -> None:
        self._SyncObj__raftLog.sync()

    def _onTick(self, timeToWait: float = 0.0) -> None:  # noqa: N802,N803 - pysyncobj's name
        # The leader counts its own log as matched when it computes the commit index: whatever it
        # appended since its last sync (the no-op of a new term, entries added while polling) must be
        # durable first.
        if self._SyncObj__raftState == _RAFT_STATE.LEADER:
            self._SyncObj__raftLog.sync()
        super()._onTick(timeToWait)

    def _commit_alone(self) -> None:
        """A lone member commits what it appended on its next tick; wake that tick at once.

        With peers, their replies wake the poller; alone, nothing would until autoTickPeriod.
        """
        if self.raftCommitIndex < self._SyncObj__raftLog[-1][1]:
            self._SyncObj__pipeNotifier.notify()

    # -------------------------------------------------------------- pysyncobj hooks

    def _SyncObj__doApplyCommand(self, command: bytes) -> Any:  # noqa: N802
        if command[:1] == b"\x00":  # _COMMAND_TYPE.REGULAR: one of ours, msgpack
            return self._machine.apply(command[1:])
        return SyncObj._SyncObj__doApplyCommand(self, command)

    def _SyncObj__onMessageReceived(self, node: Any, message: Any) -> None:  # noqa: N802
        if (message.get("type") == "next_node_idx" and message.get("reset") and not message.get("success")
                and self._SyncObj__raftState == _RAFT_STATE.LEADER):
            current = self._SyncObj__raftNextIndex.get(node)
            if current is not None and message["next_node_idx"] > current:
                # See the module docstring: a rejection may move nextIndex back, never forward.
                message = dict(message, next_node_idx=current)
        SyncObj._SyncObj__onMessageReceived(self, node, message)

    def _write_snapshot(self, filename: str, raft_data: Any) -> None:
        last_entry, prev_entry, cluster = raft_data
        blob = msgpack.packb({
            "raft": [list(last_entry), list(prev_entry), sorted(getattr(n, "address", str(n)) for n in cluster)],
            "state": self._machine.snapshot(),
        }, use_bin_type=True)
        with open(filename, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        fsync_dir(filename)

    def _read_snapshot(self, filename: str) -> tuple[Any, Any, Any]:
        with open(filename, "rb") as f:
            data = msgpack.unpackb(f.read(), raw=False, strict_map_key=False)
        self._machine.restore(data["state"])
        last, prev, cluster = data["raft"]
        return (bytes(last[0]), last[1], last[2]), (bytes(prev[0]), prev[1], prev[2]), cluster

    def _state_changed(self, old: int, new: int) -> None:
        if self._on_state_change is not None:
            self._on_state_change(new == _RAFT_STATE.LEADER)

    # -------------------------------------------------------------- introspection

    def status(self) -> dict[str, Any]:
        """A snapshot of Raft progress; read from another thread, so values may be a tick old."""
        leader = self._getLeader()
        return {
            "is_leader": self._isLeader(),
            "leader": getattr(leader, "address", None) if leader is not None else None,
            "term": self.raftCurrentTerm,
            "commit_index": self.raftCommitIndex,
            "applied_index": self.raftLastApplied,
            "ready": self.isReady(),
        }

    def match_indexes(self) -> dict[str, int]:
        return {getattr(n, "address", str(n)): i for n, i in dict(self._SyncObj__raftMatchIndex).items()}
