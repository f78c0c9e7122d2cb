"""A store member process: flags, wiring of the layers, lease reaper, signals.

    python -m kvstore --name m1 --data-dir DIR --listen-client http://127.0.0.1:2379 \\
        --listen-peer 127.0.0.1:2380 \\
        --initial-cluster m1=127.0.0.1:2380,m2=127.0.0.1:2381,m3=127.0.0.1:2382 \\
        [--peer-secret-file F] [--peer-cert-file C --peer-key-file K --peer-trusted-ca-file CA]

Layers, bottom up: raft.RaftNode (consensus, journal) → machine.KVStateMachine → mvcc.MVCCStore
(state) ; proposer.Proposer (group commit), readindex.LinearizableReads (ReadIndex reads) and
watch.WatchHub bridge the Raft thread to the asyncio loop (through threadsafe.LoopHandoff: one
wake-up per tick) ; server.EtcdServer is the etcd v3 JSON API, behind httpfast.FastPath ;
forward.Forwarder sends a follower's write batches to the leader over the peer connection, and
forward.ForwardIntake proposes those a leader receives.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import json
import logging
import os
import signal
import ssl
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram

from .errors import EtcdError
from .forward import NOT_APPLIED as NOT_FORWARDED, ForwardedBatch, ForwardIntake, Forwarder
from .httpfast import FastPath
from .lease import LeaseClock
from .machine import KVStateMachine
from .mvcc import MVCCStore
from .peertls import PeerTLS
from .proposer import Proposer
from .raft import NOT_APPLIED, SUCCESS, UNKNOWN, RaftConfig, RaftNode
from .readindex import AppliedIndex, LinearizableReads
from .server import MAX_BODY, EtcdServer, MemberIdentity
from .threadsafe import LoopHandoff
from .watch import WatchHub

log = logging.getLogger("kvstore")


@dataclass(frozen=True, slots=True)
class MemberConfig:
    name: str
    data_dir: str
    client_host: str
    client_port: int
    peer_addr: str
    initial_cluster: dict[str, str]  # name -> host:port
    peer_secret: str
    progress_interval: float
    request_timeout: float
    election_timeout: tuple[float, float]
    cert_file: str = ""
    key_file: str = ""
    trusted_ca_file: str = ""
    client_cert_auth: bool = False
    advertise_client_url: str = ""
    peer_tls: PeerTLS | None = None
    unsafe_no_fsync: bool = False

    @property
    def client_url(self) -> str:
        scheme = "https" if self.cert_file else "http"
        return f"{scheme}://{self.client_host}:{self.client_port}"

    @property
    def advertised_client_url(self) -> str:
        """The client URL the member list shows for this member (each member publishes its own).

        --advertise-client-url, else the listen URL, with an unspecified listen host (0.0.0.0, ::)
        replaced by the host of this member's peer address.
        """
        if self.advertise_client_url:
            return self.advertise_client_url.rstrip("/")
        host = self.client_host
        if host in ("0.0.0.0", "::", ""):
            host = self.peer_addr.rsplit(":", 1)[0].strip("[]")
        if ":" in host:
            host = f"[{host}]"
        scheme = "https" if self.cert_file else "http"
        return f"{scheme}://{host}:{self.client_port}"

    def ssl_context(self) -> ssl.SSLContext | None:
        """TLS on the client port (etcd's --cert-file/--key-file), with client certificates
        required when --client-cert-auth is set, so only holders of a CA-signed cert get in."""
        if not self.cert_file:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert_file, self.key_file)
        if self.client_cert_auth:
            ctx.load_verify_locations(self.trusted_ca_file)
            ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx


def stable_id(*parts: str) -> int:
    """A uint64 id derived from names, like etcd's member and cluster ids."""
    return int.from_bytes(hashlib.sha256("\x00".join(parts).encode()).digest()[:8], "big")


def _strip_scheme(addr: str) -> str:
    return addr.split("://", 1)[1] if "://" in addr else addr


def parse_cluster(spec: str) -> dict[str, str]:
    members: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, addr = item.partition("=")
        if not sep or not name or not addr:
            raise ValueError(f"--initial-cluster entry {item!r} is not NAME=HOST:PORT")
        members[name] = _strip_scheme(addr)
    return members


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pilot kvstore", description="Run one member of the Pilothouse store "
                                "(Raft-replicated MVCC key-value store speaking the etcd v3 JSON API).")
    p.add_argument("--name", required=True, help="member name, as used in --initial-cluster")
    p.add_argument("--data-dir", required=True, help="journal and snapshots (created 0700)")
    p.add_argument("--listen-client", default="http://127.0.0.1:2379", help="URL of the etcd JSON API")
    p.add_argument("--listen-peer", default=None, help="HOST:PORT for Raft peer traffic (default: this member's entry in --initial-cluster)")
    p.add_argument("--initial-cluster", default=None, help="NAME=HOST:PORT,... of every member (1, 3 or 5)")
    p.add_argument("--peer-secret-file", default=None, help="file holding the shared secret that authenticates and encrypts peer traffic")
    p.add_argument("--cert-file", default="", help="serve the client port over TLS with this certificate (PEM)")
    p.add_argument("--key-file", default="", help="the key of --cert-file")
    p.add_argument("--trusted-ca-file", default="", help="CA that client certificates must chain to")
    p.add_argument("--client-cert-auth", action="store_true", help="require a client certificate signed by --trusted-ca-file")
    p.add_argument("--peer-cert-file", default="", help="peer traffic over mutual TLS: this member's certificate "
                                                         "(PEM; for server and client use, naming its peer host)")
    p.add_argument("--peer-key-file", default="", help="the key of --peer-cert-file")
    p.add_argument("--peer-trusted-ca-file", default="", help="CA the other members' peer certificates chain to")
    p.add_argument("--advertise-client-url", default="",
                   help="client URL the member list shows for this member (default: --listen-client, "
                        "an unspecified host replaced by the --listen-peer host)")
    p.add_argument("--unsafe-no-fsync", action="store_true",
                   help="never fsync the Raft journal, as etcd's flag of that name: only to measure what durability "
                        "costs; acknowledged writes can be lost when members crash")
    p.add_argument("--watch-progress-notify-interval", type=float, default=600.0, help="seconds between progress notifications")
    p.add_argument("--request-timeout", type=float, default=5.0, help="seconds before a write without an outcome fails")
    p.add_argument("--election-timeout", default="0.4,0.8", help="min,max election timeout in seconds")
    p.add_argument("--log-level", default=os.environ.get("PILOT_LOG_LEVEL", "INFO"))
    return p


def config_from_args(argv: list[str]) -> tuple[MemberConfig, str]:
    args = build_parser().parse_args(argv)
    client = urlsplit(args.listen_client if "://" in args.listen_client else "http://" + args.listen_client)
    if client.scheme not in ("http", "https") or not client.hostname or not client.port:
        raise SystemExit(f"--listen-client must be http(s)://HOST:PORT, got {args.listen_client!r}")
    if (client.scheme == "https") != bool(args.cert_file) or bool(args.cert_file) != bool(args.key_file):
        raise SystemExit("an https:// --listen-client needs --cert-file and --key-file (and http:// none)")
    if args.client_cert_auth and not args.trusted_ca_file:
        raise SystemExit("--client-cert-auth needs --trusted-ca-file")
    cluster = parse_cluster(args.initial_cluster) if args.initial_cluster else {}
    peer = _strip_scheme(args.listen_peer) if args.listen_peer else cluster.get(args.name)
    if peer is None:
        raise SystemExit("--listen-peer is required when --initial-cluster does not name this member")
    if not cluster:
        cluster = {args.name: peer}
    if cluster.get(args.name) != peer:
        raise SystemExit(f"--initial-cluster says {args.name}={cluster.get(args.name)} but --listen-peer is {peer}")
    if len(cluster) not in (1, 3, 5):
        log.warning("a cluster of %d members tolerates no more failures than one of %d", len(cluster), len(cluster) - 1)
    if args.peer_secret_file:
        with open(args.peer_secret_file, encoding="utf-8") as f:
            secret = f.read().strip()
        if len(secret) < 16:
            raise SystemExit("the peer secret must be at least 16 characters")
    else:
        # Without a secret file the members still need a shared password; derive one from the
        # layout. That keeps a hand-started cluster working but protects only against strangers
        # who do not know the member list: `pilot up` and compose always pass a random secret.
        secret = "pilothouse-derived:" + ",".join(f"{n}={a}" for n, a in sorted(cluster.items()))
        if len(cluster) > 1:
            log.warning("no --peer-secret-file: peer traffic is keyed from the member list only; "
                        "pass a random secret to authenticate peers")
    peer_tls_files = (args.peer_cert_file, args.peer_key_file, args.peer_trusted_ca_file)
    if any(peer_tls_files) and not all(peer_tls_files):
        raise SystemExit("peer TLS needs --peer-cert-file, --peer-key-file and --peer-trusted-ca-file together")
    low, _, high = args.election_timeout.partition(",")
    cfg = MemberConfig(
        name=args.name, data_dir=os.path.abspath(args.data_dir), client_host=client.hostname,
        client_port=client.port, peer_addr=peer, initial_cluster=cluster, peer_secret=secret,
        progress_interval=args.watch_progress_notify_interval, request_timeout=args.request_timeout,
        election_timeout=(float(low), float(high or float(low) * 2)),
        cert_file=args.cert_file, key_file=args.key_file, trusted_ca_file=args.trusted_ca_file,
        client_cert_auth=args.client_cert_auth, advertise_client_url=args.advertise_client_url,
        peer_tls=PeerTLS(*peer_tls_files) if all(peer_tls_files) else None,
        unsafe_no_fsync=args.unsafe_no_fsync,
    )
    if cfg.unsafe_no_fsync:
        log.warning("--unsafe-no-fsync: the journal is never synced; a crash can lose acknowledged writes")
    return cfg, args.log_level


class JsonLogFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("pysyncobj").setLevel(logging.WARNING)


class Member:
    """All layers of one member, started and stopped together."""

    def __init__(self, cfg: MemberConfig) -> None:
        self.cfg = cfg
        self.registry = CollectorRegistry()
        self._leader_changes = Counter("etcd_server_leader_changes_seen_total", "Leader changes seen",
                                       registry=self.registry)
        self._proposals = Counter("etcd_server_proposals_committed_total", "Log entries committed by this member's proposals",
                                  registry=self.registry)
        self._forwarded = Counter("pilothouse_kvstore_forwarded_batches_total",
                                  "Write batches followers forwarded to this member as leader, by outcome",
                                  ["outcome"], registry=self.registry)
        self._intake: ForwardIntake | None = None
        self._handoff: LoopHandoff | None = None
        self._fsync = Histogram("etcd_disk_wal_fsync_duration_seconds", "Journal fsync latency",
                                registry=self.registry,
                                buckets=(0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024))
        self.leases = LeaseClock()
        self.store = MVCCStore(lease_observer=self.leases.observe)
        self.lock = threading.Lock()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def _batch_forwarded(self, batch: ForwardedBatch) -> None:
        """Raft thread: a follower's write batch, for the intake on the loop (forward.py)."""
        if self._intake is None or self._handoff is None:
            batch.reply({NOT_FORWARDED: "starting"})
            return
        self._handoff.call(self._intake.take, batch)

    def _state_changed(self, is_leader: bool) -> None:
        self._leader_changes.inc()
        if is_leader:
            self.leases.promote()

    async def start(self) -> None:
        cfg = self.cfg
        loop = asyncio.get_running_loop()
        handoff = LoopHandoff(loop)
        self._handoff = handoff
        self.hub = WatchHub(self.store, self.lock, handoff)
        machine = KVStateMachine(self.store, self.lock, self.hub.notify_threadsafe)
        peers = tuple(cfg.initial_cluster.values())
        applied = AppliedIndex(handoff)

        def tick_end(applied_index: int) -> None:
            applied.advance(applied_index)
            handoff.flush()

        self.raft = RaftNode(
            RaftConfig(self_addr=cfg.peer_addr, peers=peers, data_dir=cfg.data_dir, secret=cfg.peer_secret,
                       election_timeout=cfg.election_timeout, peer_tls=cfg.peer_tls,
                       fsync=not cfg.unsafe_no_fsync),
            machine, on_state_change=self._state_changed, on_fsync=self._fsync.observe,
            on_tick_end=tick_end, on_forwarded=self._batch_forwarded)
        forwarder = Forwarder(self_addr=cfg.peer_addr, raft=self.raft, handoff=handoff,
                              wait_revision=lambda rev, timeout: self.hub.wait_after(rev - 1, timeout))
        self.proposer = Proposer(self.raft, success=SUCCESS, not_applied=NOT_APPLIED, unknown=UNKNOWN,
                                 deadline=cfg.request_timeout, on_batch=lambda n: self._proposals.inc(),
                                 forwarder=forwarder if len(cfg.initial_cluster) > 1 else None,
                                 handoff=handoff)
        self._intake = ForwardIntake(self.proposer, self.raft.is_leader,
                                     on_outcome=lambda outcome: self._forwarded.labels(outcome).inc())
        identity = MemberIdentity(
            name=cfg.name, member_id=stable_id(cfg.name, cfg.peer_addr),
            cluster_id=stable_id(*sorted(f"{n}={a}" for n, a in cfg.initial_cluster.items())),
            client_url=cfg.advertised_client_url,
            peers={addr: (name, stable_id(name, addr)) for name, addr in cfg.initial_cluster.items()},
            peer_scheme="https" if cfg.peer_tls is not None else "http",
        )
        self.server = EtcdServer(identity=identity, store=self.store, lock=self.lock, raft=self.raft,
                                 proposer=self.proposer,
                                 reads=LinearizableReads(self.raft, applied, deadline=cfg.request_timeout),
                                 hub=self.hub, leases=self.leases,
                                 registry=self.registry, progress_interval=cfg.progress_interval)
        # The lean HTTP layer takes the plain unary calls and hands every other connection to
        # aiohttp's request handler (httpfast.py); aiohttp's runner is set up without a site.
        self._runner = web.AppRunner(self.server.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        assert self._runner.server is not None
        self._fast = FastPath(self.server.fast_routes(), self._runner.server, max_body=MAX_BODY)
        self._listener = await loop.create_server(self._fast, cfg.client_host, cfg.client_port, reuse_address=True,
                                                  ssl=cfg.ssl_context())
        self._tasks.append(loop.create_task(self._reap_leases()))
        self._tasks.append(loop.create_task(self._freeze_heap()))
        self._tasks.append(loop.create_task(self._publish()))
        log.info("member %s serving clients on %s, peers on %s", cfg.name, cfg.client_url, cfg.peer_addr)

    async def _reap_leases(self) -> None:
        """On the leader, propose the expiry of leases whose TTL ran out (see lease.py)."""
        while True:
            await asyncio.sleep(0.25)
            if not self.raft.status()["is_leader"]:
                continue
            expired = self.leases.expired()
            if not expired:
                continue
            with self.lock:
                pairs = [[i, self.store.leases[i].seq] for i in expired if i in self.store.leases]
            for lease_id in expired:
                if not any(p[0] == lease_id for p in pairs):
                    self.leases.observe(lease_id, None)
            if pairs:
                try:
                    await self.proposer.submit({"op": "lease_expire", "leases": pairs})
                except EtcdError as err:
                    log.warning("lease expiry not committed: %s", err)

    async def _publish(self) -> None:
        """Record this member's client URL in the replicated state (the member list), once per start."""
        url = self.cfg.advertised_client_url
        while True:
            if self.raft.leader_address() is not None:
                if self.store.members.get(self.cfg.name) == url:
                    return
                try:
                    await self.proposer.submit({"op": "publish", "name": self.cfg.name, "client_url": url})
                    return
                except EtcdError as err:
                    log.info("client URL not published yet: %s", err)
            await asyncio.sleep(0.2)

    async def _freeze_heap(self) -> None:
        """Keep the cyclic GC off the store's long-lived objects.

        A member holds millions of small, acyclic objects (key versions, events). Each full
        collection walks all of them and pauses the loop for tens of milliseconds, which showed up
        as watch-delivery p99 growing with the store size. Moving survivors to the permanent
        generation (gc.freeze) keeps collections proportional to recent garbage only.
        """
        while True:
            await asyncio.sleep(5.0)
            gc.freeze()

    def request_stop(self) -> None:
        self._stop.set()

    async def wait(self) -> None:
        await self._stop.wait()

    async def stop(self) -> None:
        self.server.closing.set()
        await asyncio.sleep(0.1)  # let watch streams write their closing chunk
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.proposer.close()
        if self._intake is not None:
            await self._intake.close()
        self._listener.close()
        self._fast.close_all()
        await self._runner.cleanup()
        await asyncio.get_running_loop().run_in_executor(None, self.raft.destroy_synchronous)


async def run(cfg: MemberConfig) -> None:
    member = Member(cfg)
    await member.start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, member.request_stop)
    await member.wait()
    log.info("member %s shutting down", cfg.name)
    await member.stop()


def main(argv: list[str] | None = None) -> None:
    cfg, level = config_from_args(sys.argv[1:] if argv is None else argv)
    setup_logging(level)
    try:
        import uvloop

        uvloop.run(run(cfg))
    except ImportError:  # pragma: no cover - uvloop is optional off Linux
        asyncio.run(run(cfg))
