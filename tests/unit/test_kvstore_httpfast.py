"""The lean HTTP layer: plain unary POSTs answered itself, everything else handed to aiohttp intact.

A real listening socket on 127.0.0.1 with the fast path in front of a real aiohttp request handler;
requests are written as raw bytes so that framing, pipelining and odd requests are exactly what a
client sends.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator

import pytest
from aiohttp import web

from kvstore.httpfast import FastPath, Reply

HEADERS = (("Content-Type", "application/json"), ("X-Served-By", "fast"))


class Harness:
    def __init__(self, fast: FastPath, port: int) -> None:
        self.fast = fast
        self.port = port
        self.calls: list[bytes] = []

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            size = int((await asyncio.wait_for(reader.readuntil(b"\r\n"), 5)).strip(), 16)
            chunk = await asyncio.wait_for(reader.readexactly(size + 2), 5)
            if size == 0:
                break
            body += chunk[:-2]
    else:
        body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", "0"))), 5)
    return status, headers, body


def post(path: str, body: bytes, *extra: str) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: test", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    async def aiohttp_handler(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        return web.Response(body=b"aiohttp:" + request.method.encode() + b":" + body,
                            headers={"X-Served-By": "aiohttp"})

    low = web.Server(aiohttp_handler, access_log=None)
    holder: dict[str, Harness] = {}

    async def echo(body: bytes) -> Reply:
        holder["h"].calls.append(body)
        if body.startswith(b"sleep:"):
            await asyncio.sleep(float(body[6:]))
        if body == b"crash":
            raise RuntimeError("boom")
        if body == b"big":
            return Reply(200, b"x" * 5000, HEADERS, chunked=True)
        return Reply(201 if body == b"created" else 200, b"echo:" + body, HEADERS)

    fast = FastPath({b"/echo": echo}, low, max_body=1024, idle_timeout=0.5)
    server = await asyncio.get_running_loop().create_server(fast, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    h = Harness(fast, port)
    holder["h"] = h
    try:
        yield h
    finally:
        server.close()
        fast.close_all()
        await low.shutdown(1.0)


async def test_plain_posts_are_answered_on_one_keep_alive_connection(harness: Harness) -> None:
    reader, writer = await harness.connect()
    for body in (b"one", b"created", b""):
        writer.write(post("/echo", body))
        status, headers, got = await read_response(reader)
        assert got == b"echo:" + body
        assert status == (201 if body == b"created" else 200)
        assert headers["x-served-by"] == "fast"
        assert headers["content-type"] == "application/json"
        assert headers["content-length"] == str(len(got))
        assert "date" in headers
    assert harness.fast.handed_over == 0
    writer.close()


async def test_chunked_replies_carry_one_data_chunk(harness: Harness) -> None:
    reader, writer = await harness.connect()
    writer.write(post("/echo", b"big"))
    status, headers, body = await read_response(reader)
    assert (status, headers["transfer-encoding"], body) == (200, "chunked", b"x" * 5000)
    assert "content-length" not in headers
    writer.close()


async def test_pipelined_requests_are_answered_in_order(harness: Harness) -> None:
    reader, writer = await harness.connect()
    writer.write(post("/echo", b"sleep:0.2") + post("/echo", b"fast") + post("/echo", b"sleep:0.05"))
    bodies = [(await read_response(reader))[2] for _ in range(3)]
    assert bodies == [b"echo:sleep:0.2", b"echo:fast", b"echo:sleep:0.05"]
    writer.close()


async def test_a_request_split_into_single_bytes_is_assembled(harness: Harness) -> None:
    reader, writer = await harness.connect()
    for byte in post("/echo", b"slowly"):
        writer.write(bytes([byte]))
        await writer.drain()
    assert (await read_response(reader))[2] == b"echo:slowly"
    writer.close()


@pytest.mark.parametrize("request_bytes", [
    b"GET /echo HTTP/1.1\r\nHost: test\r\n\r\n",
    post("/other", b"abc"),
    post("/echo?x=1", b"abc"),
    b"POST /echo HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabc",
    b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    post("/echo", b"abc", "Expect: 100-continue"),
    b"POST /echo HTTP/1.1\r\nHost: test\r\n\r\n",  # no Content-Length
    post("/echo", b"abc", "Content-Length: 3"),  # twice
    post("/echo", b"abc", "Bad Name: x"),
    b"POST /echo HTTP/1.1\nHost: test\r\nContent-Length: 3\r\n\r\nabc",
    post("/echo", b"abc", "X-Nul: a\x00b"),
    post("/echo", b"abc", " folded: x"),
], ids=["get", "unknown-path", "query", "http10", "chunked-body", "expect", "no-length", "two-lengths",
        "header-name-with-space", "bare-lf", "nul-in-value", "obs-fold"])
async def test_anything_else_goes_to_aiohttp_with_its_bytes(harness: Harness, request_bytes: bytes) -> None:
    reader, writer = await harness.connect()
    writer.write(request_bytes)
    status, headers, body = await read_response(reader)
    assert harness.fast.handed_over == 1
    assert harness.calls == []
    if status == 200:
        assert headers["x-served-by"] == "aiohttp"
        assert body.startswith(b"aiohttp:")
        # The connection stays with aiohttp, later plain posts included.
        writer.write(post("/echo", b"after"))
        status, headers, body = await read_response(reader)
        assert (status, headers["x-served-by"], body) == (200, "aiohttp", b"aiohttp:POST:after")
    else:
        assert status == 400  # aiohttp's own answer to what it does not accept
    writer.close()


async def test_a_body_over_the_limit_is_never_handled_here(harness: Harness) -> None:
    reader, writer = await harness.connect()
    writer.write(post("/echo", b"y" * 2000))
    status, headers, body = await read_response(reader)
    assert harness.calls == [] and harness.fast.handed_over == 1
    assert headers["x-served-by"] == "aiohttp" and body == b"aiohttp:POST:" + b"y" * 2000
    writer.close()


async def test_fast_answers_before_a_hand_over_keep_their_order(harness: Harness) -> None:
    reader, writer = await harness.connect()
    writer.write(post("/echo", b"sleep:0.1") + b"GET /x HTTP/1.1\r\nHost: test\r\n\r\n" + post("/echo", b"z"))
    first = await read_response(reader)
    second = await read_response(reader)
    third = await read_response(reader)
    assert first[2] == b"echo:sleep:0.1"
    assert second[2] == b"aiohttp:GET:"
    assert third[2] == b"aiohttp:POST:z"
    writer.close()


async def test_connection_close_is_honoured(harness: Harness) -> None:
    reader, writer = await harness.connect()
    writer.write(post("/echo", b"bye", "Connection: close"))
    status, headers, body = await read_response(reader)
    assert (status, headers["connection"], body) == (200, "close", b"echo:bye")
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_a_crashing_handler_gets_a_500_and_the_connection_closes(harness: Harness) -> None:
    reader, writer = await harness.connect()
    writer.write(post("/echo", b"crash"))
    status, _, _ = await read_response(reader)
    assert status == 500
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_an_answer_still_reaches_a_client_that_half_closed(harness: Harness) -> None:
    reader, writer = await harness.connect()
    writer.write(post("/echo", b"sleep:0.1"))
    writer.write_eof()
    assert (await read_response(reader))[2] == b"echo:sleep:0.1"
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_idle_connections_are_closed(harness: Harness) -> None:
    reader, writer = await harness.connect()
    writer.write(post("/echo", b"once"))
    await read_response(reader)
    # idle_timeout is 0.5 s in the fixture; the close must come, bounded by the read timeout.
    assert await asyncio.wait_for(reader.read(), 5) == b""
    assert not harness.fast.connections
    writer.close()
