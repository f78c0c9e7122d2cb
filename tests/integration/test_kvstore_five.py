"""A 5-member store: it keeps committing with two members down, stops with three, and loses nothing.

Real member processes on 127.0.0.1, killed with SIGKILL. Every acknowledged write must be read back
(linearizably) from every member once the killed ones are back; writes made while only two
members run are never acknowledged.
"""

from __future__ import annotations

import base64
import time

from tests.harness.kvcluster import KVCluster, post_json


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def put_anywhere(cluster: KVCluster, key: bytes, value: bytes, timeout: float = 15.0) -> int:
    """Put through any live member until one acknowledges; the revision it answered."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for i in range(cluster.size):
            if not cluster.alive(i):
                continue
            try:
                code, body = post_json(cluster.members[i].url + "/v3/kv/put", {"key": b64(key), "value": b64(value)}, 3.0)
            except OSError:
                continue
            if code == 200:
                return int(body["header"]["revision"])
        time.sleep(0.1)
    raise AssertionError(f"no member acknowledged {key!r} within {timeout}s")


def test_five_members_survive_two_failures_and_stop_at_three(kv_cluster_factory) -> None:
    cluster = kv_cluster_factory(5, "--request-timeout", "2", name="five")
    acked: dict[bytes, bytes] = {}
    for n in range(10):
        key, value = b"five/a%02d" % n, b"v%d" % n
        put_anywhere(cluster, key, value)
        acked[key] = value

    # Two down, the leader among them: the other three elect a leader and keep committing.
    leader = cluster.leader()
    follower = (leader + 1) % cluster.size
    cluster.kill(leader)
    cluster.kill(follower)
    for n in range(10):
        key, value = b"five/b%02d" % n, b"v%d" % n
        put_anywhere(cluster, key, value, timeout=20.0)
        acked[key] = value

    # Three down: no majority, so no write is acknowledged (each ends in a timeout error).
    third = next(i for i in range(cluster.size) if cluster.alive(i))
    cluster.kill(third)
    survivor = next(i for i in range(cluster.size) if cluster.alive(i))
    code, body = post_json(cluster.members[survivor].url + "/v3/kv/put",
                           {"key": b64(b"five/never"), "value": b64(b"x")}, 10.0)
    assert code != 200, body

    # All back: every acknowledged write is on every member.
    for i in (leader, follower, third):
        cluster.start(i)
    cluster.wait_ready()
    last = put_anywhere(cluster, b"five/c", b"after", timeout=30.0)
    acked[b"five/c"] = b"after"
    for i in range(cluster.size):
        url = cluster.members[i].url
        code, body = post_json(url + "/v3/kv/range", {"key": b64(b"five/"), "range_end": b64(b"five0")}, 10.0)
        assert code == 200, body
        got = {base64.b64decode(kv["key"]): base64.b64decode(kv.get("value", "")) for kv in body.get("kvs", [])}
        assert {k: v for k, v in got.items() if k != b"five/never"} == acked, f"member {i}"
        assert int(body["header"]["revision"]) >= last
