"""Peer traffic over mutual TLS (--peer-cert-file, --peer-key-file, --peer-trusted-ca-file), as etcd's.

A 3-member cluster whose peer ports speak TLS with certificates of one CA: it elects, replicates,
survives kill -9 of its leader and brings the restarted member back. The peer port is a TLS server
that wants a client certificate of that CA: a handshake without one, or with one of another CA,
fails, and a plain (unencrypted) pysyncobj frame is dropped while the cluster keeps serving.
"""

from __future__ import annotations

import base64
import socket
import ssl
import time
from pathlib import Path

import pytest

from pilot.certs import ensure_certificates, issue_certificate
from tests.harness.kvcluster import KVCluster, post_json


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _pki(root: Path) -> tuple[Path, Path, Path]:
    ensure_certificates(root, hosts=["127.0.0.1"])
    cert, key = issue_certificate(root, "kvstore", hosts=["127.0.0.1", "localhost"], peer=True)
    return cert, key, root / "ca.crt"


def _put(cluster: KVCluster, i: int, key: str, value: str) -> int:
    try:
        code, _ = post_json(cluster.members[i].url + "/v3/kv/put", {"key": _b64(key), "value": _b64(value)}, 10)
    except OSError:  # a member that is (re)starting
        return 0
    return code


def _get(cluster: KVCluster, i: int, key: str) -> str | None:
    try:
        code, body = post_json(cluster.members[i].url + "/v3/kv/range", {"key": _b64(key)}, 10)
    except OSError:
        return None
    if code != 200 or not body.get("kvs"):
        return None
    return base64.b64decode(body["kvs"][0]["value"]).decode()


def _admitted(peer: str, ctx: ssl.SSLContext) -> bool:
    """A TLS handshake with the peer port, then one read: an admitted dialler is left waiting (pysyncobj
    expects its first message), a refused one is closed or sees an alert (TLS 1.3 reports a refused
    client certificate only after the client's side of the handshake)."""
    host, port = peer.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=3) as raw:
            with ctx.wrap_socket(raw, server_hostname=host) as tls:
                tls.settimeout(2)
                try:
                    return tls.recv(1) != b""
                except TimeoutError:
                    return True
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return False


@pytest.fixture
def cluster(kv_cluster_factory, tmp_path: Path) -> KVCluster:  # type: ignore[no-untyped-def]
    cert, key, ca = _pki(tmp_path / "pki")
    return kv_cluster_factory(3, "--peer-cert-file", str(cert), "--peer-key-file", str(key),
                              "--peer-trusted-ca-file", str(ca), name="ptls")


def test_a_cluster_over_peer_tls_replicates_and_survives_its_leader(cluster: KVCluster, tmp_path: Path) -> None:
    for i in range(3):  # through every member: followers forward to the leader
        assert _put(cluster, i, f"k{i}", f"v{i}") == 200
    for i in range(3):
        assert [_get(cluster, i, f"k{j}") for j in range(3)] == ["v0", "v1", "v2"]
    leader = cluster.leader()
    cluster.kill(leader)
    others = [i for i in range(3) if i != leader]
    deadline = time.monotonic() + 30
    while _put(cluster, others[0], "after", "kill") != 200:
        assert time.monotonic() < deadline, cluster.logs()
        time.sleep(0.2)
    cluster.start(leader)
    deadline = time.monotonic() + 30
    while _get(cluster, leader, "after") != "kill":  # linearizable: the restarted member caught up
        assert time.monotonic() < deadline, cluster.logs()
        time.sleep(0.2)


def test_the_peer_port_admits_only_certificates_of_the_cluster_ca(cluster: KVCluster, tmp_path: Path) -> None:
    peer = cluster.members[0].peer
    ca = tmp_path / "pki" / "ca.crt"
    member = ssl.create_default_context(cafile=str(ca))
    member.load_cert_chain(tmp_path / "pki" / "kvstore.crt", tmp_path / "pki" / "kvstore.key")
    assert _admitted(peer, member)  # a member's certificate

    anonymous = ssl.create_default_context(cafile=str(ca))
    assert not _admitted(peer, anonymous)  # no certificate

    cert, key, _ = _pki(tmp_path / "other-pki")
    stranger = ssl.create_default_context(cafile=str(ca))
    stranger.load_cert_chain(cert, key)
    assert not _admitted(peer, stranger)  # a certificate of another CA

    # A plain pysyncobj frame is not TLS: the connection is dropped, nothing reaches the parser.
    host, port = peer.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=3) as raw:
        raw.sendall(b"\x05\x00\x00\x00hello")
        raw.settimeout(5)
        try:
            got = raw.recv(65536)
        except ConnectionResetError:
            got = b""
        assert got == b"" or got[0] == 0x15, got  # closed (or a TLS alert record): never an answer frame
    assert _put(cluster, 0, "still", "serving") == 200
