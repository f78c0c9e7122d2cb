"""The SPDY/3.1 codec the API server speaks to kubectl port-forward (apiserver/nodeproxy.py)."""

from __future__ import annotations

import hashlib
import zlib

from apiserver.nodeproxy import SPDY_DICTIONARY, SpdyCodec


def test_dictionary_is_the_spdy3_one() -> None:
    assert len(SPDY_DICTIONARY) == 1423
    assert hashlib.sha256(SPDY_DICTIONARY).hexdigest() == \
        "51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02"


def syn_stream(deflate: zlib._Compress, stream_id: int, headers: dict[str, str]) -> bytes:
    block = len(headers).to_bytes(4, "big") + b"".join(
        len(k).to_bytes(4, "big") + k.encode() + len(v).to_bytes(4, "big") + v.encode() for k, v in headers.items())
    payload = stream_id.to_bytes(4, "big") + bytes(6) + deflate.compress(block) + deflate.flush(zlib.Z_SYNC_FLUSH)
    return (0x80030001).to_bytes(4, "big") + b"\x00" + len(payload).to_bytes(3, "big") + payload


def test_frames_split_across_messages_and_one_zlib_context_per_session() -> None:
    client = zlib.compressobj(zdict=SPDY_DICTIONARY)
    codec = SpdyCodec()
    wire = syn_stream(client, 1, {"streamtype": "error", "port": "80", "requestid": "0"}) + \
        syn_stream(client, 3, {"streamtype": "data", "port": "80", "requestid": "0"}) + \
        SpdyCodec.data(3, b"GET / HTTP/1.0\r\n\r\n", fin=True)
    frames = codec.feed(wire[:7]) + codec.feed(wire[7:40]) + codec.feed(wire[40:])
    assert [(f[0], f[1]) for f in frames] == [("control", 1), ("control", 1), ("data", 3)]
    assert frames[1][4] == {"streamtype": "data", "port": "80", "requestid": "0"}
    assert frames[2][2] == 1 and frames[2][3] == b"GET / HTTP/1.0\r\n\r\n"


def test_replies_decode_with_the_dictionary() -> None:
    codec = SpdyCodec()
    inflate = zlib.decompressobj(zdict=SPDY_DICTIONARY)
    for stream_id in (1, 3):
        frame = codec.syn_reply(stream_id)
        assert frame[:4] == (0x80030002).to_bytes(4, "big")
        assert int.from_bytes(frame[5:8], "big") == len(frame) - 8
        assert int.from_bytes(frame[8:12], "big") == stream_id
        assert inflate.decompress(frame[12:]) == bytes(4)  # an empty header block
