"""``kvstore.client.EtcdClient`` against the built-in store and against a real etcd 3.4, 3 members each.

Every test that takes the ``store`` or ``fresh`` fixture runs twice: once on the built-in store
(``python -m kvstore`` members) and once on real etcd (``/usr/bin/etcd``, Debian's etcd-server). Both
speak the etcd v3 JSON API, so the same client call must give the same answer on both; where etcd
3.4 answers differently (timing, error wording), the test says so at the line.

``store`` is one cluster per system shared by the module's read/write tests (they use their own key
prefixes and never kill members); ``fresh`` is a new cluster per test, for the tests that kill members.

The last section runs the client against a fake member that answers with etcd's exact error bodies,
to pin down which failures of a write the client may retry (never one that may have been applied).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Union

import pytest
from aiohttp import web

from kvstore.client import (KV, Compacted, Compare, EtcdClient, EtcdClientError, Op, Unavailable, UnknownOutcome,
                            prefix_end)
from tests.harness.etcdcluster import ETCD, EtcdCluster
from tests.harness.kvcluster import KVCluster

Cluster = Union[KVCluster, EtcdCluster]
SYSTEMS = ["pilothouse", "etcd"]
NO_ETCD = "real etcd is not installed (Debian: apt-get install etcd-server; .ci/run does it): cannot check etcd compatibility"


def make_cluster(system: str, root: Path, size: int = 3) -> Cluster:
    if system == "etcd":
        if ETCD is None:
            pytest.skip(NO_ETCD)
        return EtcdCluster(root, size)
    return KVCluster(root, size)


def started(cluster: Cluster) -> Cluster:
    cluster.start()
    try:
        cluster.wait_ready()
    except TimeoutError:
        print(cluster.logs())
        cluster.close()
        raise
    return cluster


@pytest.fixture(scope="module", params=SYSTEMS)
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = started(make_cluster(request.param, tmp_path_factory.mktemp(f"client-{request.param}")))
    yield cluster
    cluster.close()


@pytest.fixture(params=SYSTEMS)
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    cluster = started(make_cluster(request.param, tmp_path / request.param))
    try:
        yield cluster
    finally:
        cluster.close()


def values(kvs: list[KV]) -> list[tuple[bytes, bytes]]:
    return [(kv.key, kv.value) for kv in kvs]


# ------------------------------------------------------------------------------ KV


async def test_put_range_delete(store: Cluster) -> None:
    async with EtcdClient(store.endpoints) as c:
        rev1, prev = await c.put(b"basic/a", b"1")
        assert prev is None and rev1 > 0
        rev2, prev = await c.put(b"basic/a", b"2", prev_kv=True)
        assert rev2 == rev1 + 1
        assert prev is not None and prev.value == b"1" and prev.mod_revision == rev1 and prev.version == 1
        kv = await c.get(b"basic/a")
        assert kv is not None and kv.value == b"2"
        assert (kv.create_revision, kv.mod_revision, kv.version, kv.lease) == (rev1, rev2, 2, 0)
        assert await c.get(b"basic/missing") is None

        for k in (b"basic/b", b"basic/c", b"basic/d"):
            await c.put(k, k.upper())
        everything = await c.range(b"basic/", prefix_end(b"basic/"))
        assert [kv.key for kv in everything.kvs] == [b"basic/a", b"basic/b", b"basic/c", b"basic/d"]
        assert everything.count == 4 and not everything.more
        page = await c.range(b"basic/", prefix_end(b"basic/"), limit=2)
        assert [kv.key for kv in page.kvs] == [b"basic/a", b"basic/b"] and page.more and page.count == 4
        keys = await c.range(b"basic/", prefix_end(b"basic/"), keys_only=True)
        assert [kv.value for kv in keys.kvs] == [b""] * 4
        counted = await c.range(b"basic/", prefix_end(b"basic/"), count_only=True)
        assert counted.count == 4 and counted.kvs == []
        serial = await c.range(b"basic/a", serializable=True)
        assert values(serial.kvs) in ([(b"basic/a", b"2")], [(b"basic/a", b"1")], [])  # may lag, never invent
        # MVCC: an older revision still shows the older value.
        old = await c.range(b"basic/a", revision=rev1)
        assert values(old.kvs) == [(b"basic/a", b"1")]
        assert old.revision >= rev2  # the header is the store's current revision, not the one read at

        rev, deleted, prevs = await c.delete_range(b"basic/c", prefix_end(b"basic/c"), prev_kv=True)
        assert deleted == 1 and values(prevs) == [(b"basic/c", b"BASIC/C")]
        rev, deleted, prevs = await c.delete_range(b"basic/nothing")
        assert deleted == 0 and prevs == []
        rev, deleted, _ = await c.delete_range(b"basic/", prefix_end(b"basic/"))
        assert deleted == 3
        assert (await c.range(b"basic/", prefix_end(b"basic/"))).kvs == []


async def test_every_member_sees_every_acknowledged_write(store: Cluster) -> None:
    for i, url in enumerate(store.endpoints):
        async with EtcdClient([url]) as c:
            await c.put(b"members/%d" % i, b"v%d" % i)
    for url in store.endpoints:
        async with EtcdClient([url]) as c:  # linearizable reads, one member at a time
            got = await c.range(b"members/", prefix_end(b"members/"))
            assert values(got.kvs) == [(b"members/%d" % i, b"v%d" % i) for i in range(len(store.endpoints))]


async def test_txn_with_compare_and_op_builders(store: Cluster) -> None:
    async with EtcdClient(store.endpoints) as c:
        key = b"txn/obj"
        # create-if-absent, as the API server creates objects
        created = await c.txn([Compare.create_revision(key, "=", 0)], [Op.put(key, b"v1")], [Op.get(key)])
        assert created.succeeded and created.responses[0].keys() == {"response_put"}
        again = await c.txn([Compare.create_revision(key, "=", 0)], [Op.put(key, b"v1")], [Op.get(key)])
        assert not again.succeeded and again.revision == created.revision
        found = again.responses[0]["response_range"]["kvs"][0]
        assert int(found["mod_revision"]) == created.revision
        # compare-and-swap on mod_revision, as updates do
        stale = await c.txn([Compare.mod_revision(key, "=", created.revision - 1)], [Op.put(key, b"lost")])
        assert not stale.succeeded
        swapped = await c.txn([Compare.mod_revision(key, "=", created.revision)], [Op.put(key, b"v2", prev_kv=True)])
        assert swapped.succeeded and swapped.revision == created.revision + 1
        prev = swapped.responses[0]["response_put"]["prev_kv"]
        assert int(prev["mod_revision"]) == created.revision
        # the other comparisons and operators
        assert (await c.txn([Compare.value(key, "=", b"v2")], [])).succeeded
        assert not (await c.txn([Compare.value(key, "!=", b"v2")], [])).succeeded
        assert (await c.txn([Compare.version(key, "=", 2), Compare.version(key, ">", 1),
                             Compare.version(key, "<", 3)], [])).succeeded
        assert not (await c.txn([Compare.version(key, ">", 2)], [])).succeeded
        assert (await c.txn([Compare.create_revision(key, "<", swapped.revision)], [])).succeeded
        # several operations apply atomically at one revision
        multi = await c.txn([], [Op.put(b"txn/x", b"1"), Op.put(b"txn/y", b"2"), Op.get(b"txn/", prefix_end(b"txn/"))])
        assert multi.succeeded and [next(iter(r)) for r in multi.responses] == ["response_put", "response_put",
                                                                                "response_range"]
        seen = multi.responses[2]["response_range"]
        assert int(seen["count"]) == 3  # the range inside the txn sees the puts before it
        x = await c.get(b"txn/x")
        y = await c.get(b"txn/y")
        assert x is not None and y is not None and x.mod_revision == y.mod_revision == multi.revision
        deleted = await c.txn([Compare.version(key, ">", 0)], [Op.delete(b"txn/", prefix_end(b"txn/"), prev_kv=True)])
        assert deleted.succeeded
        assert int(deleted.responses[0]["response_delete_range"]["deleted"]) == 3
        # a limited range in a txn
        await c.put(b"txn/l1", b"a")
        await c.put(b"txn/l2", b"b")
        limited = await c.txn([], [Op.get(b"txn/", prefix_end(b"txn/"), limit=1)])
        rr = limited.responses[0]["response_range"]
        assert len(rr["kvs"]) == 1 and rr.get("more") is True


async def test_txn_rejections_are_errors_not_outcomes(store: Cluster) -> None:
    async with EtcdClient(store.endpoints) as c:
        with pytest.raises(EtcdClientError) as err:
            await c.txn([], [Op.put(b"dup/a", b"1"), Op.put(b"dup/a", b"2")])
        assert not isinstance(err.value, UnknownOutcome)
        assert err.value.code == 3 and err.value.message == "etcdserver: duplicate key given in txn request"
        assert await c.get(b"dup/a") is None


def test_prefix_end() -> None:
    assert prefix_end(b"abc") == b"abd"
    assert prefix_end(b"/registry/pods/") == b"/registry/pods0"
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"a\xff\xff") == b"b"
    assert prefix_end(b"\xff\xff") == b"\x00"  # no upper bound: etcd reads range_end "\0" as "to the end"


async def test_prefix_end_selects_exactly_the_prefix(store: Cluster) -> None:
    async with EtcdClient(store.endpoints) as c:
        inside = [b"pe\xff", b"pe\xff\x00", b"pe\xff\xff\xff"]
        outside = [b"pe\xfe\xff", b"pf", b"pf\x00"]
        for k in inside + outside:
            await c.put(k, b"x")
        got = await c.range(b"pe\xff", prefix_end(b"pe\xff"))
        assert [kv.key for kv in got.kvs] == inside
        # range_end "\0" means every key >= key
        tail = await c.range(b"pe\xff\xff", b"\x00")
        assert [kv.key for kv in tail.kvs][:3] == [b"pe\xff\xff\xff", b"pf", b"pf\x00"]


# ------------------------------------------------------------------------------ leases


async def test_lease_grant_keepalive_timetolive_revoke(store: Cluster) -> None:
    async with EtcdClient(store.endpoints) as c:
        lease, ttl = await c.lease_grant(30)
        assert lease > 0 and ttl == 30
        await c.put(b"lease/a", b"1", lease=lease)
        await c.put(b"lease/b", b"2", lease=lease)
        kv = await c.get(b"lease/a")
        assert kv is not None and kv.lease == lease
        info = await c.lease_timetolive(lease, keys=True)
        assert int(info["ID"]) == lease and int(info["grantedTTL"]) == 30 and 0 < int(info["TTL"]) <= 30
        assert sorted(info["keys"]) == ["bGVhc2UvYQ==", "bGVhc2UvYg=="]  # base64 of lease/a, lease/b
        assert await c.lease_keepalive(lease) == 30
        # a lease with an ID chosen by the client
        chosen = lease ^ 0x5A5A
        got, _ = await c.lease_grant(10, chosen)
        assert got == chosen
        with pytest.raises(EtcdClientError) as err:
            await c.lease_grant(10, chosen)
        assert err.value.code == 9 and "lease already exists" in err.value.message

        await c.lease_revoke(lease)
        assert await c.get(b"lease/a") is None and await c.get(b"lease/b") is None
        assert int((await c.lease_timetolive(lease))["TTL"]) == -1
        assert await c.lease_keepalive(lease) == -1
        with pytest.raises(EtcdClientError) as err:
            await c.lease_revoke(lease)
        assert err.value.code == 5 and err.value.message == "etcdserver: requested lease not found"
        assert not isinstance(err.value, UnknownOutcome)
        await c.lease_revoke(chosen)


async def test_lease_expiry_deletes_its_keys(store: Cluster) -> None:
    async with EtcdClient(store.endpoints) as c:
        lease, ttl = await c.lease_grant(2)
        assert ttl >= 2  # etcd raises TTLs below its minimum (1.5 election timeouts) to that minimum
        await c.put(b"expire/a", b"1", lease=lease)
        kept, _ = await c.lease_grant(30)
        await c.put(b"expire/kept", b"1", lease=kept)
        deadline = time.monotonic() + ttl + 10
        while await c.get(b"expire/a") is not None:
            assert time.monotonic() < deadline, "a key whose lease expired was never deleted"
            await asyncio.sleep(0.2)
        assert int((await c.lease_timetolive(lease))["TTL"]) == -1
        assert await c.get(b"expire/kept") is not None
        await c.lease_revoke(kept)


# ------------------------------------------------------------------------------ compaction and watch


async def test_compaction_makes_old_revisions_compacted(store: Cluster) -> None:
    async with EtcdClient(store.endpoints) as c:
        revs = [(await c.put(b"compact/k", b"v%d" % i))[0] for i in range(5)]
        await c.compact(revs[3])
        with pytest.raises(Compacted):
            await c.range(b"compact/k", revision=revs[1])
        at = await c.range(b"compact/k", revision=revs[3])  # the compaction revision itself stays readable
        assert values(at.kvs) == [(b"compact/k", b"v3")]
        with pytest.raises(Compacted) as err:
            async for _ in c.watch(b"compact/k", start_revision=revs[1]):
                pytest.fail("a watch from a compacted revision delivered events")
        assert err.value.compact_revision >= revs[3]
        # a watch from the first revision still kept replays it
        msgs = c.watch(b"compact/k", start_revision=revs[3])
        first = await asyncio.wait_for(anext(msgs), 10)
        assert [e.kv.mod_revision for e in first.events][0] == revs[3]
        await msgs.aclose()
        with pytest.raises(EtcdClientError) as again:
            await c.compact(revs[2])  # older than the last compaction
        assert again.value.code == 11 and "compacted" in again.value.message
        with pytest.raises(EtcdClientError) as future:
            await c.range(b"compact/k", revision=revs[-1] + 1_000_000)
        assert future.value.code == 11 and "future revision" in future.value.message


async def test_watch_prefix_events_and_prev_kv(store: Cluster) -> None:
    async with EtcdClient(store.endpoints) as c:
        rev0, _ = await c.put(b"watch/a", b"0")
        got: list[tuple[str, bytes, bytes, bytes | None, int]] = []

        async def collect() -> None:
            async for msg in c.watch(b"watch/", prefix_end(b"watch/"), start_revision=rev0 + 1, prev_kv=True):
                assert not msg.progress
                for e in msg.events:
                    got.append((e.type, e.kv.key, e.kv.value, e.prev_kv.value if e.prev_kv else None,
                                e.kv.mod_revision))
                if len(got) >= 4:
                    return

        task = asyncio.create_task(collect())
        r1, _ = await c.put(b"watch/a", b"1")
        r2, _ = await c.put(b"watch/b", b"1")
        r3, _, _ = await c.delete_range(b"watch/a")
        await c.put(b"other/a", b"ignored")
        r4, _ = await c.put(b"watch/c", b"1")
        await asyncio.wait_for(task, 10)
        assert got == [("PUT", b"watch/a", b"1", b"0", r1), ("PUT", b"watch/b", b"1", None, r2),
                       ("DELETE", b"watch/a", b"", b"1", r3), ("PUT", b"watch/c", b"1", None, r4)]


async def test_watch_resumes_after_killing_its_member(fresh: Cluster) -> None:
    """Kill -9 the member the watch is connected to (the leader, so writes fail over too): the watch
    resumes on another member from its last revision + 1 and delivers every applied write exactly once,
    in revision order."""
    leader = fresh.leader()
    others = [u for i, u in enumerate(fresh.endpoints) if i != leader]
    prefix = b"resume/"
    writer = EtcdClient(fresh.endpoints, timeout=20)
    watcher = EtcdClient([fresh.endpoints[leader], *others])  # watches start on the first endpoint
    seen: list[tuple[bytes, int]] = []
    unknown = 0
    try:
        start, _ = await writer.put(b"resume-start", b"")

        async def watch() -> None:
            async for msg in watcher.watch(prefix, prefix_end(prefix), start_revision=start + 1):
                seen.extend((e.kv.key, e.kv.mod_revision) for e in msg.events)

        task = asyncio.create_task(watch())
        deadline = time.monotonic() + 60
        killed = False
        i = 0
        while i < 300 and time.monotonic() < deadline:
            if not killed and len(seen) >= 100:
                fresh.kill(leader)
                killed = True
            try:
                await writer.put(prefix + b"%05d" % i, b"v")
            except UnknownOutcome:
                unknown += 1  # in flight when the leader died: applied or not, the watch must agree
            i += 1
            await asyncio.sleep(0.005)
        assert killed, f"the watch saw only {len(seen)} events before the deadline"
        truth = sorted(((kv.key, kv.mod_revision) for kv in (await writer.range(prefix, prefix_end(prefix))).kvs),
                       key=lambda p: p[1])
        assert len(truth) >= 300 - unknown
        until = time.monotonic() + 20
        while (not seen or seen[-1][1] < truth[-1][1]) and time.monotonic() < until and not task.done():
            await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        revisions = [rev for _, rev in seen]
        assert revisions == sorted(set(revisions)), "duplicate or out-of-order events after the resume"
        assert seen == truth, f"missing {sorted(set(truth) - set(seen))[:5]}, extra {sorted(set(seen) - set(truth))[:5]}"
    finally:
        await writer.close()
        await watcher.close()


# ------------------------------------------------------------------------------ failover and unknown outcomes


async def test_reads_and_writes_fail_over_when_the_leader_is_killed(fresh: Cluster) -> None:
    leader = fresh.leader()
    # The dead member first in the list: the client must move on from it by itself.
    order = [fresh.endpoints[leader]] + [u for i, u in enumerate(fresh.endpoints) if i != leader]
    async with EtcdClient(order, timeout=20) as c:
        rev, _ = await c.put(b"failover/k", b"before")
        fresh.kill(leader)
        t0 = time.monotonic()
        # A linearizable read right after the kill: retried until a member can serve it.
        kv = await c.get(b"failover/k")
        assert kv is not None and kv.value == b"before" and kv.mod_revision == rev
        # Writes sent while the survivors elect a new leader: each either succeeds or, if a member
        # took it and then timed out, reports an unknown outcome -- never a false failure.
        acked: list[int] = []
        unknown = 0
        while time.monotonic() - t0 < 30 and not acked:
            try:
                acked.append((await c.put(b"failover/k", b"after"))[0])
            except UnknownOutcome:
                unknown += 1
        assert acked, "no write succeeded within 30 s of killing the leader"
        new_leader = fresh.leader()
        assert new_leader != leader
        # Once a leader is elected, writes and reads succeed on the first call.
        rev2, prev = await c.put(b"failover/k", b"final", prev_kv=True)
        assert prev is not None and prev.value == b"after" and rev2 > acked[0]
        for url in order[1:]:
            async with EtcdClient([url]) as one:
                kv = await one.get(b"failover/k")
                assert kv is not None and kv.value == b"final" and kv.mod_revision == rev2
        # The killed member comes back and catches up.
        fresh.start(leader)
        async with EtcdClient([fresh.endpoints[leader]], timeout=30) as back:
            kv = await back.get(b"failover/k")
            assert kv is not None and kv.value == b"final"


async def test_write_without_quorum_has_an_unknown_outcome(fresh: Cluster) -> None:
    """With 2 of 3 members dead the survivor cannot commit. Its answer to a write comes after the
    write entered its log (etcd: 503 "etcdserver: request timed out" after ~7 s; the built-in store:
    500 "context deadline exceeded" after 5 s): the client must say UnknownOutcome -- not retry it, and
    not call it a failure -- because the entry can still commit once the members return. A read in the
    same state is simply Unavailable."""
    leader = fresh.leader()
    others = [i for i in range(3) if i != leader]
    for i in others:
        fresh.kill(i)
    url = fresh.endpoints[leader]
    async with EtcdClient([url], timeout=20) as c:
        t0 = time.monotonic()
        with pytest.raises(UnknownOutcome):
            await c.txn([Compare.create_revision(b"unknown/k", "=", 0)], [Op.put(b"unknown/k", b"mine")])
        # The first answer is final: etcd gives it after ~7 s, a retry would have taken ~7 s more.
        assert time.monotonic() - t0 < 11, "the client retried a write whose first attempt may have applied"
    async with EtcdClient([url], timeout=3) as c:
        with pytest.raises(Unavailable):
            await c.get(b"unknown/k")
    for i in others:
        fresh.start(i)
    fresh.wait_ready(60)
    async with EtcdClient(fresh.endpoints, timeout=20) as c:
        kv = await c.get(b"unknown/k")
        # Either outcome is legal; what is not is any other value, or the write applied twice.
        assert kv is None or (kv.value == b"mine" and kv.version == 1)


# ------------------------------------------------------------------------------ a fake member: exact answers


class FakeMember:
    """A one-endpoint etcd JSON API that answers writes from a script of (HTTP status, body) pairs."""

    def __init__(self, script: list[tuple[int, dict[str, Any]]]) -> None:
        self.script = script
        self.hits: dict[str, int] = {}
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.hits[request.path] = self.hits.get(request.path, 0) + 1
        if request.path == "/v3/maintenance/status":
            return web.json_response({"header": {"member_id": "1", "revision": "1"}, "leader": "1"})
        status, body = self.script.pop(0) if self.script else (200, {"header": {"revision": "9"}})
        return web.json_response(body, status=status)

    async def __aenter__(self) -> FakeMember:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


def etcd_error(code: int, message: str) -> dict[str, Any]:
    return {"error": message, "message": message, "code": code}  # etcd 3.4's grpc-gateway error body


@pytest.mark.parametrize("status,code,message", [
    (503, 14, "etcdserver: request timed out"),
    (503, 14, "etcdserver: request timed out, possibly due to previous leader failure"),
    (503, 14, "etcdserver: request timed out, possibly due to connection lost"),
    (503, 14, "etcdserver: server stopped"),
    (500, 2, "context deadline exceeded"),
])
async def test_write_answers_that_may_have_applied_are_never_retried(status: int, code: int, message: str) -> None:
    async with FakeMember([(status, etcd_error(code, message))]) as fake:
        async with EtcdClient([fake.url], timeout=5) as c:
            with pytest.raises(UnknownOutcome) as err:
                await c.txn([Compare.create_revision(b"k", "=", 0)], [Op.put(b"k", b"v")])
            assert err.value.message == message
        assert fake.hits["/v3/kv/txn"] == 1


@pytest.mark.parametrize("message", ["etcdserver: no leader", "etcdserver: not capable"])
async def test_writes_refused_before_proposal_are_retried(message: str) -> None:
    async with FakeMember([(503, etcd_error(14, message))]) as fake:
        async with EtcdClient([fake.url], timeout=5) as c:
            rev, _ = await c.put(b"k", b"v")
        assert rev == 9 and fake.hits["/v3/kv/put"] == 2


async def test_reads_are_retried_after_unavailable_answers() -> None:
    script = [(503, etcd_error(14, "etcdserver: request timed out")), (503, etcd_error(14, "etcdserver: leader changed"))]
    async with FakeMember(script) as fake:
        async with EtcdClient([fake.url], timeout=5) as c:
            result = await c.range(b"k")
        assert result.revision == 9 and fake.hits["/v3/kv/range"] == 3


async def test_definite_write_errors_are_plain_errors() -> None:
    async with FakeMember([(400, etcd_error(3, "etcdserver: duplicate key given in txn request"))]) as fake:
        async with EtcdClient([fake.url], timeout=5) as c:
            with pytest.raises(EtcdClientError) as err:
                await c.txn([], [Op.put(b"k", b"1"), Op.put(b"k", b"2")])
        assert type(err.value) is EtcdClientError and err.value.code == 3
        assert fake.hits["/v3/kv/txn"] == 1


async def test_watch_leaves_a_frozen_member(fresh: Cluster) -> None:
    """SIGSTOP the member a watch is connected to: its TCP connection stays open and silent, yet the
    watch notices (its member no longer answers a read), resumes elsewhere and sees later writes."""
    leader = fresh.leader()
    follower = next(i for i in range(len(fresh.endpoints)) if i != leader)
    others = [u for i, u in enumerate(fresh.endpoints) if i != follower]
    writer = EtcdClient(others, timeout=20)
    watcher = EtcdClient([fresh.endpoints[follower], *others], watch_idle_check=1.0, watch_probe_timeout=1.0)
    seen: list[bytes] = []
    try:
        start, _ = await writer.put(b"frozen/start", b"")

        async def watch() -> None:
            async for msg in watcher.watch(b"frozen/", prefix_end(b"frozen/"), start_revision=start):
                seen.extend(e.kv.key for e in msg.events)

        task = asyncio.create_task(watch())
        deadline = time.monotonic() + 20
        while b"frozen/start" not in seen and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert seen == [b"frozen/start"]
        fresh.pause(follower)
        try:
            await writer.put(b"frozen/after", b"v")
            deadline = time.monotonic() + 30
            while b"frozen/after" not in seen and time.monotonic() < deadline and not task.done():
                await asyncio.sleep(0.05)
            assert seen == [b"frozen/start", b"frozen/after"], seen
        finally:
            fresh.resume(follower)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    finally:
        await writer.close()
        await watcher.close()


async def test_a_read_moves_on_from_a_frozen_member(fresh: Cluster) -> None:
    """A read sent first to a SIGSTOPped member is answered by another one before the client's deadline."""
    leader = fresh.leader()
    follower = next(i for i in range(len(fresh.endpoints)) if i != leader)
    order = [fresh.endpoints[follower]] + [u for i, u in enumerate(fresh.endpoints) if i != follower]
    async with EtcdClient(order, timeout=10) as c:
        await c.put(b"frozen-read", b"1")
        fresh.pause(follower)
        try:
            got = await c.get(b"frozen-read")
        finally:
            fresh.resume(follower)
    assert got is not None and got.value == b"1"
