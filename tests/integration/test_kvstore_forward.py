"""Writes sent to followers reach the leader over its client port (kvstore/forward.py).

Real members: a follower forwards its write batches to the leader, which commits them inside its
own entries; the follower answers once it has applied them, so a serializable read on the same
follower sees the write. The forwarding endpoint is only for members (batches signed with a key of
the peer secret, answers signed back), refuses a replayed or stale batch, takes only the operations
a proposer submits, answers "not leader" on a follower, and applies a batch retried with the same
(proposer id, sequence) once.
"""

from __future__ import annotations

import base64
import time
import urllib.error
import urllib.request
from typing import Any

from kvstore import codec
from kvstore.forward import CONTENT_TYPE, FORWARD_PATH, SIGNATURE_HEADER, ForwardSigner
from tests.harness.kvcluster import KVCluster, post_json


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def metric(url: str, name: str) -> float:
    text = urllib.request.urlopen(url + "/metrics", timeout=5).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def forward_signed(url: str, body: bytes, signature: str | None,
                   signer: ForwardSigner | None = None) -> tuple[int, Any]:
    """POST a forwarded batch as it is; with ``signer``, also check the answer's signature."""
    headers = {"Content-Type": CONTENT_TYPE}
    if signature is not None:
        headers[SIGNATURE_HEADER] = signature
    req = urllib.request.Request(url + FORWARD_PATH, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status, raw, answer_sig, ctype = resp.status, resp.read(), resp.headers.get(SIGNATURE_HEADER, ""), resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        status, raw, answer_sig, ctype = exc.code, exc.read(), exc.headers.get(SIGNATURE_HEADER, ""), exc.headers.get("Content-Type", "")
    if not ctype.startswith(CONTENT_TYPE):
        return status, raw
    if signer is not None:
        assert signer.answer_ok(answer_sig, signature or "", status, raw), "answer without a valid signature"
    return status, codec.unpack(raw)


def forward_raw(url: str, batch: dict[str, Any], signer: ForwardSigner) -> tuple[int, Any]:
    """A freshly signed batch, sent now (as a follower's proposer sends it)."""
    body = codec.pack({**batch, "w": time.time()})
    return forward_signed(url, body, signer.sign_request(body), signer)


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
    signer = ForwardSigner(kv3.secret_file.read_text().strip())
    url = kv3.members[leader].url
    batch = {"c": b"test-proposer", "s": 1, "r": [put_req(b"fwd/once", b"1")], "t": 5.0}

    # Unsigned, signed with another secret, or with the static token of earlier versions: refused.
    refused = {"c": b"test-refused", "s": 1, "r": [put_req(b"fwd/refused", b"x")], "t": 5.0}
    body = codec.pack({**refused, "w": time.time()})
    assert forward_signed(url, body, None)[0] == 403
    assert forward_signed(url, body, ForwardSigner("another secret").sign_request(body))[0] == 403
    assert forward_signed(url, body, "0" * 64)[0] == 403
    # Signed, but sent (or recorded) long ago, or dated in the future: refused.
    for skew in (-120.0, 120.0):
        old = codec.pack({**refused, "w": time.time() + skew})
        assert forward_signed(url, old, signer.sign_request(old))[0] == 403
    expire = {"c": b"test-proposer", "s": 2, "r": [{"op": "lease_expire", "leases": [[1, 0]]}], "t": 5.0}
    assert forward_raw(url, expire, signer)[0] == 400
    code, reply = forward_raw(kv3.members[follower].url, batch, signer)
    assert code == 503 and reply == {"n": 1}

    body = codec.pack({**batch, "w": time.time()})
    signature = signer.sign_request(body)
    code, first = forward_signed(url, body, signature, signer)
    assert code == 200, first
    # The very same signed bytes again (a recording replayed): refused, whatever the dedup table holds.
    assert forward_signed(url, body, signature)[0] == 403
    # The same (id, sequence) in a new batch, as after an answer lost on the way back: applied once.
    code, again = forward_raw(url, batch, signer)
    assert code == 200 and again["r"][0]["revision"] == first["r"][0]["revision"]
    code, got = post_json(url + "/v3/kv/range", {"key": b64(b"fwd/once")}, 5)
    assert got["kvs"][0]["version"] == "1"
    code, got = post_json(url + "/v3/kv/range", {"key": b64(b"fwd/refused")}, 5)
    assert code == 200 and "kvs" not in got  # nothing refused above was applied


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


def test_forwarding_over_mutual_tls_with_member_certificates(tmp_path) -> None:  # type: ignore[no-untyped-def]
    procs, urls, ctx, logs = _tls_cluster(tmp_path, peer_cert=True)
    try:
        ok, forwarded = _writes_through_followers(urls, ctx)
        assert ok == 30
        assert forwarded > 0, "\n".join(p.read_text()[-2000:] for p in logs)
    finally:
        for p in procs:
            p.kill()
            p.wait(timeout=10)


def test_a_serving_only_certificate_falls_back_to_raft_forwarding(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # The leader refuses the follower's certificate (no client use): writes still succeed, through
    # pysyncobj, and the follower says why once.
    procs, urls, ctx, logs = _tls_cluster(tmp_path, peer_cert=False)
    try:
        ok, forwarded = _writes_through_followers(urls, ctx)
        assert ok == 30 and forwarded == 0
        assert any("forwarding writes to the leader" in p.read_text() for p in logs)
    finally:
        for p in procs:
            p.kill()
            p.wait(timeout=10)
