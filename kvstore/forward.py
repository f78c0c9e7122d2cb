"""A follower's writes reach the leader over the leader's client port and join its group commit.

pysyncobj forwards a follower's command as a separate ``apply_command`` message, and the leader makes
every forwarded command a log entry of its own: with clients spread over 3 members, 3 entries (3
rounds of fsyncs and AppendEntries) per round instead of 1. Here a follower's proposer sends its whole
batch to ``POST /pilothouse/forward`` on the leader's client URL over a pooled keep-alive connection;
the leader's proposer puts it, with the follower's (proposer id, sequence), into its next entry
(codec.py: ``"f"``), so every write that arrived anywhere commits in one entry.

Where the leader is: the Raft node knows the leader's peer address, ``--initial-cluster`` maps it to
a member name, and every member publishes its client URL through the log at start (``publish``,
kept in the MVCC state and its snapshots, as etcd publishes member attributes).

Semantics are those of a write proposed locally:

* Idempotent retries. The batch keeps this member's (id, sequence) through every retry, over HTTP or
  through pysyncobj, and the state machine applies a given (id, sequence) once.
* Outcomes. A refused connection, a leader that says it is not leader, or a rejected token mean
  "not applied" (``ForwardNotApplied``); a timeout, a connection lost after sending, or an error from
  the leader's own proposal mean "unknown" (``ForwardUnknown``). The proposer retries both until its
  deadline, then answers etcd's "context deadline exceeded" as for any write of unknown outcome.
* The follower answers once it has applied the write itself (up to the deadline), as etcd does.
* Trust. The endpoint takes already-parsed requests, so it is open only to holders of the peer
  secret (an HMAC of it in a header) and only for the operations a proposer submits.

With TLS on the client port the follower presents ``--cert-file`` as its client certificate; if the
leader refuses it (a certificate made for serving only), forwarding is switched off for a while and
writes go through pysyncobj as before. Under TLS 1.3 that refusal arrives only after the client
considers the handshake done, as a reset of the connection that carried the request, which cannot be
told from a leader dying mid-request. So a batch is sent only over a verified path: before the first
batch to a URL, and after any batch to it ended without an answer, a ``GET /version`` on the same
pool must succeed; when it does not, nothing was sent and the batch is "not applied".
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import ssl
import time
from typing import Any, Callable

import aiohttp

from . import codec
from .proposer import ForwardNotApplied, ForwardUnknown

log = logging.getLogger(__name__)

FORWARD_PATH = "/pilothouse/forward"
TOKEN_HEADER = "X-Pilothouse-Forward"
CONTENT_TYPE = "application/x-msgpack"
# What a proposer submits; reads never travel this way.
FORWARDABLE_OPS = frozenset({"put", "delete", "txn", "compact", "lease_grant", "lease_revoke",
                             "lease_keepalive", "publish"})
MAX_FORWARD_BYTES = 8 * 1024 * 1024  # a proposer batch is at most 4 MiB of requests
DISABLE_AFTER_REFUSAL = 30.0


def forward_token(secret: str) -> str:
    return hmac.new(secret.encode(), b"pilothouse-forward-v1", hashlib.sha256).hexdigest()


def valid_requests(requests: Any) -> bool:
    return isinstance(requests, list) and all(
        isinstance(r, dict) and r.get("op") in FORWARDABLE_OPS for r in requests)


def max_revision(results: list[Any]) -> int:
    return max((r["revision"] for r in results
                if isinstance(r, dict) and isinstance(r.get("revision"), int)), default=0)


class Forwarder:
    """The follower side: where the leader is, and the HTTP round trip to it."""

    def __init__(self, *, self_addr: str, peer_names: dict[str, str], leader: Callable[[], str | None],
                 members: Callable[[], dict[str, str]], secret: str,
                 wait_revision: Callable[[int, float], Any], ssl_context: ssl.SSLContext | None = None) -> None:
        self._self_addr = self_addr
        self._peer_names = peer_names  # peer address -> member name
        self._leader = leader
        self._members = members
        self._token = forward_token(secret)
        self._wait_revision = wait_revision
        self._ssl = ssl_context
        self._session: aiohttp.ClientSession | None = None
        self._disabled_until = 0.0
        self._verified: set[str] = set()

    def target(self) -> str | None:
        """The leader's client URL, or None to propose through pysyncobj (leader here or unknown).

        Only once every member has published its URL: a member that has not runs code from before
        forwarding, whose state machine would skip the forwarded batches of an entry (a mixed-version
        cluster keeps proposing through pysyncobj until all members run this code).
        """
        if self._disabled_until and time.monotonic() < self._disabled_until:
            return None
        leader = self._leader()
        if leader is None or leader == self._self_addr:
            return None
        members = self._members()
        if not all(name in members for name in self._peer_names.values()):
            return None
        name = self._peer_names.get(leader)
        return members.get(name) if name is not None else None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30, ssl=self._ssl if self._ssl is not None else True)
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
        return self._session

    def _disable(self, url: str, why: str) -> None:
        log.warning("forwarding writes to the leader at %s is off for %.0f s (%s); they go through Raft",
                    url, DISABLE_AFTER_REFUSAL, why)
        self._disabled_until = time.monotonic() + DISABLE_AFTER_REFUSAL

    async def _verify(self, url: str, timeout: float) -> None:
        """Prove the leader takes our connections (and certificate) before a batch rides on them."""
        try:
            async with self._client().get(url + "/version", timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                await resp.read()
                status = resp.status
        except (aiohttp.ClientSSLError, ssl.SSLError) as exc:
            self._disable(url, f"TLS: {exc}")
            raise ForwardNotApplied(str(exc)) from None
        except aiohttp.ClientConnectorError as exc:
            raise ForwardNotApplied(str(exc)) from None
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            if self._ssl is not None:
                # Connected, then cut off before any answer: under TLS, the leader refusing our
                # certificate (TLS 1.3 reports that after the handshake).
                self._disable(url, f"connection closed before any answer ({exc}); client certificate refused?")
            raise ForwardNotApplied(str(exc)) from None
        except (asyncio.TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise ForwardNotApplied(f"{type(exc).__name__}: {exc}") from None
        if status != 200:
            raise ForwardNotApplied(f"HTTP {status} from {url}/version")
        self._verified.add(url)

    async def forward(self, url: str, client: bytes, seq: int, requests: list[dict[str, Any]],
                      timeout: float) -> list[Any]:
        if url not in self._verified:
            await self._verify(url, timeout)
        body = codec.pack({"c": client, "s": seq, "r": requests, "t": timeout})
        try:
            async with self._client().post(
                    url + FORWARD_PATH, data=body, headers={TOKEN_HEADER: self._token, "Content-Type": CONTENT_TYPE},
                    timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                data = await resp.read()
                status = resp.status
        except (aiohttp.ClientSSLError, ssl.SSLError) as exc:
            self._disable(url, f"TLS: {exc}")
            raise ForwardNotApplied(str(exc)) from None
        except aiohttp.ClientConnectorError as exc:
            raise ForwardNotApplied(str(exc)) from None  # never connected: nothing was sent
        except (asyncio.TimeoutError, aiohttp.ClientError, OSError) as exc:
            self._verified.discard(url)  # the next batch to it goes only after a fresh check
            raise ForwardUnknown(f"{type(exc).__name__}: {exc}") from None
        if status == 403:
            self._disable(url, "the leader refused the forwarding token (different peer secret?)")
            raise ForwardNotApplied("forwarding token refused")
        if status in (400, 404, 405, 413):
            # Refused before anything was proposed (no such endpoint, an operation or size it does
            # not take): the batch goes through pysyncobj instead.
            self._disable(url, f"HTTP {status}: the leader does not take this forwarded batch")
            raise ForwardNotApplied(f"HTTP {status}")
        try:
            reply = codec.unpack(data) if resp.content_type == CONTENT_TYPE else None
        except Exception:  # noqa: BLE001 - any undecodable answer leaves the outcome open
            reply = None
        if not isinstance(reply, dict):
            raise ForwardUnknown(f"HTTP {status} without a forwarding answer")
        if reply.get("n"):
            raise ForwardNotApplied("not the leader")
        results = reply.get("r")
        if status == 200 and isinstance(results, list) and len(results) == len(requests):
            return results
        raise ForwardUnknown(f"leader answered {reply.get('e')!r}")

    async def wait_applied(self, results: list[Any], timeout: float) -> None:
        revision = max_revision(results)
        if revision and timeout > 0:
            await self._wait_revision(revision, timeout)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
