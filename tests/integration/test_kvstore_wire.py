"""The etcd v3 JSON wire, byte for byte where clients depend on it (../shared/reference/etcd-json-api.md)."""

from __future__ import annotations

import base64
import http.client
import json
import time
from urllib.parse import urlsplit

import pytest

from tests.harness.kvcluster import KVCluster, post_json


def b64(s: str | bytes) -> str:
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


@pytest.fixture(scope="module")
def url(kv3: KVCluster) -> str:
    return kv3.members[kv3.leader()].url


@pytest.fixture(scope="module")
def follower_url(kv3: KVCluster) -> str:
    leader = kv3.leader()
    return kv3.members[(leader + 1) % 3].url


def call(url: str, path: str, body: object | None = None) -> tuple[int, dict]:
    return post_json(url + path, body if body is not None else {}, timeout=10)


def raw(url: str, method: str, path: str, body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    conn.request(method, path, body=body)
    resp = conn.getresponse()
    data = resp.read()
    headers = {k.lower(): v for k, v in resp.getheaders()}
    conn.close()
    return resp.status, headers, data


def test_put_range_shapes_and_omitted_zero_fields(url: str) -> None:
    code, put = call(url, "/v3/kv/put", {"key": b64("w/a"), "value": b64("1")})
    assert code == 200 and set(put) == {"header"}
    hdr = put["header"]
    assert set(hdr) == {"cluster_id", "member_id", "revision", "raft_term"}
    assert all(isinstance(v, str) for v in hdr.values())
    code, got = call(url, "/v3/kv/range", {"key": b64("w/a")})
    kv = got["kvs"][0]
    assert kv == {"key": b64("w/a"), "create_revision": hdr["revision"], "mod_revision": hdr["revision"],
                  "version": "1", "value": b64("1")}
    assert got["count"] == "1" and "more" not in got
    code, empty = call(url, "/v3/kv/range", {"key": b64("w/none")})
    assert code == 200 and set(empty) == {"header"}
    # empty value and no lease: both fields omitted
    call(url, "/v3/kv/put", {"key": b64("w/empty")})
    code, got = call(url, "/v3/kv/range", {"key": b64("w/empty")})
    assert "value" not in got["kvs"][0] and "lease" not in got["kvs"][0]


def test_prev_kv_only_when_key_existed(url: str) -> None:
    _, first = call(url, "/v3/kv/put", {"key": b64("w/p"), "value": b64("1"), "prev_kv": True})
    assert "prev_kv" not in first
    _, second = call(url, "/v3/kv/put", {"key": b64("w/p"), "value": b64("2"), "prev_kv": True})
    assert second["prev_kv"]["value"] == b64("1")


def test_each_write_bumps_revision_by_one_and_noop_delete_does_not(url: str) -> None:
    _, a = call(url, "/v3/kv/put", {"key": b64("w/rev"), "value": b64("1")})
    _, d = call(url, "/v3/kv/deleterange", {"key": b64("w/never-there")})
    assert set(d) == {"header"}  # no "deleted" when nothing was deleted
    _, b = call(url, "/v3/kv/put", {"key": b64("w/rev"), "value": b64("2")})
    assert int(b["header"]["revision"]) == int(a["header"]["revision"]) + 1


def test_versions_and_recreate(url: str) -> None:
    _, p1 = call(url, "/v3/kv/put", {"key": b64("w/life"), "value": b64("a")})
    call(url, "/v3/kv/put", {"key": b64("w/life"), "value": b64("b")})
    _, d = call(url, "/v3/kv/deleterange", {"key": b64("w/life"), "prev_kv": True})
    assert d["deleted"] == "1" and d["prev_kvs"][0]["version"] == "2"
    _, p3 = call(url, "/v3/kv/put", {"key": b64("w/life"), "value": b64("c")})
    _, got = call(url, "/v3/kv/range", {"key": b64("w/life")})
    kv = got["kvs"][0]
    assert kv["version"] == "1" and kv["create_revision"] == p3["header"]["revision"]
    # a historical read still sees the old generation
    rev2 = str(int(p1["header"]["revision"]) + 1)
    _, old = call(url, "/v3/kv/range", {"key": b64("w/life"), "revision": rev2})
    assert old["kvs"][0]["version"] == "2" and old["kvs"][0]["create_revision"] == p1["header"]["revision"]
    assert old["header"]["revision"] == got["header"]["revision"]  # header is the current revision


def test_range_prefix_limit_count_keys_only_sort(url: str) -> None:
    for i in range(5):
        call(url, "/v3/kv/put", {"key": b64(f"w/r/{i}"), "value": b64(str(i))})
    prefix = {"key": b64("w/r/"), "range_end": b64("w/r0")}
    _, all_ = call(url, "/v3/kv/range", prefix)
    assert [base64.b64decode(kv["key"]) for kv in all_["kvs"]] == [f"w/r/{i}".encode() for i in range(5)]
    _, lim = call(url, "/v3/kv/range", {**prefix, "limit": 2})
    assert len(lim["kvs"]) == 2 and lim["more"] is True and lim["count"] == "5"
    _, lim5 = call(url, "/v3/kv/range", {**prefix, "limit": "5"})
    assert "more" not in lim5
    _, cnt = call(url, "/v3/kv/range", {**prefix, "count_only": True})
    assert set(cnt) == {"header", "count"} and cnt["count"] == "5"
    _, ko = call(url, "/v3/kv/range", {**prefix, "keys_only": True})
    assert all("value" not in kv and "version" in kv for kv in ko["kvs"])
    _, desc = call(url, "/v3/kv/range", {**prefix, "sort_order": "DESCEND", "sort_target": "KEY"})
    assert [kv["key"] for kv in desc["kvs"]] == [kv["key"] for kv in reversed(all_["kvs"])]
    _, by_mod = call(url, "/v3/kv/range", {**prefix, "sort_order": 2, "sort_target": "MOD", "limit": 1})
    assert by_mod["kvs"][0]["key"] == b64("w/r/4")
    _, camel = call(url, "/v3/kv/range", {"key": b64("w/r/"), "rangeEnd": b64("w/r0"), "keysOnly": True})
    assert len(camel["kvs"]) == 5 and "value" not in camel["kvs"][0]
    _, everything = call(url, "/v3/kv/range", {"key": b64(b"\0"), "range_end": b64(b"\0"), "count_only": True})
    assert int(everything["count"]) >= 5


def test_serializable_read_on_follower(follower_url: str, url: str) -> None:
    call(url, "/v3/kv/put", {"key": b64("w/ser"), "value": b64("x")})
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        _, got = call(follower_url, "/v3/kv/range", {"key": b64("w/ser"), "serializable": True})
        if got.get("kvs"):
            break
        time.sleep(0.05)
    assert got["kvs"][0]["value"] == b64("x")


def test_txn_semantics(url: str) -> None:
    k = b64("w/t/1")
    # create-if-absent, as etcd3gw's create() sends it
    body = {"compare": [{"key": k, "result": "EQUAL", "target": "CREATE", "create_revision": 0}],
            "success": [{"request_put": {"key": k, "value": b64("v1")}}], "failure": []}
    _, first = call(url, "/v3/kv/txn", body)
    assert first["succeeded"] is True and "response_put" in first["responses"][0]
    _, second = call(url, "/v3/kv/txn", body)
    assert "succeeded" not in second  # false is omitted
    # all writes of a txn share one revision; a range after a write sees it
    _, multi = call(url, "/v3/kv/txn", {"success": [
        {"request_put": {"key": b64("w/t/2"), "value": b64("a")}},
        {"request_put": {"key": b64("w/t/3"), "value": b64("b")}},
        {"request_range": {"key": b64("w/t/2")}},
        {"request_txn": {"compare": [{"key": b64("w/t/2"), "target": "VERSION", "result": "EQUAL", "version": 1}],
                         "success": [{"request_put": {"key": b64("w/t/4"), "value": b64("c")}}]}},
    ]})
    rev = multi["header"]["revision"]
    assert multi["responses"][0]["response_put"]["header"]["revision"] == rev
    rng = multi["responses"][2]["response_range"]
    assert rng["header"]["revision"] == rev and rng["kvs"][0]["mod_revision"] == rev
    # nested compares see the state before the outer txn: w/t/2 did not exist, so version==1 is false
    nested = multi["responses"][3]["response_txn"]
    assert "succeeded" not in nested and nested["header"] == {}
    _, t4 = call(url, "/v3/kv/range", {"key": b64("w/t/4")})
    assert "kvs" not in t4
    # VALUE compares on a missing key are always false
    _, miss = call(url, "/v3/kv/txn", {"compare": [{"key": b64("w/t/none"), "target": "VALUE", "value": ""}],
                                       "success": [{"request_put": {"key": b64("w/t/x"), "value": b64("x")}}]})
    assert "succeeded" not in miss
    # mod_revision compare-and-swap, the API server's optimistic concurrency
    _, cur = call(url, "/v3/kv/range", {"key": k})
    mod = cur["kvs"][0]["mod_revision"]
    cas = {"compare": [{"key": k, "target": "MOD", "result": "EQUAL", "mod_revision": mod}],
           "success": [{"request_put": {"key": k, "value": b64("v2")}}],
           "failure": [{"request_range": {"key": k}}]}
    _, ok = call(url, "/v3/kv/txn", cas)
    _, stale = call(url, "/v3/kv/txn", cas)
    assert ok["succeeded"] is True and "succeeded" not in stale
    assert stale["responses"][0]["response_range"]["kvs"][0]["value"] == b64("v2")
    # an empty txn succeeds and writes nothing
    _, before = call(url, "/v3/kv/range", {"key": k})
    _, empty = call(url, "/v3/kv/txn", {})
    assert empty["succeeded"] is True and empty["header"]["revision"] == before["header"]["revision"]


@pytest.mark.parametrize("body,message", [
    ({"success": [{"request_put": {"key": b64("d"), "value": b64("1")}}, {"request_put": {"key": b64("d")}}]},
     "etcdserver: duplicate key given in txn request"),
    ({"success": [{"request_put": {"key": b64("d/1")}}, {"request_delete_range": {"key": b64("d/"), "range_end": b64("d0")}}]},
     "etcdserver: duplicate key given in txn request"),
    ({"success": [{"request_put": {"key": b64(f"o{i}")}} for i in range(129)]},
     "etcdserver: too many operations in txn request"),
    ({"success": [{}]}, "etcdserver: key not found"),
])
def test_txn_rejections(url: str, body: dict, message: str) -> None:
    _, before = call(url, "/v3/kv/range", {"key": b64("w/")})
    code, err = call(url, "/v3/kv/txn", body)
    assert code == 400 and err == {"error": message, "message": message, "code": 3}
    _, after = call(url, "/v3/kv/range", {"key": b64("w/")})
    assert after["header"]["revision"] == before["header"]["revision"]


def test_128_ops_are_allowed(url: str) -> None:
    code, out = call(url, "/v3/kv/txn", {"success": [{"request_put": {"key": b64(f"w/ops/{i}")}} for i in range(128)]})
    assert code == 200 and len(out["responses"]) == 128


@pytest.mark.parametrize("path,body,status,code,message", [
    ("/v3/kv/range", {}, 400, 3, "etcdserver: key is not provided"),
    ("/v3/kv/put", {"value": b64("x")}, 400, 3, "etcdserver: key is not provided"),
    ("/v3/kv/put", {"key": b64("nope/x"), "ignore_value": True}, 400, 3, "etcdserver: key not found"),
    ("/v3/kv/put", {"key": b64("x"), "value": b64("v"), "ignore_value": True}, 400, 3, "etcdserver: value is provided"),
    ("/v3/kv/put", {"key": b64("x"), "lease": 5, "ignore_lease": True}, 400, 3, "etcdserver: lease is provided"),
    ("/v3/kv/put", {"key": b64("x"), "lease": 424242}, 404, 5, "etcdserver: requested lease not found"),
    ("/v3/kv/put", {"key": "Zm9vYg"}, 400, 3, "illegal base64 data at input byte 4"),
    ("/v3/kv/put", {"key": "Zm9v-_"}, 400, 3, "illegal base64 data at input byte 4"),
    ("/v3/kv/range", {"key": b64("x"), "keys_only": "true"}, 400, 3, "json: cannot unmarshal string into Go value of type bool"),
    ("/v3/kv/range", {"key": b64("x"), "sort_order": "SIDEWAYS"}, 400, 3,
     'unknown value "SIDEWAYS" for enum etcdserverpb.RangeRequest_SortOrder'),
    ("/v3/kv/range", {"key": b64("x"), "revision": 10**12}, 400, 11, "etcdserver: mvcc: required revision is a future revision"),
    ("/v3/kv/put", {"key": 5}, 400, 3, "json: cannot unmarshal number into Go value of type []uint8"),
    ("/v3/lease/revoke", {"ID": 987654321}, 404, 5, "etcdserver: requested lease not found"),
    ("/v3/lease/grant", {"TTL": 9_000_000_001}, 400, 11, "etcdserver: too large lease TTL"),
])
def test_errors_are_etcd_shaped_and_change_nothing(url: str, path: str, body: dict, status: int, code: int, message: str) -> None:
    _, before = call(url, "/v3/kv/range", {"key": b64("x")})
    got_status, err = call(url, path, body)
    assert got_status == status
    assert err == {"error": message, "message": message, "code": code}
    _, after = call(url, "/v3/kv/range", {"key": b64("x")})
    assert after["header"]["revision"] == before["header"]["revision"]


def test_malformed_json_and_huge_bodies(url: str) -> None:
    for body, msg in ((b'{"key":', "unexpected EOF"), (b"hello", "invalid character 'h' looking for beginning of value")):
        status, headers, data = raw(url, "POST", "/v3/kv/put", body)
        assert status == 400 and json.loads(data)["message"] == msg and json.loads(data)["code"] == 3
    # 1.5 MiB + a little of value: etcd's request-size limit
    big = b64(b"x" * (1572864 + 100))
    status, _, data = raw(url, "POST", "/v3/kv/put", json.dumps({"key": b64("w/big"), "value": big}).encode())
    assert status == 400 and json.loads(data)["message"] == "etcdserver: request is too large"
    # far over gRPC's 2 MiB message limit
    huge = b64(b"x" * (3 * 1024 * 1024))
    status, _, data = raw(url, "POST", "/v3/kv/put", json.dumps({"key": b64("w/huge"), "value": huge}).encode())
    assert status == 429 and json.loads(data)["code"] == 8
    # just under the limit is stored
    ok = b64(b"y" * (1572864 - 200))
    status, _, _ = raw(url, "POST", "/v3/kv/put", json.dumps({"key": b64("w/almost"), "value": ok}).encode())
    assert status == 200
    _, got = call(url, "/v3/kv/range", {"key": b64("w/big")})
    assert "kvs" not in got


def test_http_methods_paths_and_cors(url: str) -> None:
    status, headers, data = raw(url, "GET", "/v3/kv/range")
    assert status == 405 and data == b"Method Not Allowed\n"
    assert headers["access-control-allow-origin"] == "*"
    status, headers, _ = raw(url, "OPTIONS", "/v3/kv/range")
    assert status == 200
    status, _, data = raw(url, "POST", "/v3/kv/nope", b"{}")
    assert status == 404 and data == b"Not Found\n"
    status, _, data = raw(url, "POST", "/v3/kv/lease/grant", b"{}")
    assert status == 404
    status, _, data = raw(url, "POST", "/v2/keys/x", b"{}")
    assert status == 404 and data == b"404 page not found\n"
    status, _, data = raw(url, "POST", "/v3beta/kv/range", json.dumps({"key": b64("x")}).encode())
    assert status == 200
    status, headers, data = raw(url, "GET", "/health")
    assert status == 200 and json.loads(data) == {"health": "true"}
    status, _, _ = raw(url, "POST", "/health")
    assert status == 405
    status, _, data = raw(url, "GET", "/version")
    assert json.loads(data)["etcdserver"].startswith("3.4")
    status, headers, data = raw(url, "GET", "/metrics")
    assert status == 200 and b"etcd_server_has_leader 1.0" in data and b"etcd_disk_wal_fsync_duration_seconds" in data
    # content type is ignored; an empty body means {}
    status, _, data = raw(url, "POST", "/v3/kv/range", b"")
    assert status == 400 and json.loads(data)["message"] == "etcdserver: key is not provided"


def test_big_unary_response_is_chunked(url: str) -> None:
    call(url, "/v3/kv/put", {"key": b64("w/chunky"), "value": b64(b"z" * 3000)})
    status, headers, data = raw(url, "POST", "/v3/kv/range", json.dumps({"key": b64("w/chunky")}).encode())
    assert status == 200 and headers.get("transfer-encoding") == "chunked"
    assert json.loads(data)["kvs"][0]["value"] == b64(b"z" * 3000)


def test_leases(url: str, follower_url: str) -> None:
    code, g = call(url, "/v3/lease/grant", {"TTL": 1, "ID": 0})
    assert code == 200 and g["TTL"] == "2" and int(g["ID"]) > 0  # minimum TTL is 2
    code, g2 = call(follower_url, "/v3/lease/grant", {"TTL": 60, "ID": "2000"})
    assert g2["ID"] == "2000"
    code, dup = call(url, "/v3/lease/grant", {"TTL": 60, "ID": 2000})
    assert code == 412 and dup["code"] == 9
    call(url, "/v3/kv/put", {"key": b64("w/l/a"), "value": b64("1"), "lease": "2000"})
    code, ttl = call(follower_url, "/v3/kv/lease/timetolive", {"ID": 2000, "keys": True})
    assert ttl["grantedTTL"] == "60" and 0 < int(ttl["TTL"]) <= 60 and ttl["keys"] == [b64("w/l/a")]
    code, leases = call(url, "/v3/lease/leases", {})
    assert {"ID": "2000"} in leases["leases"]
    # ignore_value keeps the value and detaches the lease unless ignore_lease
    call(url, "/v3/kv/put", {"key": b64("w/l/a"), "ignore_value": True})
    _, kv = call(url, "/v3/kv/range", {"key": b64("w/l/a")})
    assert kv["kvs"][0]["value"] == b64("1") and "lease" not in kv["kvs"][0]
    call(url, "/v3/kv/put", {"key": b64("w/l/b"), "value": b64("2"), "lease": 2000})
    code, _ = call(url, "/v3/kv/lease/revoke", {"ID": 2000})
    assert code == 200
    _, gone = call(url, "/v3/kv/range", {"key": b64("w/l/b")})
    assert "kvs" not in gone
    _, unknown = call(url, "/v3/lease/timetolive", {"ID": 424242})
    assert unknown["TTL"] == "-1" and "grantedTTL" not in unknown


def test_keepalive_stream_framing(url: str) -> None:
    _, g = call(url, "/v3/lease/grant", {"TTL": 30})
    lease = g["ID"]
    body = (json.dumps({"ID": lease}) + "\n" + json.dumps({"ID": 777777})).encode()
    status, headers, data = raw(url, "POST", "/v3/lease/keepalive", body)
    assert status == 200 and headers.get("transfer-encoding") == "chunked"
    lines = [json.loads(line) for line in data.split(b"\n") if line.strip()]
    assert lines[0]["result"]["TTL"] == "30" and lines[0]["result"]["ID"] == lease
    assert "TTL" not in lines[1]["result"]  # unknown lease: TTL 0, omitted
    status, _, data = raw(url, "POST", "/v3/lease/keepalive", b'{"ID":')
    assert status == 500 and json.loads(data)["code"] == 2


def test_compaction(url: str) -> None:
    _, a = call(url, "/v3/kv/put", {"key": b64("w/c"), "value": b64("1")})
    _, b = call(url, "/v3/kv/put", {"key": b64("w/c"), "value": b64("2")})
    rev_a, rev_b = int(a["header"]["revision"]), int(b["header"]["revision"])
    code, _ = call(url, "/v3/kv/compaction", {"revision": rev_b})
    assert code == 200
    code, err = call(url, "/v3/kv/range", {"key": b64("w/c"), "revision": rev_a})
    assert code == 400 and err["message"] == "etcdserver: mvcc: required revision has been compacted" and err["code"] == 11
    code, at = call(url, "/v3/kv/range", {"key": b64("w/c"), "revision": rev_b})
    assert code == 200 and at["kvs"][0]["value"] == b64("2")
    code, again = call(url, "/v3/kv/compaction", {"revision": rev_b})
    assert code == 400 and again["code"] == 11
    code, future = call(url, "/v3/kv/compaction", {"revision": 10**9})
    assert code == 400 and "future" in future["message"]


def watch_stream(url: str, body: bytes, until: int, timeout: float = 10.0) -> list[dict]:
    """Read chunked watch messages until ``until`` messages arrived; asserts one JSON per chunk."""
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    conn.request("POST", "/v3/watch", body=body)
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Transfer-Encoding") == "chunked"
    out: list[dict] = []
    fp = resp.fp
    deadline = time.monotonic() + timeout
    while len(out) < until and time.monotonic() < deadline:
        size = int(fp.readline().strip(), 16)
        chunk = fp.read(size)
        fp.readline()
        if chunk.strip():
            out.append(json.loads(chunk)["result"])  # every chunk is a whole JSON message
    conn.close()
    return out


def test_watch_history_filters_prev_kv_and_ids(url: str) -> None:
    _, p = call(url, "/v3/kv/put", {"key": b64("w/wh/a"), "value": b64("1")})
    start = p["header"]["revision"]
    call(url, "/v3/kv/put", {"key": b64("w/wh/a"), "value": b64("2")})
    call(url, "/v3/kv/deleterange", {"key": b64("w/wh/a")})
    body = (json.dumps({"create_request": {"key": b64("w/wh/"), "range_end": b64("w/wh0"), "start_revision": start,
                                           "prev_kv": True}}) + "\n" +
            json.dumps({"create_request": {"key": b64("w/wh/a"), "start_revision": start, "filters": ["NOPUT"],
                                           "watch_id": 7}})).encode()
    msgs = watch_stream(url, body, until=6)
    created = [m for m in msgs if m.get("created")]
    assert [m.get("watch_id") for m in created] == [None, "7"]  # id 0 is omitted
    w0 = [e for m in msgs if "watch_id" not in m and "events" in m for e in m["events"]]
    assert [e.get("type", "PUT") for e in w0] == ["PUT", "PUT", "DELETE"]
    assert w0[1]["prev_kv"]["value"] == b64("1")
    assert set(w0[2]["kv"]) == {"key", "mod_revision"}
    w7 = [e for m in msgs if m.get("watch_id") == "7" and "events" in m for e in m["events"]]
    assert [e.get("type") for e in w7] == ["DELETE"] and "prev_kv" not in w7[0]


def test_watch_compacted_start_is_cancelled(url: str) -> None:
    _, p = call(url, "/v3/kv/put", {"key": b64("w/wc"), "value": b64("1")})
    old = int(p["header"]["revision"])
    _, q = call(url, "/v3/kv/put", {"key": b64("w/wc"), "value": b64("2")})
    call(url, "/v3/kv/compaction", {"revision": int(q["header"]["revision"])})
    msgs = watch_stream(url, json.dumps({"create_request": {"key": b64("w/wc"), "start_revision": old}}).encode(), until=2)
    assert msgs[0]["created"] is True
    assert msgs[1]["canceled"] is True and int(msgs[1]["compact_revision"]) >= int(q["header"]["revision"])
    assert "revision" not in msgs[1]["header"]


def test_watch_cancel_and_progress_request(url: str) -> None:
    body = (json.dumps({"create_request": {"key": b64("w/wx")}}) + json.dumps({"progress_request": {}}) +
            json.dumps({"cancel_request": {"watch_id": 0}})).encode()
    msgs = watch_stream(url, body, until=3)
    assert msgs[0]["created"] is True
    assert msgs[1]["watch_id"] == "-1" and "revision" in msgs[1]["header"]
    assert msgs[2]["canceled"] is True


def test_watch_live_event_one_message_per_revision(url: str, follower_url: str) -> None:
    import threading

    result: list[list[dict]] = []
    t = threading.Thread(target=lambda: result.append(
        watch_stream(follower_url, json.dumps({"create_request": {"key": b64("w/live")}}).encode(), until=3)))
    t.start()
    time.sleep(0.5)
    call(url, "/v3/kv/put", {"key": b64("w/live"), "value": b64("1")})
    call(url, "/v3/kv/put", {"key": b64("w/live"), "value": b64("2")})
    t.join(timeout=15)
    msgs = result[0]
    assert msgs[0]["created"] is True
    revs = [m["header"]["revision"] for m in msgs[1:]]
    assert revs == [m["events"][0]["kv"]["mod_revision"] for m in msgs[1:]] and revs[0] < revs[1]


def test_watch_client_gone_before_created_is_not_an_error(kv_cluster_factory) -> None:
    """A watch client that resets its connection right after sending the create request leaves
    nothing to answer: the member logs no request error and keeps serving."""
    import socket
    import struct

    cluster = kv_cluster_factory(1, name="watchgone")
    member = cluster.members[0]
    body = json.dumps({"create_request": {"key": b64("gone")}}).encode()
    for _ in range(20):
        sock = socket.create_connection(("127.0.0.1", member.client_port))
        sock.sendall(b"POST /v3/watch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body) + body)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST on close
        sock.close()
    status, _ = call(member.url, "/v3/kv/put", {"key": b64("gone"), "value": b64("still serving")})
    assert status == 200
    time.sleep(0.5)
    assert "Error handling request" not in member.log_path.read_text()


def test_progress_notify(kv_cluster_factory) -> None:
    cluster = kv_cluster_factory(1, "--watch-progress-notify-interval", "0.5", name="progress")
    msgs = watch_stream(cluster.members[0].url,
                        json.dumps({"create_request": {"key": b64("p"), "progress_notify": True}}).encode(), until=3)
    assert msgs[0]["created"] is True
    assert all(set(m) == {"header"} for m in msgs[1:])


def test_maintenance_status_and_members(kv3: KVCluster) -> None:
    statuses = [call(m.url, "/v3/maintenance/status")[1] for m in kv3.members]
    assert len({s["leader"] for s in statuses}) == 1
    assert len({s["header"]["member_id"] for s in statuses}) == 3
    assert all(int(s["raftIndex"]) > 0 and s["raftTerm"] for s in statuses)
    deadline = time.monotonic() + 10
    while True:  # each member's client URL arrives through the log once it has published it
        _, members = call(kv3.members[0].url, "/v3/cluster/member/list")
        listed = {m["name"]: m.get("clientURLs") for m in members["members"]}
        if all(listed.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert "revision" not in members["header"] and len(members["members"]) == 3
    assert listed == {m.name: [m.url] for m in kv3.members}
    assert all(len(m["peerURLs"]) == 1 and m["peerURLs"][0].startswith("http://") for m in members["members"])


def test_watch_from_a_future_revision_skips_earlier_events(url: str) -> None:
    import threading

    _, cur = call(url, "/v3/kv/range", {"key": b64("w/fut")})
    target = int(cur["header"]["revision"]) + 3
    result: list[list[dict]] = []
    t = threading.Thread(target=lambda: result.append(watch_stream(
        url, json.dumps({"create_request": {"key": b64("w/fut"), "start_revision": target}}).encode(), until=2)))
    t.start()
    time.sleep(0.3)
    for i in range(4):
        call(url, "/v3/kv/put", {"key": b64("w/fut"), "value": b64(str(i))})
    t.join(timeout=15)
    msgs = result[0]
    assert msgs[0]["created"] is True
    assert [e["kv"]["mod_revision"] for e in msgs[1]["events"]] == [str(target)]
