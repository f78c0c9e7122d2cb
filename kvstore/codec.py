"""msgpack encoding of log entries and snapshots — never pickle.

A log entry is one batch of client requests (group commit)::

    {"c": <proposer id: bytes>, "s": <proposer sequence: int>, "r": [<request dict>, ...],
     "f": [[<proposer id>, <sequence>, [<request dict>, ...]], ...]}   # optional

``f`` carries batches that followers forwarded to the leader (forward.py); each keeps its
own (id, sequence), so a forwarded batch retried through another entry is still applied once.

Requests and results are plain dicts of bytes/ints/bools/lists. KeyValue records inside results
(kept in the dedup table, hence in snapshots) travel as a msgpack extension type.
"""

from __future__ import annotations

from typing import Any

import msgpack

from .mvcc import KeyValue

_EXT_KEYVALUE = 1


def _default(obj: Any) -> Any:
    if isinstance(obj, KeyValue):
        return msgpack.ExtType(_EXT_KEYVALUE, msgpack.packb(obj.to_list(), use_bin_type=True))
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"cannot encode {type(obj).__name__}")


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _EXT_KEYVALUE:
        return KeyValue.from_list(msgpack.unpackb(data, raw=False))
    return msgpack.ExtType(code, data)


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True, default=_default)


def unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=_ext_hook)


Forwarded = list[tuple[bytes, int, list[dict[str, Any]]]]


def encode_batch(client: bytes, seq: int, requests: list[dict[str, Any]],
                 forwarded: Forwarded | None = None) -> bytes:
    entry: dict[str, Any] = {"c": client, "s": seq, "r": requests}
    if forwarded:
        entry["f"] = [[c, s, r] for c, s, r in forwarded]
    return pack(entry)


def decode_batch(data: bytes) -> tuple[bytes, int, list[dict[str, Any]]]:
    entry = unpack(data)
    return entry["c"], entry["s"], entry["r"]


def decode_entry(data: bytes) -> tuple[bytes, int, list[dict[str, Any]], Forwarded]:
    """decode_batch plus the forwarded batches."""
    entry = unpack(data)
    return entry["c"], entry["s"], entry["r"], [(bytes(c), s, r) for c, s, r in entry.get("f", ())]
