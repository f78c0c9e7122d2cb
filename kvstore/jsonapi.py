"""etcd v3 JSON (grpc-gateway) encoding: parse requests into internal dicts, render results.

Wire rules (../shared/reference/etcd-json-api.md §0): proto field names or lowerCamelCase on input,
proto names on output; int64 output as decimal strings, input as number or string; bytes as padded
standard base64; enums by name or number; booleans strictly boolean; ``null`` = absent; unknown
fields ignored; every zero value omitted on output at every level.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from typing import Any

from . import errors
from .errors import EtcdError
from .mvcc import KeyValue, in_range

MAX_REQUEST_BYTES = 1572864  # etcd's --max-request-bytes default
MAX_TXN_OPS = 128
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

SORT_ORDER = {"NONE": 0, "ASCEND": 1, "DESCEND": 2}
SORT_TARGET = {"KEY": 0, "VERSION": 1, "CREATE": 2, "MOD": 3, "VALUE": 4}
COMPARE_RESULT = {"EQUAL": 0, "GREATER": 1, "LESS": 2, "NOT_EQUAL": 3}
COMPARE_TARGET = {"VERSION": 0, "CREATE": 1, "MOD": 2, "VALUE": 3, "LEASE": 4}
WATCH_FILTER = {"NOPUT": 0, "NODELETE": 1}

_B64_CHAR = re.compile(rb"[^A-Za-z0-9+/=]")


@functools.lru_cache(maxsize=256)
def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


class Reader:
    """Typed, etcd-compatible access to one decoded JSON object."""

    def __init__(self, obj: Any, size: list[int] | None = None) -> None:
        if obj is None:
            obj = {}
        if not isinstance(obj, dict):
            raise errors.bad_json(f"json: cannot unmarshal {_json_type(obj)} into Go value of type object")
        self.obj = obj
        self.size = size if size is not None else [0]

    def raw(self, name: str) -> Any:
        value = self.obj.get(name)
        if value is None:
            value = self.obj.get(_camel(name))
        return value

    def bytes(self, name: str) -> bytes:
        value = self.raw(name)
        if value is None:
            return b""
        if not isinstance(value, str):
            raise errors.bad_json(f"json: cannot unmarshal {_json_type(value)} into Go value of type []uint8")
        data = decode_b64(value)
        self.size[0] += len(data) + 4
        return data

    def int(self, name: str, default: int = 0) -> int:
        value = self.raw(name)
        if value is None:
            return default
        if isinstance(value, bool):
            raise errors.bad_json("json: cannot unmarshal bool into Go value of type int64")
        if isinstance(value, int):
            number = value
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        elif isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value):
            number = int(value)
        else:
            raise errors.bad_json(f"json: invalid use of ,string struct tag, trying to unmarshal {value!r} into int64"
                                  if isinstance(value, str) else
                                  f"json: cannot unmarshal {_json_type(value)} into Go value of type int64")
        if not INT64_MIN <= number <= INT64_MAX:
            raise errors.bad_json(f"json: cannot unmarshal number {number} into Go value of type int64")
        return number

    def bool(self, name: str) -> bool:
        value = self.raw(name)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise errors.bad_json(f"json: cannot unmarshal {_json_type(value)} into Go value of type bool")
        return value

    def enum(self, name: str, values: dict[str, int], type_name: str) -> int:
        value = self.raw(name)
        if value is None:
            return 0
        if isinstance(value, bool):
            raise errors.bad_json(f"json: cannot unmarshal bool into Go value of type {type_name}")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value in values:
            return values[value]
        raise errors.bad_json(f"unknown value {_go_quote(value)} for enum {type_name}")

    def child(self, name: str) -> Reader | None:
        value = self.raw(name)
        if value is None:
            return None
        return Reader(value, self.size)

    def list(self, name: str) -> list[Any]:
        value = self.raw(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise errors.bad_json(f"json: cannot unmarshal {_json_type(value)} into Go value of type []")
        return value


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _go_quote(value: Any) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def decode_b64(text: str) -> bytes:
    raw = text.encode("ascii", "replace")
    bad = _B64_CHAR.search(raw)
    if bad is not None:
        raise errors.bad_json(f"illegal base64 data at input byte {bad.start()}")
    if len(raw) % 4:
        raise errors.bad_json(f"illegal base64 data at input byte {len(raw) // 4 * 4}")
    try:
        return base64.b64decode(raw, validate=True)
    except binascii.Error:
        pos = raw.find(b"=")
        raise errors.bad_json(f"illegal base64 data at input byte {max(pos, 0)}") from None


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def check_size(reader: Reader) -> None:
    if reader.size[0] > MAX_REQUEST_BYTES:
        raise errors.request_too_large()


# ------------------------------------------------------------------------- requests

def parse_range(r: Reader) -> dict[str, Any]:
    req = {
        "op": "range",
        "key": r.bytes("key"),
        "range_end": r.bytes("range_end"),
        "limit": r.int("limit"),
        "revision": r.int("revision"),
        "sort_order": r.enum("sort_order", SORT_ORDER, "etcdserverpb.RangeRequest_SortOrder"),
        "sort_target": r.enum("sort_target", SORT_TARGET, "etcdserverpb.RangeRequest_SortTarget"),
        "serializable": r.bool("serializable"),
        "keys_only": r.bool("keys_only"),
        "count_only": r.bool("count_only"),
        "min_mod_revision": r.int("min_mod_revision"),
        "max_mod_revision": r.int("max_mod_revision"),
        "min_create_revision": r.int("min_create_revision"),
        "max_create_revision": r.int("max_create_revision"),
    }
    if not req["key"]:
        raise errors.key_not_provided()
    if req["limit"] < 0:
        req["limit"] = 0
    return req


def parse_put(r: Reader) -> dict[str, Any]:
    req = {
        "op": "put",
        "key": r.bytes("key"),
        "value": r.bytes("value"),
        "lease": r.int("lease"),
        "prev_kv": r.bool("prev_kv"),
        "ignore_value": r.bool("ignore_value"),
        "ignore_lease": r.bool("ignore_lease"),
    }
    if not req["key"]:
        raise errors.key_not_provided()
    if req["ignore_value"] and req["value"]:
        raise errors.value_provided()
    if req["ignore_lease"] and req["lease"]:
        raise errors.lease_provided()
    return req


def parse_delete(r: Reader) -> dict[str, Any]:
    req = {"op": "delete", "key": r.bytes("key"), "range_end": r.bytes("range_end"), "prev_kv": r.bool("prev_kv")}
    if not req["key"]:
        raise errors.key_not_provided()
    return req


def _parse_compare(r: Reader) -> dict[str, Any]:
    cmp: dict[str, Any] = {
        "result": r.enum("result", COMPARE_RESULT, "etcdserverpb.Compare_CompareResult"),
        "target": r.enum("target", COMPARE_TARGET, "etcdserverpb.Compare_CompareTarget"),
        "key": r.bytes("key"),
        "range_end": r.bytes("range_end"),
    }
    for name in ("version", "create_revision", "mod_revision", "lease"):
        if r.raw(name) is not None:
            cmp[name] = r.int(name)
    if r.raw("value") is not None:
        cmp["value"] = r.bytes("value")
    if not cmp["key"]:
        raise errors.key_not_provided()
    return cmp


def _parse_op(r: Reader) -> dict[str, Any]:
    for name, parse in (("request_range", parse_range), ("request_put", parse_put),
                        ("request_delete_range", parse_delete), ("request_txn", parse_txn)):
        child = r.child(name)
        if child is not None:
            return parse(child)
    raise errors.key_not_found()  # what etcd answers for an empty op {}


def parse_txn(r: Reader) -> dict[str, Any]:
    compare = [_parse_compare(Reader(c, r.size)) for c in r.list("compare")]
    success = [_parse_op(Reader(o, r.size)) for o in r.list("success")]
    failure = [_parse_op(Reader(o, r.size)) for o in r.list("failure")]
    if len(compare) > MAX_TXN_OPS or len(success) > MAX_TXN_OPS or len(failure) > MAX_TXN_OPS:
        raise errors.too_many_ops()
    for branch in (success, failure):
        _check_duplicate_writes(branch)
    return {"op": "txn", "compare": compare, "success": success, "failure": failure}


def _writes(ops: list[dict[str, Any]]) -> list[tuple[bytes, bytes]]:
    """Key intervals written by a branch, nested txns included (each nested branch counts)."""
    out: list[tuple[bytes, bytes]] = []
    for op in ops:
        if op["op"] == "put":
            out.append((op["key"], b""))
        elif op["op"] == "delete":
            out.append((op["key"], op.get("range_end", b"")))
        elif op["op"] == "txn":
            out.extend(_writes(op["success"]))
            out.extend(_writes(op["failure"]))
    return out


def _check_duplicate_writes(ops: list[dict[str, Any]]) -> None:
    puts: set[bytes] = set()
    deletes: list[tuple[bytes, bytes]] = []
    for op in ops:
        if op["op"] == "put":
            if op["key"] in puts:
                raise errors.duplicate_key()
            puts.add(op["key"])
        elif op["op"] == "delete":
            deletes.append((op["key"], op.get("range_end", b"")))
        elif op["op"] == "txn":
            for key, end in _writes([op]):
                if not end:
                    if key in puts:
                        raise errors.duplicate_key()
                else:
                    deletes.append((key, end))
    for key in puts:
        for start, end in deletes:
            if in_range(key, start, end):
                raise errors.duplicate_key()


def parse_compaction(r: Reader) -> dict[str, Any]:
    return {"op": "compact", "revision": r.int("revision"), "physical": r.bool("physical")}


# ------------------------------------------------------------------------ responses

def header(cluster_id: int, member_id: int, revision: int, raft_term: int) -> dict[str, str]:
    out = {"cluster_id": str(cluster_id), "member_id": str(member_id)}
    if revision:
        out["revision"] = str(revision)
    if raft_term:
        out["raft_term"] = str(raft_term)
    return out


def render_kv(kv: KeyValue, keys_only: bool = False) -> dict[str, str]:
    out = {"key": b64(kv.key)}
    if kv.create_revision:
        out["create_revision"] = str(kv.create_revision)
    if kv.mod_revision:
        out["mod_revision"] = str(kv.mod_revision)
    if kv.version:
        out["version"] = str(kv.version)
    if kv.value and not keys_only:
        out["value"] = b64(kv.value)
    if kv.lease:
        out["lease"] = str(kv.lease)
    return out


def render_event(ev: Any, with_prev: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if ev.type == 1:
        out["type"] = "DELETE"
        out["kv"] = {"key": b64(ev.kv.key), "mod_revision": str(ev.kv.mod_revision)}
    else:
        out["kv"] = render_kv(ev.kv)
    if with_prev and ev.prev_kv is not None:
        out["prev_kv"] = render_kv(ev.prev_kv)
    return out


def render_range(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    kvs = body.get("kvs")
    if kvs:
        keys_only = body.get("keys_only", False)
        out["kvs"] = [render_kv(kv, keys_only) for kv in kvs]
    if body.get("more"):
        out["more"] = True
    if body.get("count"):
        out["count"] = str(body["count"])
    return out


def render_put(body: dict[str, Any]) -> dict[str, Any]:
    return {"prev_kv": render_kv(body["prev_kv"])} if body.get("prev_kv") is not None else {}


def render_delete(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if body.get("deleted"):
        out["deleted"] = str(body["deleted"])
    if body.get("prev_kvs"):
        out["prev_kvs"] = [render_kv(kv) for kv in body["prev_kvs"]]
    return out


_RENDER_OP = {"range": ("response_range", render_range), "put": ("response_put", render_put),
              "delete": ("response_delete_range", render_delete)}


def render_txn(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if body.get("succeeded"):
        out["succeeded"] = True
    responses = []
    for kind, sub in body.get("responses", ()):
        inner_header = {"revision": str(sub["revision"])} if sub.get("revision") else {}
        if kind == "txn":
            responses.append({"response_txn": {"header": inner_header, **render_txn(sub)}})
        else:
            name, render = _RENDER_OP[kind]
            responses.append({name: {"header": inner_header, **render(sub)}})
    if responses:
        out["responses"] = responses
    return out


def render_error(err: EtcdError) -> dict[str, Any]:
    return {"error": err.message, "message": err.message, "code": err.code}
