"""The consensus layer: pysyncobj's Raft, wrapped to close its gaps (../shared/reference/pysyncobj-notes.md).

What this module adds on top of pysyncobj, each at the place the gap comes from:

* **No pickle in the log.** Entries are opaque msgpack payloads proposed with ``_applyCommand``
  and applied by ``_SyncObj__doApplyCommand``; snapshots go through the serializer hooks as msgpack.
* **Authenticated, bounded peer traffic.** A password is mandatory (peerwire.PeerCipher: AES-GCM,
  the tag checked before anything is unpickled), peers bind to an explicit address, read-only
  peers and the unauthenticated utility protocol (``syncobj_admin``) are refused, and a frame
  whose length prefix is over ``max_frame`` closes the connection before it is buffered. With
  ``peer_tls`` every peer connection also runs over mutual TLS (``peertls.py``): no certificate
  of the cluster CA, no bytes.
* **Durability.** A follower fsyncs ``DurableJournal`` before any message leaves it, so it never
  acknowledges what is not on its disk. The leader replicates entries while it fsyncs them (as
  etcd does) and syncs at the start and end of every tick, before it counts itself toward a commit.
  Term and vote are fsynced synchronously.
* **The catch-up livelock.** A leader sends several 64 KiB AppendEntries batches per tick and moves
  ``nextIndex`` optimistically past each. A follower with a conflicting tail rejects the first
  (``reset`` to ``prevLogIdx``: one step back) and then the later ones (``reset`` to its own last+1),
  and the second reset undid the first, forever. A failed AppendEntries can only ever move
  ``nextIndex`` *down*; ``_SyncObj__onMessageReceived`` below clamps it so.
* **Entries a follower already has are skipped, not re-written.** pysyncobj's follower deletes
  everything after ``prevLogIdx`` whenever it holds more entries, even when they are the very
  entries being sent again (a leader resends after a ``reset`` moved ``nextIndex`` back, which the
  clamp above makes more common at cluster start: ``critical: truncating already-applied log
  entries``). The content was identical, so state never diverged, but the follower rewrote its
  journal, and a resend shorter than its tail dropped entries it had acknowledged (and that might be
  committed by its ack) until they were sent again. Raft truncates only at the first entry whose
  term differs; ``skip_present_entries`` rewrites such a message so pysyncobj sees exactly that.
* **Linearizable reads by ReadIndex** (readindex.py): the leader tags AppendEntries with its read
  round, followers echo the tag in their replies (``outgoing``), and a follower asks the leader for
  a read index with a ``read_index`` peer message. No log entry, no fsync.
* **Follower writes join the leader's entries** (forward.py): a follower sends a whole write batch
  as one ``forward`` peer message and gets a ``forward_reply``; the leader proposes it inside its
  next entry instead of making each forwarded command an entry of its own.
* **Kernel-tuned peer sockets.** pysyncobj pins ``SO_SNDBUF``/``SO_RCVBUF`` to 64 KiB, which
  switches off autotuning; ``RaftConfig.socket_buffer`` sets 1 MiB, so a large entry crosses in a
  few writes instead of many poll round trips.
* **Faster failure detection.** ``leaderFallbackTimeout`` is lowered from 30 s to about one election
  timeout, so a cut-off leader stops believing it leads quickly.
"""

from __future__ import annotations

import functools
import logging
import os
import struct
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import msgpack
import pysyncobj.pickle as _pysyncobj_pickle
import pysyncobj.syncobj as _syncobj_module
import pysyncobj.tcp_connection as _tcp_connection_module
from pysyncobj import SyncObj, SyncObjConf
from pysyncobj.config import FAIL_REASON
from pysyncobj.journal import createJournal as _original_create_journal
from pysyncobj.syncobj import _COMMAND_TYPE, _RAFT_STATE
from pysyncobj.transport import TCPTransport

from .forward import (NOT_APPLIED as FORWARD_NOT_APPLIED, REFUSED, RESULTS, UNKNOWN as FORWARD_UNKNOWN, Answer,
                      AnswerCallback, ForwardedBatch, OutstandingForwards, parse_forward)
from .journal import DurableJournal, fsync_dir
from .peertls import PeerTLS, PeerTLSConnections
from .peerwire import PeerCipher, StoredDeflate
from .readindex import ReadCallback, ReadRounds, RemoteReads

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
    socket_buffer: int = 1 << 20  # SO_SNDBUF/SO_RCVBUF of peer connections
    fsync: bool = True  # False: the journal is never synced (--unsafe-no-fsync, for measuring its cost)
    peer_tls: PeerTLS | None = None  # mutual TLS under the peer connections (peertls.py)


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


# ---------------------------------------------------------------- cheaper peer frames

def _tune_peer_encoding() -> None:
    """Pickle peer messages with protocol 5 and frame them uncompressed (peerwire.StoredDeflate).

    pysyncobj pickles with protocol 2 (a module global), which stores ``bytes`` as latin-1 text:
    +50% size and ~5x the time for log entries, which are bytes (pysyncobj-notes §2.2). Unpickling
    detects the protocol. Module attributes are replaced at start; the installed package is not
    edited.
    """
    setattr(_pysyncobj_pickle, "__protocol", 5)  # Python >= 3.8 reads it
    _tcp_connection_module.zlib = StoredDeflate  # type: ignore[attr-defined]


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
        tls = self._syncObj.peer_tls
        if tls is not None:
            tls.incoming(conn)
        _guard_frames(conn, self._max_frame())
        super()._onNewIncomingConnection(conn)

    def addNode(self, node: Any) -> None:  # noqa: N802
        super().addNode(node)
        conn = self._connections.get(node)
        if conn is not None:
            tls = self._syncObj.peer_tls
            if tls is not None:
                tls.outgoing(conn, node.host)
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
        return bool(super().send(node, self._syncObj.outgoing(node, message)))


# ---------------------------------------------------------------- resent AppendEntries

@dataclass(frozen=True, slots=True)
class AppendDecision:
    """What to do with an AppendEntries: hand ``message`` to pysyncobj; if ``reply_next`` is set,
    ``message`` only does the bookkeeping (term, leader, commit) and this node acknowledges the
    entries up to ``reply_next - 1`` itself, because pysyncobj would truncate a matching log."""

    message: dict[str, Any]
    reply_next: int | None = None


def skip_present_entries(message: dict[str, Any], *, term_at: Callable[[int], int | None],
                         first_idx: int, last_idx: int) -> AppendDecision:
    """Drop the leading entries of an AppendEntries that this log already holds with the same term.

    ``term_at(idx)`` is this log's term at ``idx`` (None if absent); indexes below ``first_idx`` are
    inside the snapshot, hence committed, hence equal to the leader's. By the Log Matching property an
    entry held with the leader's term proves the whole log up to it equal to the leader's, so:

    * some entries are new or conflict: send from the first of them, with the last held one as
      ``prevLogIdx`` (pysyncobj then truncates only at a real conflict);
    * all are held and the log ends with them: an empty AppendEntries at the last one;
    * all are held and the log goes on: pysyncobj would truncate the rest, so the caller acknowledges
      instead. Up to its last entry if that one has the leader's term (then all of it is the
      leader's), else up to the last entry sent. The commit index is capped at what is verified.
    """
    entries = message.get("entries") or []
    if not entries or "prevLogIdx" not in message or "transmission" in message:
        return AppendDecision(message)
    held = 0
    for _command, idx, term in entries:
        if idx < first_idx:
            held += 1
            continue
        if idx > last_idx or term_at(idx) != term:
            break
        held += 1
    if held == 0:
        return AppendDecision(message)
    _, prev_idx, prev_term = entries[held - 1]
    if held < len(entries) or prev_idx >= last_idx:
        return AppendDecision(dict(message, prevLogIdx=prev_idx, prevLogTerm=prev_term, entries=entries[held:]))
    verified = last_idx if term_at(last_idx) == message["term"] else prev_idx
    bookkeeping = {k: v for k, v in message.items() if k not in ("prevLogIdx", "prevLogTerm", "entries")}
    bookkeeping["commit_index"] = min(message["commit_index"], verified)
    return AppendDecision(bookkeeping, reply_next=verified + 1)


# ---------------------------------------------------------------- the node

OutcomeCallback = Callable[[Any, int], None]

# pysyncobj outcomes: definitely not applied (safe to retry) versus unknown (may have been applied).
NOT_APPLIED = frozenset({FAIL_REASON.QUEUE_FULL, FAIL_REASON.MISSING_LEADER, FAIL_REASON.NOT_LEADER,
                         FAIL_REASON.DISCARDED, FAIL_REASON.REQUEST_DENIED})
UNKNOWN = frozenset({FAIL_REASON.LEADER_CHANGED, FAIL_REASON.UNKNOWN_OUTCOME})
SUCCESS = FAIL_REASON.SUCCESS


# Peer message fields and types added to pysyncobj's protocol (older members ignore them).
READ_TAG = "rr"  # (term, round) on a leader's AppendEntries; echoed on a follower's next_node_idx
READ_INDEX = "read_index"  # follower -> leader {"id"}
READ_INDEX_REPLY = "read_index_reply"  # leader -> follower {"id", "index": int | None}
FORWARD = "forward"  # follower -> leader {"id", "c", "s", "r", "t"}: a write batch (forward.py)
FORWARD_REPLY = "forward_reply"  # leader -> follower {"id"} and one answer key of forward.py
_ANSWER_KEYS = (RESULTS, FORWARD_NOT_APPLIED, FORWARD_UNKNOWN, REFUSED)


class RaftNode(SyncObj):  # type: ignore[misc]
    """One Raft member replicating ``machine``.

    Thread-safe entry points: propose(), read_index(), forward(), status(). ``on_tick_end(applied_index)``
    is called on the Raft thread at the end of every tick, once the tick's messages have been sent and
    before the log is synced: the place to hand results to other threads (threadsafe.LoopHandoff).
    ``on_forwarded(batch)`` is called on the Raft thread with each batch a follower forwards while
    this member leads; ``batch.reply`` (any thread) sends the answer back.
    """

    def __init__(self, cfg: RaftConfig, machine: StateMachine, *,
                 on_state_change: Callable[[bool], None] | None = None,
                 on_fsync: Callable[[float], None] | None = None,
                 on_tick_end: Callable[[int], None] | None = None,
                 on_forwarded: Callable[[ForwardedBatch], None] | None = None) -> None:
        if not cfg.secret:
            raise ValueError("a peer secret is required: pysyncobj's peer protocol is pickle")
        os.makedirs(cfg.data_dir, mode=0o700, exist_ok=True)
        os.chmod(cfg.data_dir, 0o700)
        # Everything set before SyncObj.__init__ is outside the replicated state.
        self.max_frame = cfg.max_frame
        self.peer_tls = PeerTLSConnections(cfg.peer_tls) if cfg.peer_tls is not None else None
        self._peer_cipher = PeerCipher.from_secret(cfg.secret)
        self._machine = machine
        self._on_state_change = on_state_change
        self._snapshot_path = os.path.join(cfg.data_dir, "snapshot.msgpack")
        self._read_requests: deque[ReadCallback] = deque()  # appended by any thread
        self._reads_waiting: list[ReadCallback] = []
        self._read_rounds = ReadRounds(others=len([p for p in cfg.peers if p != cfg.self_addr]))
        self._remote_reads = RemoteReads()
        self._remote_leader: Any = None
        self._echo: dict[Any, Any] = {}  # leader node -> the last read tag accepted from it
        self._on_forwarded = on_forwarded
        self._forward_requests: deque[tuple[dict[str, Any], AnswerCallback]] = deque()  # any thread
        self._forward_replies: deque[tuple[Any, Any, Answer]] = deque()  # any thread
        self._outstanding = OutstandingForwards()
        self._forward_leader: Any = None
        _install_journal_factory(functools.partial(DurableJournal, on_fsync=on_fsync, fsync=cfg.fsync))
        _tune_peer_encoding()
        low, high = cfg.election_timeout
        conf = SyncObjConf(
            password=cfg.secret,
            bindAddress=cfg.self_addr,
            journalFile=os.path.join(cfg.data_dir, "raft.journal"),
            fullDumpFile=self._snapshot_path,
            serializer=self._write_snapshot,
            deserializer=self._read_snapshot,
            appendEntriesUseBatch=False,  # send at once; batching happens a layer up (group commit)
            # pysyncobj pins SO_SNDBUF/SO_RCVBUF (64 KiB by default), which turns off the kernel's
            # autotuning: an entry of a few hundred KiB (a burst of large txns in one group commit)
            # then crossed in many poll round trips, and bulk loads ran at half of etcd's rate.
            sendBufferSize=cfg.socket_buffer,
            recvBufferSize=cfg.socket_buffer,
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
        self._on_tick_end = on_tick_end
        self._alone = len(cfg.peers) <= 1
        self.addOnTickCallback(self._end_tick)

    @property
    def encryptor(self) -> PeerCipher:
        """What pysyncobj's transport encrypts peer frames with: AES-GCM instead of its Fernet
        (peerwire.py); the transport's key handshake is keyed on this property too. The password
        stays set in the config so that any pysyncobj path reaching its own Fernet object directly
        fails closed (frames the peers cannot read) rather than sending plaintext."""
        return self._peer_cipher

    # -------------------------------------------------------------- proposing

    def propose(self, payload: bytes, callback: OutcomeCallback) -> None:
        """Append ``payload`` through the leader; ``callback(result, outcome)`` fires on the Raft thread."""
        self._applyCommand(payload, callback, _COMMAND_TYPE.REGULAR)

    def read_index(self, callback: ReadCallback) -> None:
        """Ask for a read index (readindex.py); ``callback(index | None)`` fires on the Raft thread."""
        self._read_requests.append(callback)
        self._SyncObj__pipeNotifier.notify()

    def forward(self, batch: dict[str, Any], callback: AnswerCallback) -> None:
        """Send a write batch to the leader (forward.py); ``callback(answer)`` fires on the Raft thread."""
        self._forward_requests.append((batch, callback))
        self._SyncObj__pipeNotifier.notify()

    def _serve_forwards(self) -> None:
        """Raft thread, at the start of a tick: send queued answers (leader) and batches (follower)."""
        transport = self._SyncObj__transport
        replies = self._forward_replies
        while replies:
            node, rid, answer = replies.popleft()
            transport.send(node, {"type": FORWARD_REPLY, "id": rid, **answer})
        leader = self._getLeader()
        if leader is not self._forward_leader:
            self._outstanding.leader_is(leader)
            self._forward_leader = leader
        if self._outstanding:
            self._outstanding.expire(time.monotonic())
        requests = self._forward_requests
        while requests:
            batch, callback = requests.popleft()
            if leader is None or self._SyncObj__raftState == _RAFT_STATE.LEADER:
                callback({FORWARD_NOT_APPLIED: "no other member leads"})
                continue
            rid = self._outstanding.add(leader, callback, time.monotonic())
            if not transport.send(leader, {"type": FORWARD, "id": rid, **batch}):
                self._outstanding.answered(rid, {FORWARD_NOT_APPLIED: "not connected to the leader"})

    def _take_forward(self, node: Any, message: dict[str, Any]) -> None:
        """Leader, Raft thread: a follower's batch goes to ``on_forwarded``; anything else is answered."""
        rid = message.get("id")

        def reply(answer: Answer) -> None:
            self._forward_replies.append((node, rid, answer))
            self._SyncObj__pipeNotifier.notify()

        if self._SyncObj__raftState != _RAFT_STATE.LEADER or self._on_forwarded is None:
            reply({FORWARD_NOT_APPLIED: "not the leader"})
            return
        batch = parse_forward(message, reply)
        if batch is not None:
            self._on_forwarded(batch)

    def _serve_reads(self) -> None:
        """Raft thread, at the start of a tick: open a read round (leader) or ask the leader (follower)."""
        requests = self._read_requests
        while requests:
            self._reads_waiting.append(requests.popleft())
        if self._SyncObj__raftState == _RAFT_STATE.LEADER:
            noop = self._SyncObj__noopIDx
            if (self._reads_waiting and self._read_rounds.idle() and noop is not None
                    and self.raftCommitIndex >= noop):
                self._read_rounds.start(self.raftCommitIndex, self._reads_waiting)
                self._reads_waiting = []
                self._SyncObj__newAppendEntriesTime = 0  # heartbeat now, tagged with the new round
            return
        leader = self._getLeader()
        if leader is not self._remote_leader:
            self._remote_reads.fail_all()
            self._remote_leader = leader
        self._remote_reads.expire(time.monotonic())
        if not self._reads_waiting:
            return
        if leader is None:
            waiting, self._reads_waiting = self._reads_waiting, []
            for callback in waiting:
                callback(None)
        elif self._remote_reads.idle():
            rid = self._remote_reads.request(self._reads_waiting, time.monotonic())
            self._reads_waiting = []
            if not self._SyncObj__transport.send(leader, {"type": READ_INDEX, "id": rid}):
                self._remote_reads.answered(rid, None)  # not connected to the leader: no answer will come

    def outgoing(self, node: Any, message: Any) -> Any:
        """Tag a leader's AppendEntries with its read round; echo the tag in a follower's reply."""
        if type(message) is not dict:
            return message
        kind = message.get("type")
        if kind == "append_entries" and self._SyncObj__raftState == _RAFT_STATE.LEADER:
            return dict(message, **{READ_TAG: (self.raftCurrentTerm, self._read_rounds.number)})
        if kind == "next_node_idx":
            tag = self._echo.get(node)
            if tag is not None:
                return dict(message, **{READ_TAG: tag})
        return message

    def _extension_message(self, node: Any, message: dict[str, Any]) -> bool:
        """Handle the read-index and forwarding parts of a peer message; True if it was only that."""
        kind = message.get("type")
        if kind == "append_entries":
            tag = message.get(READ_TAG)
            if tag is not None and message.get("term", -1) >= self.raftCurrentTerm:
                self._echo[node] = tag
        elif kind == "next_node_idx":
            tag = message.get(READ_TAG)
            if (tag is not None and self._SyncObj__raftState == _RAFT_STATE.LEADER
                    and tag[0] == self.raftCurrentTerm):
                self._read_rounds.echoed(node, tag[1])
        elif kind == READ_INDEX:
            rid = message.get("id")
            transport = self._SyncObj__transport

            def reply(index: int | None) -> None:
                transport.send(node, {"type": READ_INDEX_REPLY, "id": rid, "index": index})

            if self._SyncObj__raftState == _RAFT_STATE.LEADER:
                self._read_requests.append(reply)
            else:
                reply(None)
            return True
        elif kind == READ_INDEX_REPLY:
            index = message.get("index")
            self._remote_reads.answered(message.get("id"), index if isinstance(index, int) else None)
            return True
        elif kind == FORWARD:
            self._take_forward(node, message)
            return True
        elif kind == FORWARD_REPLY:
            answer = {k: message[k] for k in _ANSWER_KEYS if k in message}
            self._outstanding.answered(message.get("id"), answer or {FORWARD_UNKNOWN: "an empty answer"})
            return True
        return False

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
        if self.peer_tls is not None:
            self.peer_tls.flush_all()  # TLS records a full socket left behind (peertls.py)
        self._serve_reads()
        self._serve_forwards()
        super()._onTick(timeToWait)

    def _end_tick(self) -> None:
        if self._on_tick_end is not None:
            self._on_tick_end(self.raftLastApplied)
        self.sync_log()
        if self._alone:
            self._commit_alone()

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
        if self._extension_message(node, message):
            return
        kind = message.get("type")
        if (kind == "next_node_idx" and message.get("reset") and not message.get("success")
                and self._SyncObj__raftState == _RAFT_STATE.LEADER):
            current = self._SyncObj__raftNextIndex.get(node)
            if current is not None and message["next_node_idx"] > current:
                # See the module docstring: a rejection may move nextIndex back, never forward.
                message = dict(message, next_node_idx=current)
        elif kind == "append_entries" and message.get("entries") and message.get("term", -1) >= self.raftCurrentTerm:
            raft_log = self._SyncObj__raftLog
            first_idx = raft_log[0][1]

            def term_at(idx: int) -> int | None:
                return raft_log[idx - first_idx][2] if first_idx <= idx <= raft_log[-1][1] else None

            decision = skip_present_entries(message, term_at=term_at, first_idx=first_idx, last_idx=raft_log[-1][1])
            SyncObj._SyncObj__onMessageReceived(self, node, decision.message)
            if decision.reply_next is not None:
                self._SyncObj__sendNextNodeIdx(node, nextNodeIdx=decision.reply_next, success=True)
            return
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
        if old == _RAFT_STATE.LEADER and new != _RAFT_STATE.LEADER:
            self._read_rounds.fail_all()
        elif new == _RAFT_STATE.LEADER:
            self._remote_reads.fail_all()  # asked of a leader this member has replaced
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

    def is_leader(self) -> bool:
        return bool(self._isLeader())

    def leader_address(self) -> str | None:
        leader = self._getLeader()
        return getattr(leader, "address", None) if leader is not None else None

    def match_indexes(self) -> dict[str, int]:
        return {getattr(n, "address", str(n)): i for n, i in dict(self._SyncObj__raftMatchIndex).items()}
