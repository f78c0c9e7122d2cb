"""TLSSocket: the socket calls pysyncobj makes, over mutual TLS, on non-blocking sockets."""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path

import pytest

from kvstore.peertls import PeerTLS, TLSSocket
from pilot.certs import ensure_certificates, issue_certificate


def _tls(pki: Path, name: str = "member", hosts: tuple[str, ...] = ("127.0.0.1", "kvstore-1")) -> PeerTLS:
    ensure_certificates(pki, hosts=["127.0.0.1"])
    cert, key = issue_certificate(pki, name, hosts=list(hosts), peer=True)
    return PeerTLS(str(cert), str(key), str(pki / "ca.crt"))


def _pair(server: PeerTLS, client: PeerTLS, hostname: str = "127.0.0.1") -> tuple[TLSSocket, TLSSocket]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return (TLSSocket(a, server.server_context(), server_side=True),
            TLSSocket(b, client.client_context(), server_side=False, server_hostname=hostname))


def _exchange(sender: TLSSocket, receiver: TLSSocket, data: bytes, timeout: float = 10.0) -> bytes:
    """Send ``data`` as pysyncobj does (retry on EAGAIN), pumping both ends until it all arrived."""
    got = b""
    rest = data
    deadline = time.monotonic() + timeout
    while len(got) < len(data):
        assert time.monotonic() < deadline, "no progress"
        if rest:
            try:
                rest = rest[sender.send(rest):]
            except BlockingIOError:
                pass
        for end in (sender, receiver):
            try:
                chunk = end.recv(65536)
            except BlockingIOError:
                continue
            assert chunk, "connection closed"
            if end is receiver:
                got += chunk
        sender.flush()
        receiver.flush()
    return got


def test_frames_cross_both_ways_after_the_handshake(tmp_path: Path) -> None:
    tls = _tls(tmp_path / "pki")
    server, client = _pair(tls, tls)
    big = bytes(range(256)) * 4096  # 1 MiB: many records, partial socket writes
    assert _exchange(client, server, b"hello") == b"hello"
    assert server.handshaken and client.handshaken
    assert _exchange(server, client, big) == big
    assert _exchange(client, server, big[:1000]) == big[:1000]


def test_a_peer_without_a_certificate_of_the_cluster_ca_gets_nothing_through(tmp_path: Path) -> None:
    ours = _tls(tmp_path / "pki")
    theirs = _tls(tmp_path / "other-pki")
    server, client = _pair(ours, theirs)
    with pytest.raises(ssl.SSLError):
        _exchange(client, server, b"injected")


def test_a_member_whose_certificate_does_not_name_the_dialled_address_is_refused(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    tls = _tls(pki)
    server, client = _pair(tls, tls, hostname="kvstore-9")
    with pytest.raises(ssl.SSLCertVerificationError):
        _exchange(client, server, b"hello")


def test_garbage_instead_of_tls_records_is_an_error_not_a_frame(tmp_path: Path) -> None:
    tls = _tls(tmp_path / "pki")
    a, b = socket.socketpair()
    a.setblocking(False)
    server = TLSSocket(a, tls.server_context(), server_side=True)
    b.sendall(b"\x00\x00\x00\x10" + b"x" * 16)  # a pysyncobj frame, unencrypted
    with pytest.raises(ssl.SSLError):
        for _ in range(100):
            try:
                server.recv(65536)
            except BlockingIOError:
                time.sleep(0.01)
    b.close()


def test_data_sent_before_the_peer_answers_the_handshake_is_kept_not_refused(tmp_path: Path) -> None:
    """pysyncobj polls for writability while ``send`` says "would block", and a connected socket is
    always writable: a peer that never answers the handshake (a SIGSTOPped member) made it spin.
    ``send`` takes the data instead, and it arrives once the handshake completes."""
    tls = _tls(tmp_path / "pki")
    server, client = _pair(tls, tls)
    assert client.send(b"first") == 5  # the server has not read the ClientHello yet
    assert client.send(b"second") == 6
    assert not client.handshaken
    assert _exchange(client, server, b"third") == b"firstsecondthird"
