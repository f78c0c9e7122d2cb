"""A fresh cluster under concurrent writes and linearizable reads on every member: followers never
truncate entries they hold (kvstore/raft.py ``skip_present_entries``) and all members converge.

Before the fix, pysyncobj's followers logged ``truncating already-applied log entries`` dozens of
times in the first seconds of such a run (leader resends after ``nextIndex`` resets): they deleted
and re-added entries identical to their own.
"""

from __future__ import annotations

import asyncio
import base64
import time

import aiohttp

from tests.harness.kvcluster import KVCluster, post_json


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def load(endpoints: list[str], seconds: float) -> tuple[int, int]:
    ok = failed = 0
    stop = time.monotonic() + seconds

    async def writer(w: int, session: aiohttp.ClientSession) -> None:
        nonlocal ok, failed
        n = 0
        while time.monotonic() < stop:
            url = endpoints[w % len(endpoints)]
            if w % 4 == 3:  # a linearizable read: a read index from the leader (a peer message on a follower)
                path, body = "/v3/kv/range", {"key": b64(b"resend/%d" % (n % 50))}
            else:
                path, body = "/v3/kv/put", {"key": b64(b"resend/%d" % ((w * 7 + n) % 50)), "value": b64(b"v%d" % n)}
            try:
                async with session.post(url + path, json=body) as resp:
                    await resp.read()
                    ok, failed = (ok + 1, failed) if resp.status == 200 else (ok, failed + 1)
            except (aiohttp.ClientError, asyncio.TimeoutError):
                failed += 1
            n += 1

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        await asyncio.gather(*(writer(w, session) for w in range(24)))
    return ok, failed


def test_followers_never_truncate_entries_they_hold(kv_cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster: KVCluster = kv_cluster_factory(3)
    ok, failed = asyncio.run(load(cluster.endpoints, 3.0))
    assert ok > 0 and failed == 0
    # Every member applies the same history.
    deadline = time.monotonic() + 20
    revisions: list[int] = []
    while time.monotonic() < deadline:
        revisions = []
        for m in cluster.members:
            code, body = post_json(m.url + "/v3/kv/range", {"key": b64(b"resend/"), "range_end": b64(b"resend0"),
                                                           "count_only": True, "serializable": True}, 5)
            assert code == 200
            revisions.append(int(body["header"]["revision"]))
        if len(set(revisions)) == 1:
            break
        time.sleep(0.2)
    assert len(set(revisions)) == 1, revisions
    for m in cluster.members:
        log = m.log_path.read_text(errors="replace")
        assert "truncating already-applied" not in log, f"{m.name}:\n{log[-4000:]}"
