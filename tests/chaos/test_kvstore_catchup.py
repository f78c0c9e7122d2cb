"""Regression: a restarted ex-leader with a conflicting, uncommitted log tail must catch up.

pysyncobj's leader sends several 64 KiB AppendEntries batches per tick and advances nextIndex
optimistically; the follower's rejections (one step back, then "my last + 1") used to undo each
other forever (pysyncobj-notes §2.3). The member below has a tail of uncommitted entries from its
old term that conflicts with the new leader's log and is several batches long.
"""

from __future__ import annotations

import base64
import concurrent.futures
import time

import pytest

from tests.harness.kvcluster import KVCluster, post_json

pytestmark = [pytest.mark.chaos, pytest.mark.slow]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def put(url: str, key: str, size: int, timeout: float) -> int:
    try:
        code, _ = post_json(url + "/v3/kv/put", {"key": b64(key.encode()), "value": b64(b"x" * size)}, timeout)
        return code
    except OSError:
        return 0


def applied(cluster: KVCluster, i: int) -> tuple[int, int]:
    st = cluster.status(i, 1.0)
    if st is None:
        return (-1, -1)
    return int(st["raftAppliedIndex"]), int(st["header"]["revision"])


def test_restarted_leader_with_conflicting_tail_catches_up(kv_cluster_factory) -> None:
    cluster: KVCluster = kv_cluster_factory(3, "--request-timeout", "3", name="catchup")
    old = cluster.leader()
    followers = [i for i in range(3) if i != old]
    url = cluster.members[old].url

    # 1. Cut the leader off (its followers are frozen) and let it append an uncommitted tail.
    for f in followers:
        cluster.pause(f)
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(lambda n: put(url, f"tail/{n}", 4096, 4.0), range(32)))
    assert not any(c == 200 for c in codes), "nothing can commit without a quorum"

    # 2. Kill it; the other two elect a leader and write far past the old tail (many 64 KiB batches).
    cluster.kill(old)
    for f in followers:
        cluster.resume(f)
    interim = cluster.leader(30)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda n: put(cluster.members[interim].url, f"new/{n}", 4096, 10.0), range(400)))
    assert codes.count(200) == 400

    # 3. Kill that leader and bring the old one back: the survivor can only lead with the old
    #    leader's vote, starts its nextIndex at the end of its log, and must walk back through the
    #    conflicting tail. Until the old leader catches up nothing can commit.
    survivor = next(i for i in followers if i != interim)
    cluster.kill(interim)
    cluster.start(old)
    new = cluster.leader(30)
    assert new == survivor
    deadline = time.monotonic() + 45
    target = applied(cluster, new)
    mine = (-1, -1)
    while time.monotonic() < deadline:
        target = applied(cluster, new)
        mine = applied(cluster, old)
        if mine[1] == target[1] and mine[0] >= target[0] > 0:
            break
        time.sleep(0.25)
    assert mine[1] == target[1], f"restarted member stuck at {mine} while the leader is at {target}"
    assert put(cluster.members[new].url, "after", 10, 10.0) == 200
    # it serves the new data, none of its discarded tail
    code, got = post_json(cluster.members[old].url + "/v3/kv/range",
                          {"key": b64(b"tail/"), "range_end": b64(b"tail0"), "count_only": True, "serializable": True})
    assert code == 200 and "count" not in got
    code, got = post_json(cluster.members[old].url + "/v3/kv/range",
                          {"key": b64(b"new/"), "range_end": b64(b"new0"), "count_only": True, "serializable": True})
    assert got["count"] == "400"
