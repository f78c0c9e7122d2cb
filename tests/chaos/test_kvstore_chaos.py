"""Chaos: concurrent CAS registers, appends and watchers while members are killed, paused and restarted.

Invariants checked afterwards:
* the register history is linearizable (tests/linearizability.py);
* every acknowledged put is read back from the cluster;
* a watcher that resumes across members saw every acknowledged write's revision, each once, in order;
* every member converges to the same revision.
"""

from __future__ import annotations

import asyncio
import base64
import random
import time
from dataclasses import dataclass, field

import aiohttp
import orjson
import pytest

from kvstore.client import EtcdClient, prefix_end
from tests.harness.kvcluster import KVCluster
from tests.linearizability import History, check

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

REGISTERS = [f"reg/{i}" for i in range(4)]


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


class Ambiguous(Exception):
    pass


class NotApplied(Exception):
    pass


@dataclass
class Workload:
    cluster: KVCluster
    history: History = field(default_factory=History)
    acked: dict[str, int] = field(default_factory=dict)  # appended key -> revision
    acked_revisions: set[int] = field(default_factory=set)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    ops: int = 0

    async def post(self, session: aiohttp.ClientSession, path: str, body: dict, write: bool) -> dict:
        url = random.choice(self.cluster.endpoints)
        try:
            async with session.post(url + path, data=orjson.dumps(body),
                                    timeout=aiohttp.ClientTimeout(total=6, sock_connect=0.5)) as resp:
                data = orjson.loads(await resp.read())
                if resp.status == 200:
                    return data
                # 500 "context deadline exceeded" is etcd's unknown outcome; other errors were refused
                # before being proposed, or are reads (e.g. 503 "request timed out" on a read).
                if write and resp.status == 500:
                    raise Ambiguous(data)
                raise NotApplied(data)
        except aiohttp.ClientConnectorError as exc:
            raise NotApplied(exc) from exc
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            if write:
                raise Ambiguous(exc) from exc
            raise NotApplied(exc) from exc

    async def register_client(self, client: int, session: aiohttp.ClientSession) -> None:
        rnd = random.Random(client)
        counter = 0
        while not self.stop.is_set():
            key = rnd.choice(REGISTERS)
            kind = rnd.choice(["read", "write", "cas", "cas"])
            counter += 1
            value = f"c{client}-{counter}"
            if kind == "read":
                tok = self.history.invoke(client, "read", key)
                try:
                    out = await self.post(session, "/v3/kv/range", {"key": b64(key)}, write=False)
                    kvs = out.get("kvs")
                    self.history.complete(tok, base64.b64decode(kvs[0]["value"]).decode() if kvs else None)
                except (Ambiguous, NotApplied):
                    self.history.fail(tok)
            elif kind == "write":
                tok = self.history.invoke(client, "write", key, value)
                try:
                    out = await self.post(session, "/v3/kv/put", {"key": b64(key), "value": b64(value)}, write=True)
                    self.acked_revisions.add(int(out["header"]["revision"]))
                    self.history.complete(tok, None)
                except Ambiguous:
                    self.history.unknown(tok)
                except NotApplied:
                    self.history.fail(tok)
            else:
                expected = await self._current(session, key)
                if expected is False:
                    continue
                tok = self.history.invoke(client, "cas", key, (expected, value))
                compare = ({"key": b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": 0}
                           if expected is None else
                           {"key": b64(key), "target": "VALUE", "result": "EQUAL", "value": b64(expected)})
                try:
                    out = await self.post(session, "/v3/kv/txn", {
                        "compare": [compare], "success": [{"request_put": {"key": b64(key), "value": b64(value)}}]},
                        write=True)
                    ok = bool(out.get("succeeded"))
                    if ok:
                        self.acked_revisions.add(int(out["header"]["revision"]))
                    self.history.complete(tok, ok)
                except Ambiguous:
                    self.history.unknown(tok)
                except NotApplied:
                    self.history.fail(tok)
            self.ops += 1

    async def _current(self, session: aiohttp.ClientSession, key: str) -> str | None | bool:
        try:
            out = await self.post(session, "/v3/kv/range", {"key": b64(key), "serializable": True}, write=False)
        except (Ambiguous, NotApplied):
            return False
        kvs = out.get("kvs")
        return base64.b64decode(kvs[0]["value"]).decode() if kvs else None

    async def appender(self, n: int, session: aiohttp.ClientSession) -> None:
        i = 0
        while not self.stop.is_set():
            key = f"ack/{n}/{i}"
            i += 1
            try:
                out = await self.post(session, "/v3/kv/put", {"key": b64(key), "value": b64(key)}, write=True)
                self.acked[key] = int(out["header"]["revision"])
                self.acked_revisions.add(int(out["header"]["revision"]))
            except (Ambiguous, NotApplied):
                await asyncio.sleep(0.05)


async def watch_all(cluster: KVCluster, start: int, seen: list[int], stop: asyncio.Event) -> None:
    client = EtcdClient(cluster.endpoints, timeout=5)
    try:
        async for msg in client.watch(b"\x00", b"\x00", start_revision=start):
            for ev in msg.events:
                if not seen or seen[-1] != ev.kv.mod_revision:
                    seen.append(ev.kv.mod_revision)
            if stop.is_set():
                return
    finally:
        await client.close()


async def run_faults(cluster: KVCluster, log: list[str]) -> None:
    loop = asyncio.get_running_loop()

    async def settle(seconds: float) -> None:
        await asyncio.sleep(seconds)

    leader = await loop.run_in_executor(None, cluster.leader, 20.0)
    log.append(f"kill -9 leader m{leader + 1}")
    cluster.kill(leader)
    await settle(2.5)
    cluster.start(leader)
    await settle(2.5)

    leader = await loop.run_in_executor(None, cluster.leader, 20.0)
    follower = (leader + 1) % cluster.size
    log.append(f"SIGSTOP follower m{follower + 1} for 3s")
    cluster.pause(follower)
    await settle(3)
    cluster.resume(follower)
    await settle(2)

    leader = await loop.run_in_executor(None, cluster.leader, 20.0)
    log.append(f"SIGSTOP leader m{leader + 1} for 3s")
    cluster.pause(leader)
    await settle(3)
    cluster.resume(leader)
    await settle(2)

    log.append("kill -9 every member, restart all")
    for i in range(cluster.size):
        cluster.kill(i)
    await settle(0.5)
    cluster.start()
    await settle(4)


async def test_linearizable_and_durable_under_faults(kv_cluster_factory) -> None:
    cluster: KVCluster = kv_cluster_factory(3, name="chaos")
    wl = Workload(cluster)
    start_rev = int(cluster.status(0)["header"]["revision"]) + 1
    seen: list[int] = []
    fault_log: list[str] = []
    watch_stop = asyncio.Event()
    async with aiohttp.ClientSession() as session:
        workers = [asyncio.create_task(wl.register_client(c, session)) for c in range(5)]
        workers += [asyncio.create_task(wl.appender(n, session)) for n in range(2)]
        watcher = asyncio.create_task(watch_all(cluster, start_rev, seen, watch_stop))
        try:
            await asyncio.sleep(2)
            await asyncio.wait_for(run_faults(cluster, fault_log), timeout=120)
            await asyncio.sleep(2)
        finally:
            wl.stop.set()
            await asyncio.wait_for(asyncio.gather(*workers, return_exceptions=True), timeout=30)

        # the cluster is whole again
        await asyncio.get_running_loop().run_in_executor(None, cluster.wait_ready, 30.0)

        # every acknowledged append reads back
        client = EtcdClient(cluster.endpoints, timeout=15)
        try:
            got = await client.range(b"ack/", prefix_end(b"ack/"))
            stored = {kv.key.decode(): kv.mod_revision for kv in got.kvs}
            lost = {k: r for k, r in wl.acked.items() if stored.get(k) != r}
            assert not lost, f"acknowledged puts lost: {sorted(lost)[:10]} (faults: {fault_log})"
            final_rev = got.revision
        finally:
            await client.close()

        # the watcher (resuming across members) saw every acknowledged revision once, in order
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (not seen or seen[-1] < max(wl.acked_revisions)):
            await asyncio.sleep(0.2)
        watch_stop.set()
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        bad = [i for i, (a, b) in enumerate(zip(seen, seen[1:])) if a >= b]
        assert not bad, f"watch revisions not strictly increasing: {[seen[max(0, i - 3):i + 4] for i in bad[:3]]}"
        missing = sorted(wl.acked_revisions - set(seen))
        assert not missing, f"watcher missed acknowledged revisions {missing[:10]}"

    # all members converge on the same revision
    deadline = time.monotonic() + 20
    revs: set[int] = set()
    while time.monotonic() < deadline:
        revs = {int(st["header"]["revision"]) for st in (cluster.status(i) for i in range(3)) if st}
        if len(revs) == 1 and revs.pop() >= final_rev:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"members did not converge: {revs}")

    ops = wl.history.ops()
    unknown = sum(1 for op in ops if op.ret is None)
    print(f"chaos: {wl.ops} register ops ({unknown} unknown outcome), {len(wl.acked)} acked appends, "
          f"{len(seen)} revisions watched; faults: {fault_log}")
    assert wl.ops > 100, f"too little work done under faults ({wl.ops} ops)"
    result = check(ops, timeout_s=60)
    assert result.ok is True, f"not linearizable on {result.key}: {result.explanation} (faults: {fault_log})"
