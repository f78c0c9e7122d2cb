"""Linearizable reads (kvstore/readindex.py) against real members, faults included.

A linearizable read must see every write acknowledged before it began, on whichever member it is
sent to, and a member that cannot prove that (no quorum, deposed leader) must fail the read rather
than answer from old state. Each scenario runs on the built-in store and on real etcd 3.4, which
states the behaviour the store must match.
"""

from __future__ import annotations

import base64
import concurrent.futures
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Union

import pytest

from tests.harness.etcdcluster import ETCD, EtcdCluster
from tests.harness.kvcluster import KVCluster, post_json

Cluster = Union[KVCluster, EtcdCluster]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(params=["pilothouse", "etcd"])
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    if request.param == "etcd":
        if ETCD is None:
            pytest.skip("real etcd is not installed (Debian: apt-get install etcd-server; .ci/run does it)")
        c: Cluster = EtcdCluster(tmp_path / "etcd", 3)
    else:
        # A short request timeout keeps the quorum-loss case quick; etcd's own is 5 s + election.
        c = KVCluster(tmp_path / "kv", 3, ("--request-timeout", "2"))
    c.start()
    try:
        c.wait_ready()
        yield c
    finally:
        c.close()


def put(url: str, key: bytes, value: bytes) -> None:
    code, body = post_json(url + "/v3/kv/put", {"key": b64(key), "value": b64(value)}, 10.0)
    assert code == 200, body


def read(url: str, key: bytes, *, serializable: bool = False, timeout: float = 15.0) -> tuple[int, Any]:
    """(status, value or the error body); value None when the key does not exist."""
    req: dict[str, Any] = {"key": b64(key)}
    if serializable:
        req["serializable"] = True
    try:
        code, body = post_json(url + "/v3/kv/range", req, timeout)
    except OSError as exc:  # the member closed the connection or did not answer in time
        return 0, repr(exc)
    if code != 200:
        return code, body
    kvs = body.get("kvs") or []
    return code, base64.b64decode(kvs[0]["value"]) if kvs else None


def other_leader(c: Cluster, old: int, timeout: float = 30.0) -> int:
    """The leader the members other than ``old`` agree on, once it is not ``old``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leaders = set()
        for i in range(c.size):
            if i == old:
                continue
            st = c.status(i)
            leaders.add(st.get("leader") if st else None)
        if len(leaders) == 1 and None not in leaders:
            ids = {int(c.status(i)["header"]["member_id"]): i for i in range(c.size) if i != old}  # type: ignore[index]
            leader_id = int(leaders.pop())
            if leader_id in ids:
                return ids[leader_id]
        time.sleep(0.1)
    raise TimeoutError("the remaining members elected no leader")


def test_followers_read_what_the_leader_just_acknowledged(cluster: Cluster) -> None:
    """Write through the leader, read at once from every follower: never the value before."""
    leader = cluster.leader()
    followers = [i for i in range(cluster.size) if i != leader]
    for n in range(40):
        value = b"v%d" % n
        put(cluster.endpoints[leader], b"ri/fresh", value)
        for f in followers:
            assert read(cluster.endpoints[f], b"ri/fresh") == (200, value)


def test_a_deposed_leader_never_answers_a_stale_read(cluster: Cluster) -> None:
    """Freeze the leader, let the others elect a new one and take a write, then thaw the old leader
    with reads already queued on its socket: it still believes it leads, but may only answer with
    the new value or an error."""
    for round_ in range(2):
        key = b"ri/deposed/%d" % round_
        old = cluster.leader()
        put(cluster.endpoints[old], key, b"before")
        cluster.pause(old)
        try:
            new = other_leader(cluster, old)
            put(cluster.endpoints[new], key, b"after")
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                pending = [pool.submit(read, cluster.endpoints[old], key) for _ in range(8)]
                time.sleep(0.5)  # the requests reach the frozen member's socket
                cluster.resume(old)
                answers = [f.result() for f in pending]
        finally:
            cluster.resume(old)
        for code, value in answers:
            assert value != b"before", answers
            if code == 200:
                assert value == b"after", answers
        # Once it has caught up it answers again, with the new value.
        deadline = time.monotonic() + 20
        while read(cluster.endpoints[old], key) != (200, b"after"):
            assert time.monotonic() < deadline, cluster.logs()
            time.sleep(0.2)


def test_without_a_quorum_only_serializable_reads_are_answered(cluster: Cluster) -> None:
    leader = cluster.leader()
    put(cluster.endpoints[leader], b"ri/quorum", b"1")
    followers = [i for i in range(cluster.size) if i != leader]
    for f in followers:
        cluster.pause(f)
    try:
        code, _ = read(cluster.endpoints[leader], b"ri/quorum", timeout=20)
        assert code != 200
        assert read(cluster.endpoints[leader], b"ri/quorum", serializable=True) == (200, b"1")
    finally:
        for f in followers:
            cluster.resume(f)
    deadline = time.monotonic() + 30
    while not any(read(url, b"ri/quorum", timeout=5) == (200, b"1") for url in cluster.endpoints):
        assert time.monotonic() < deadline, cluster.logs()
        time.sleep(0.2)
