"""Mutual TLS under pysyncobj's peer connections (etcd's ``--peer-cert-file`` and friends).

pysyncobj drives each peer connection itself: a non-blocking socket, its own poller, and exactly
these socket calls — ``send``, ``recv``, ``getsockopt(SO_ERROR)``, ``fileno``, ``close`` (plus the
set-up calls). ``TLSSocket`` offers those calls over a TLS session kept in memory
(``ssl.SSLObject`` with two ``MemoryBIO``): what pysyncobj sends is encrypted into records written to
the real socket, what arrives is decrypted before pysyncobj parses a frame. Both ends present a
certificate of the cluster CA and check the other's, and the dialling side checks that the
certificate names the peer address it dialled, so nobody without a member certificate gets a byte
through to pysyncobj's frame parser.

Non-blocking details, where they differ from a plain socket:

* The handshake runs inside the first ``send``/``recv`` calls. Until it completes, ``recv`` answers
  "would block" (EAGAIN) and ``send`` keeps the data (``early``) and reports it sent: had it said
  "would block", pysyncobj would poll for writability, which a connected socket always has, and
  spin at full CPU for as long as the peer does not answer (a SIGSTOPped member accepts the TCP
  connection in its kernel but never the handshake). The kept data is encrypted and written as soon
  as the handshake completes.
* TLS records the kernel did not take are kept (``pending``) and written before anything new.
  pysyncobj stops asking to write once *its* buffer is empty, so the owner calls ``flush()`` from
  its periodic tick (``flush_all``) to push what is left.
* A TLS error (unknown CA, wrong name, garbage instead of records) raises ``ssl.SSLError``, an
  ``OSError`` that is not EAGAIN: pysyncobj closes the connection, as for any socket error.
"""

from __future__ import annotations

import errno
import logging
import socket
import ssl
import weakref
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

_READ_CHUNK = 256 * 1024


@dataclass(frozen=True)
class PeerTLS:
    """The files of etcd's peer TLS flags: this member's certificate and key, and the cluster CA."""

    cert_file: str
    key_file: str
    trusted_ca_file: str

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert_file, self.key_file)
        ctx.load_verify_locations(self.trusted_ca_file)
        ctx.verify_mode = ssl.CERT_REQUIRED  # a member certificate, or no connection
        return ctx

    def client_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the peer's chain and name
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert_file, self.key_file)
        ctx.load_verify_locations(self.trusted_ca_file)
        return ctx


def _would_block(what: str) -> BlockingIOError:
    return BlockingIOError(errno.EAGAIN, what)


class TLSSocket:
    """A TLS session over a connected (or connecting) non-blocking socket, with the socket calls
    pysyncobj's ``TcpConnection`` makes."""

    def __init__(self, raw: socket.socket, context: ssl.SSLContext, *, server_side: bool,
                 server_hostname: str | None = None) -> None:
        self._raw = raw
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=server_side,
                                     server_hostname=server_hostname)
        self._handshaken = False
        self._eof = False
        self.early = b""  # what pysyncobj sent before the handshake completed
        self.pending = b""  # TLS records the kernel has not taken yet

    # -- the calls pysyncobj makes that need no TLS

    def fileno(self) -> int:
        return self._raw.fileno()

    def setsockopt(self, *args: Any) -> None:
        self._raw.setsockopt(*args)

    def getsockopt(self, *args: Any) -> Any:
        return self._raw.getsockopt(*args)

    def setblocking(self, flag: bool) -> None:
        self._raw.setblocking(flag)

    def connect(self, address: Any) -> None:
        self._raw.connect(address)

    def close(self) -> None:
        self._raw.close()

    # -- TLS

    @property
    def handshaken(self) -> bool:
        return self._handshaken

    def flush(self) -> bool:
        """Write pending records to the socket; True when none are left."""
        data = self.pending + self._outgoing.read()
        while data:
            try:
                sent = self._raw.send(data)
            except (BlockingIOError, InterruptedError):
                break
            if sent <= 0:
                break
            data = data[sent:]
        self.pending = data
        return not data

    def _read_socket(self) -> None:
        while not self._eof:
            try:
                chunk = self._raw.recv(_READ_CHUNK)
            except (BlockingIOError, InterruptedError):
                return
            if not chunk:
                self._eof = True
                self._incoming.write_eof()
                return
            self._incoming.write(chunk)

    def _handshake(self) -> bool:
        if not self._handshaken:
            try:
                self._tls.do_handshake()
            except ssl.SSLWantReadError:
                self.flush()
                return False
            self._handshaken = True
            if self.early:
                self._tls.write(self.early)
                self.early = b""
        self.flush()
        return True

    def send(self, data: bytes) -> int:
        if not self.flush():
            raise _would_block("earlier TLS records are still pending")
        if not self._handshake():
            self.early += bytes(data)
            return len(data)
        written = self._tls.write(data)
        self.flush()
        return written

    def recv(self, size: int) -> bytes:
        self._read_socket()
        if not self._handshake():
            if self._eof:
                return b""
            raise _would_block("TLS handshake in progress")
        try:
            return self._tls.read(size)
        except ssl.SSLWantReadError:
            self.flush()  # reading may have produced records to send (session tickets)
            if self._eof:
                return b""
            raise _would_block("no complete TLS record") from None
        except ssl.SSLZeroReturnError:
            return b""


class PeerTLSConnections:
    """Puts every pysyncobj connection of one member under TLS and flushes their pending records."""

    def __init__(self, tls: PeerTLS) -> None:
        self.server = tls.server_context()
        self.client = tls.client_context()
        self._sockets: weakref.WeakSet[TLSSocket] = weakref.WeakSet()

    def incoming(self, conn: Any) -> None:
        """An accepted connection (pysyncobj's ``TcpConnection`` with its socket): serve TLS on it."""
        raw = conn._TcpConnection__socket
        if raw is None or isinstance(raw, TLSSocket):
            return
        conn._TcpConnection__socket = self._track(TLSSocket(raw, self.server, server_side=True))

    def outgoing(self, conn: Any, hostname: str) -> None:
        """A connection this member dials to the peer ``hostname`` (its name in the cluster list; pysyncobj
        dials the resolved address): every ``connect`` starts a TLS session on the new socket, checking
        that the peer's certificate names ``hostname``."""
        connect = conn.connect

        def tls_connect(host: str, port: int) -> bool:
            ok = bool(connect(host, port))
            raw = conn._TcpConnection__socket
            if ok and raw is not None and not isinstance(raw, TLSSocket):
                conn._TcpConnection__socket = self._track(
                    TLSSocket(raw, self.client, server_side=False, server_hostname=hostname))
            return ok

        conn.connect = tls_connect

    def _track(self, sock: TLSSocket) -> TLSSocket:
        self._sockets.add(sock)
        return sock

    def flush_all(self) -> None:
        for sock in list(self._sockets):
            if sock.pending:
                try:
                    sock.flush()
                except OSError:
                    pass  # the connection's next call sees the error and closes it
