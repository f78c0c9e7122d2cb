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
  secret and only for the operations a proposer submits. Each request carries an HMAC of its body
  under a key derived from the secret, and each answer an HMAC binding it to that request
  (``ForwardSigner``), so on a plain-HTTP client port an eavesdropper learns nothing it can sign
  with: it cannot forge a batch (say a ``publish`` that redirects forwarding to itself) nor an
  answer (a write acknowledged that was never applied). A body records when it was sent; the leader
  refuses one outside ``MAX_CLOCK_SKEW`` of its clock or seen before (``ReplayGuard``), so a
  recorded batch cannot be applied again once the state machine has forgotten its (id, sequence).

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
SIGNATURE_HEADER = "X-Pilothouse-Forward"
CONTENT_TYPE = "application/x-msgpack"
# What a proposer submits; reads never travel this way.
FORWARDABLE_OPS = frozenset({"put", "delete", "txn", "compact", "lease_grant", "lease_revoke",
                             "lease_keepalive", "publish"})
MAX_FORWARD_BYTES = 8 * 1024 * 1024  # a proposer batch is at most 4 MiB of requests
DISABLE_AFTER_REFUSAL = 30.0
MAX_CLOCK_SKEW = 30.0  # seconds between a follower's clock and the leader's a batch may show


class ForwardSigner:
    """HMAC-SHA256 signatures of forwarded batches and of the leader's answers to them."""

    def __init__(self, secret: str) -> None:
        self._key = hmac.new(secret.encode(), b"pilothouse-forward-v2", hashlib.sha256).digest()

    def _mac(self, *parts: bytes) -> str:
        mac = hmac.new(self._key, digestmod=hashlib.sha256)
        for part in parts:
            mac.update(len(part).to_bytes(8, "big"))
            mac.update(part)
        return mac.hexdigest()

    def sign_request(self, body: bytes) -> str:
        return self._mac(b"request", body)

    def sign_answer(self, request_signature: str, status: int, body: bytes) -> str:
        return self._mac(b"answer", request_signature.encode(), str(status).encode(), body)

    def request_ok(self, signature: str, body: bytes) -> bool:
        return hmac.compare_digest(signature, self.sign_request(body))

    def answer_ok(self, signature: str, request_signature: str, status: int, body: bytes) -> bool:
        return hmac.compare_digest(signature, self.sign_answer(request_signature, status, body))


class ReplayGuard:
    """The leader's memory of the batch signatures it took within the clock-skew window."""

    def __init__(self, window: float = MAX_CLOCK_SKEW) -> None:
        self._window = window
        self._seen: dict[str, float] = {}  # signature -> when it may be forgotten (insertion order)

    def admit(self, signature: str, sent_at: float, now: float) -> bool:
        """True once for a batch sent within the window of ``now``; False if stale, early or seen."""
        while self._seen:
            oldest, until = next(iter(self._seen.items()))
            if until > now:
                break
            del self._seen[oldest]
        if abs(now - sent_at) > self._window or signature in self._seen:
            return False
        # Kept until no copy of it can be inside the window any more.
        self._seen[signature] = max(now, sent_at) + 2 * self._window
        return True


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
        self._signer = ForwardSigner(secret)
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
        body = codec.pack({"c": client, "s": seq, "r": requests, "t": timeout, "w": time.time()})
        signature = self._signer.sign_request(body)
        try:
            async with self._client().post(
                    url + FORWARD_PATH, data=body, headers={SIGNATURE_HEADER: signature, "Content-Type": CONTENT_TYPE},
                    timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                data = await resp.read()
                status = resp.status
                answer_signature = resp.headers.get(SIGNATURE_HEADER, "")
        except (aiohttp.ClientSSLError, ssl.SSLError) as exc:
            self._disable(url, f"TLS: {exc}")
            raise ForwardNotApplied(str(exc)) from None
        except aiohttp.ClientConnectorError as exc:
            raise ForwardNotApplied(str(exc)) from None  # never connected: nothing was sent
        except (asyncio.TimeoutError, aiohttp.ClientError, OSError) as exc:
            self._verified.discard(url)  # the next batch to it goes only after a fresh check
            raise ForwardUnknown(f"{type(exc).__name__}: {exc}") from None
        if status == 403:
            self._disable(url, "the leader refused the batch's signature (different peer secret, or clocks "
                               f"more than {MAX_CLOCK_SKEW:.0f} s apart?)")
            raise ForwardNotApplied("forwarding signature refused")
        if status in (400, 404, 405, 413):
            # Refused before anything was proposed (no such endpoint, an operation or size it does
            # not take): the batch goes through pysyncobj instead.
            self._disable(url, f"HTTP {status}: the leader does not take this forwarded batch")
            raise ForwardNotApplied(f"HTTP {status}")
        if not self._signer.answer_ok(answer_signature, signature, status, data):
            # Not from a holder of the secret: nothing it says about the batch can be believed.
            raise ForwardUnknown(f"HTTP {status} without a valid answer signature")
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
