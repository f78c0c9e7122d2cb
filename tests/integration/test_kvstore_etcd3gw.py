"""The etcd3gw client (an etcd v3 JSON-API client nobody here wrote) against a real 3-member cluster."""

from __future__ import annotations

import threading
import time
from urllib.parse import urlsplit

import etcd3gw
import pytest

from tests.harness.kvcluster import KVCluster


def client_for(cluster: KVCluster, i: int) -> etcd3gw.Etcd3Client:
    url = urlsplit(cluster.members[i].url)
    return etcd3gw.client(host=url.hostname, port=url.port, timeout=10)


@pytest.fixture(scope="module")
def clients(kv3: KVCluster) -> list[etcd3gw.Etcd3Client]:
    return [client_for(kv3, i) for i in range(3)]


def test_status_and_members(clients: list[etcd3gw.Etcd3Client]) -> None:
    st = clients[0].status()
    assert st["leader"]
    assert st["header"]["member_id"]
    members = clients[1].members()
    assert len(members) == 3
    assert {m["name"] for m in members} == {"m1", "m2", "m3"}


def test_put_get_through_every_member(clients: list[etcd3gw.Etcd3Client]) -> None:
    for i, c in enumerate(clients):
        assert c.put(f"gw/member/{i}", f"v{i}")
    for c in clients:  # linearizable reads: every member sees every acknowledged write
        for i in range(3):
            assert c.get(f"gw/member/{i}") == [f"v{i}".encode()]


def test_prefix_and_delete(clients: list[etcd3gw.Etcd3Client]) -> None:
    c = clients[0]
    for i in range(5):
        c.put(f"gw/prefix/{i}", str(i))
    values = sorted(v for v, _meta in c.get_prefix("gw/prefix/"))
    assert values == [str(i).encode() for i in range(5)]
    assert c.delete("gw/prefix/0") is True
    assert c.delete("gw/prefix/0") is False
    assert c.delete_prefix("gw/prefix/") is True
    assert c.get_prefix("gw/prefix/") == []


def test_txn_create_and_replace(clients: list[etcd3gw.Etcd3Client]) -> None:
    c = clients[1]
    assert c.create("gw/txn/a", "1") is True
    assert c.create("gw/txn/a", "2") is False  # create-if-absent fails on an existing key
    assert c.get("gw/txn/a") == [b"1"]
    assert c.replace("gw/txn/a", "1", "3") is True
    assert c.replace("gw/txn/a", "1", "4") is False
    assert c.get("gw/txn/a") == [b"3"]


def test_lease_keys_ttl_refresh_revoke(clients: list[etcd3gw.Etcd3Client]) -> None:
    c = clients[2]
    lease = c.lease(ttl=30)
    c.put("gw/lease/a", "x", lease=lease)
    c.put("gw/lease/b", "y", lease=lease)
    assert sorted(lease.keys()) == [b"gw/lease/a", b"gw/lease/b"]
    assert 0 < lease.ttl() <= 30
    assert lease.refresh() == 30
    assert lease.revoke() is True
    assert c.get("gw/lease/a") == []
    assert lease.ttl() == -1


def test_lease_expiry_deletes_keys(clients: list[etcd3gw.Etcd3Client]) -> None:
    c = clients[0]
    lease = c.lease(ttl=2)
    c.put("gw/expire/a", "x", lease=lease)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and c.get("gw/expire/a"):
        time.sleep(0.2)
    assert c.get("gw/expire/a") == []
    assert lease.ttl() == -1


def test_watch_sees_puts_and_deletes_in_order(clients: list[etcd3gw.Etcd3Client]) -> None:
    watcher = clients[1]
    events, cancel = watcher.watch_prefix("gw/watch/")
    received = []

    def consume() -> None:
        for ev in events:
            received.append(ev)
            if len(received) == 4:
                return

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    time.sleep(0.3)
    writer = clients[0]
    writer.put("gw/watch/a", "1")
    writer.put("gw/watch/b", "2")
    writer.put("gw/watch/a", "3")
    writer.delete("gw/watch/b")
    t.join(timeout=10)
    cancel()
    assert [(e.get("type", "PUT"), e["kv"]["key"]) for e in received] == [
        ("PUT", b"gw/watch/a"), ("PUT", b"gw/watch/b"), ("PUT", b"gw/watch/a"), ("DELETE", b"gw/watch/b")]
    revs = [int(e["kv"]["mod_revision"]) for e in received]
    assert revs == sorted(revs) and len(set(revs)) == 4


def test_watch_once_from_history(clients: list[etcd3gw.Etcd3Client]) -> None:
    c = clients[2]
    c.put("gw/hist/k", "old")
    rev = int(c.get("gw/hist/k", metadata=True)[0][1]["mod_revision"])
    c.put("gw/hist/k", "new")
    ev = c.watch_once("gw/hist/k", timeout=5, start_revision=rev)
    assert ev["kv"]["value"] == b"old"


def test_lock(clients: list[etcd3gw.Etcd3Client]) -> None:
    a = clients[0].lock("gw-lock", ttl=10)
    b = clients[1].lock("gw-lock", ttl=10)
    assert a.acquire()
    assert not b.acquire()
    assert a.release()
    assert b.acquire()
    assert b.release()
