"""Writes sent to followers reach the leader over its client port (kvstore/forward.py).

Real members: a follower forwards its write batches to the leader, which commits them inside its
own entries; the follower answers once it has applied them, so a serializable read on the same
follower sees the write. The forwarding endpoint is only for members (peer-secret token), only for
the operations a proposer submits, answers "not leader" on a follower, and applies a batch retried
with the same (proposer id, sequence) once.
"""

from __future__ import annotations

import base64
import time
import urllib.error
import urllib.request
from typing import Any

from kvstore import codec
from kvstore.forward import CONTENT_TYPE, FORWARD_PATH, TOKEN_HEADER, forward_token
from tests.harness.kvcluster import KVCluster, post_json


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def metric(url: str, name: str) -> float:
    text = urllib.request.urlopen(url + "/metrics", timeout=5).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def forward_raw(url: str, body: dict[str, Any], token: str | None) -> tuple[int, Any]:
    headers = {"Content-Type": CONTENT_TYPE}
    if token is not None:
        headers[TOKEN_HEADER] = token
    req = urllib.request.Request(url + FORWARD_PATH, data=codec.pack(body), method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, codec.unpack(resp.read())
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, codec.unpack(raw) if exc.headers.get("Content-Type", "").startswith(CONTENT_TYPE) else raw


def put_req(key: bytes, value: bytes) -> dict[str, Any]:
    return {"op": "put", "key": key, "value": value, "lease": 0, "prev_kv": False,
            "ignore_value": False, "ignore_lease": False}


def wait_forwarding(kv3: KVCluster, follower: int, leader: int, timeout: float = 20.0) -> None:
    """Members publish their client URLs at start; until the leader's is applied, followers use Raft."""
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


def test_forward_endpoint_is_for_members_and_applies_a_batch_once(kv3: KVCluster) -> None:
    leader = kv3.leader()
    follower = (leader + 1) % kv3.size
    assert kv3.secret_file is not None
    token = forward_token(kv3.secret_file.read_text().strip())
    url = kv3.members[leader].url
    batch = {"c": b"test-proposer", "s": 1, "r": [put_req(b"fwd/once", b"1")], "t": 5.0}

    assert forward_raw(url, batch, None)[0] == 403
    assert forward_raw(url, batch, "0" * 64)[0] == 403
    expire = {"c": b"test-proposer", "s": 2, "r": [{"op": "lease_expire", "leases": [[1, 0]]}], "t": 5.0}
    assert forward_raw(url, expire, token)[0] == 400
    code, reply = forward_raw(kv3.members[follower].url, batch, token)
    assert code == 503 and reply == {"n": 1}

    code, first = forward_raw(url, batch, token)
    assert code == 200, first
    # The same (id, sequence) again, as after an answer lost on the way back: applied once.
    code, again = forward_raw(url, batch, token)
    assert code == 200 and again["r"][0]["revision"] == first["r"][0]["revision"]
    code, got = post_json(url + "/v3/kv/range", {"key": b64(b"fwd/once")}, 5)
    assert got["kvs"][0]["version"] == "1"
