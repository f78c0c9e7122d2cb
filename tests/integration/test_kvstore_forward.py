"""Writes sent to followers reach the leader over the peer connection (kvstore/forward.py).

Real members: a follower forwards its write batches to the leader, which commits them inside its
own entries, so writes that arrive at different members share log entries; the follower answers
once it has applied them, so a serializable read on the same follower sees the write. Nothing of
it depends on the client port: with TLS there, whatever the certificates, forwarding works.
"""

from __future__ import annotations

import base64
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.harness.kvcluster import KVCluster, post_json


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def metric(url: str, name: str) -> float:
    text = urllib.request.urlopen(url + "/metrics", timeout=5).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def wait_forwarding(kv3: KVCluster, follower: int, leader: int, timeout: float = 20.0) -> None:
    """Until the follower knows the leader, its writes go through pysyncobj; wait until one is forwarded."""
    deadline = time.monotonic() + timeout
    name = "pilothouse_kvstore_forwarded_batches_total"
    while time.monotonic() < deadline:
        before = metric(kv3.members[leader].url, name)
        code, _ = post_json(kv3.members[follower].url + "/v3/kv/put", {"key": b64(b"fwd/probe"), "value": b64(b"x")}, 5)
        assert code == 200
        if metric(kv3.members[leader].url, name) > before:
            return
        time.sleep(0.2)
    raise AssertionError("the follower never forwarded a write to the leader")


def test_follower_writes_are_forwarded_and_read_back_on_the_follower(kv3: KVCluster) -> None:
    leader = kv3.leader()
    followers = [i for i in range(kv3.size) if i != leader]
    for f in followers:
        wait_forwarding(kv3, f, leader)
    for n in range(20):
        f = followers[n % 2]
        key = b64(b"fwd/k%02d" % n)
        code, body = post_json(kv3.members[f].url + "/v3/kv/put", {"key": key, "value": b64(b"v%d" % n), "prev_kv": True}, 5)
        assert code == 200, body
        revision = int(body["header"]["revision"])
        # Answered after the follower applied it: a serializable read right there sees it.
        code, got = post_json(kv3.members[f].url + "/v3/kv/range", {"key": key, "serializable": True}, 5)
        assert code == 200 and got["kvs"][0]["value"] == b64(b"v%d" % n)
        assert int(got["kvs"][0]["mod_revision"]) == revision
    # A txn and a delete through a follower keep their etcd answers.
    f = followers[0]
    code, body = post_json(kv3.members[f].url + "/v3/kv/txn", {
        "compare": [{"key": b64(b"fwd/k00"), "target": "VALUE", "value": b64(b"v0")}],
        "success": [{"request_put": {"key": b64(b"fwd/k00"), "value": b64(b"swapped"), "prev_kv": True}}]}, 5)
    assert code == 200 and body["succeeded"] is True
    assert body["responses"][0]["response_put"]["prev_kv"]["value"] == b64(b"v0")
    code, body = post_json(kv3.members[f].url + "/v3/kv/deleterange", {"key": b64(b"fwd/k01"), "prev_kv": True}, 5)
    assert code == 200 and body["deleted"] == "1" and body["prev_kvs"][0]["value"] == b64(b"v1")


def test_writes_through_different_members_share_log_entries(kv3: KVCluster) -> None:
    """60 concurrent puts through both followers commit in fewer entries than writes: each follower
    sends its pending writes as one batch, and the leader carries the batches of both in its next
    entry. (pysyncobj's own forwarding makes every follower write an entry of its own.)"""
    leader = kv3.leader()
    followers = [i for i in range(kv3.size) if i != leader]
    for f in followers:
        wait_forwarding(kv3, f, leader)

    def raft_index() -> int:
        code, st = post_json(kv3.members[leader].url + "/v3/maintenance/status", {}, 5)
        assert code == 200
        return int(st["raftIndex"])

    def put(n: int) -> int:
        url = kv3.members[followers[n % 2]].url
        code, body = post_json(url + "/v3/kv/put", {"key": b64(b"share/%d" % n), "value": b64(b"v")}, 10)
        assert code == 200, body
        return int(body["header"]["revision"])

    before = raft_index()
    with ThreadPoolExecutor(max_workers=60) as pool:
        revisions = list(pool.map(put, range(60)))
    entries = raft_index() - before
    assert len(set(revisions)) == 60  # each write its own revision
    assert entries < 60, f"{entries} log entries for 60 writes"
    code, got = post_json(kv3.members[leader].url + "/v3/kv/range",
                          {"key": b64(b"share/"), "range_end": b64(b"share0"), "count_only": True}, 5)
    assert code == 200 and got["count"] == "60"


def _tls_cluster(tmp_path, peer_cert: bool):  # type: ignore[no-untyped-def]
    """3 members with TLS and client certificates on the client port (as under ``pilot up``)."""
    import ssl
    import subprocess
    import sys

    from pilot.certs import ensure_certificates, issue_certificate
    from tests.harness.kvcluster import REPO, free_ports

    pki = tmp_path / "pki"
    ensure_certificates(pki, hosts=["127.0.0.1"])
    issue_certificate(pki, "kvstore", hosts=["127.0.0.1"], peer=peer_cert)
    issue_certificate(pki, "client", hosts=[], client=True)
    ports = free_ports(6)
    secret = tmp_path / "secret"
    secret.write_text("s" * 40)
    initial = ",".join(f"m{i}=127.0.0.1:{ports[2 * i + 1]}" for i in range(3))
    procs, urls, logs = [], [], []
    for i in range(3):
        logs.append(tmp_path / f"m{i}.log")
        with open(logs[-1], "wb") as log:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "kvstore", "--name", f"m{i}", "--data-dir", str(tmp_path / f"d{i}"),
                 "--listen-client", f"https://127.0.0.1:{ports[2 * i]}", "--listen-peer", f"127.0.0.1:{ports[2 * i + 1]}",
                 "--initial-cluster", initial, "--peer-secret-file", str(secret),
                 "--cert-file", str(pki / "kvstore.crt"), "--key-file", str(pki / "kvstore.key"),
                 "--trusted-ca-file", str(pki / "ca.crt"), "--client-cert-auth"],
                stdout=log, stderr=subprocess.STDOUT, cwd=REPO))
        urls.append(f"https://127.0.0.1:{ports[2 * i]}")
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "client.crt"), str(pki / "client.key"))
    return procs, urls, ctx, logs


def _tls_post(url: str, path: str, body: dict[str, Any], ctx: Any) -> tuple[int, Any]:
    import json

    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST")
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError as exc:
        return 0, str(exc)


def _writes_through_followers(urls: list[str], ctx: Any) -> tuple[int, float]:
    """Wait for a leader, write 30 keys through the followers; the leader's forwarded-batch count."""
    import json

    deadline = time.monotonic() + 40
    leader = None
    while time.monotonic() < deadline and leader is None:
        ids = {}
        leaders = set()
        for i, url in enumerate(urls):
            code, st = _tls_post(url, "/v3/maintenance/status", {}, ctx)
            if code == 200:
                ids[st["header"]["member_id"]] = i
                leaders.add(st.get("leader"))
        if len(leaders) == 1 and None not in leaders and next(iter(leaders)) in ids:
            leader = ids[next(iter(leaders))]
        else:
            time.sleep(0.2)
    assert leader is not None, "no leader"
    ok = 0
    for n in range(30):
        url = urls[(leader + 1 + n % 2) % 3]
        for _ in range(50):  # the first writes may race the election's settling
            code, body = _tls_post(url, "/v3/kv/put", {"key": b64(b"tls/%d" % n), "value": b64(b"v")}, ctx)
            if code == 200:
                ok += 1
                break
            time.sleep(0.1)
    text = urllib.request.urlopen(urllib.request.Request(urls[leader] + "/metrics"), context=ctx, timeout=5).read().decode()
    forwarded = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                    if line.startswith("pilothouse_kvstore_forwarded_batches_total"))
    del json
    return ok, forwarded


@pytest.mark.parametrize("peer_cert", [True, False], ids=["member-certificate", "serving-only-certificate"])
def test_forwarding_does_not_depend_on_client_port_certificates(tmp_path, peer_cert: bool) -> None:  # type: ignore[no-untyped-def]
    # Forwarding once went to the leader's client port and needed a certificate made for client
    # use; over the peer connection any certificate on the client port will do.
    procs, urls, ctx, logs = _tls_cluster(tmp_path, peer_cert=peer_cert)
    try:
        ok, forwarded = _writes_through_followers(urls, ctx)
        assert ok == 30
        assert forwarded > 0, "\n".join(p.read_text()[-2000:] for p in logs)
    finally:
        for p in procs:
            p.kill()
            p.wait(timeout=10)
