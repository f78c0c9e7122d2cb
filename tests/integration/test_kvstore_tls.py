"""The store's client port over TLS with client certificates (etcd's --cert-file/--client-cert-auth)."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from kvstore.client import EtcdClient
from pilot.certs import ensure_certificates, issue_certificate
from tests.harness.kvcluster import REPO, free_ports


@pytest.fixture
def tls_member(tmp_path: Path):
    pki = tmp_path / "pki"
    ensure_certificates(pki, hosts=["127.0.0.1"])
    issue_certificate(pki, "kvstore", hosts=["127.0.0.1"])
    issue_certificate(pki, "client", hosts=[], client=True)
    client_port, peer_port = free_ports(2)
    secret = tmp_path / "secret"
    secret.write_text("s" * 40)
    log = open(tmp_path / "m1.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "kvstore", "--name", "m1", "--data-dir", str(tmp_path / "d"),
                             "--listen-client", f"https://127.0.0.1:{client_port}",
                             "--initial-cluster", f"m1=127.0.0.1:{peer_port}", "--peer-secret-file", str(secret),
                             "--cert-file", str(pki / "kvstore.crt"), "--key-file", str(pki / "kvstore.key"),
                             "--trusted-ca-file", str(pki / "ca.crt"), "--client-cert-auth"],
                            stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    url = f"https://127.0.0.1:{client_port}"
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "client.crt"), str(pki / "client.key"))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/health", context=ctx, timeout=1) as resp:
                if resp.status == 200:
                    break
        except (OSError, urllib.error.URLError):
            time.sleep(0.1)
    try:
        yield url, pki, ctx
    finally:
        proc.kill()
        proc.wait()
        log.close()


def test_clients_need_a_ca_signed_certificate(tls_member) -> None:
    url, pki, ctx = tls_member
    anonymous = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionError, OSError)):
        urllib.request.urlopen(url + "/version", context=anonymous, timeout=3).read()
    with pytest.raises((urllib.error.URLError, ssl.SSLError)):  # and the server must be verified
        urllib.request.urlopen(url + "/version", timeout=3).read()

    async def roundtrip() -> bytes:
        client = EtcdClient([url], ssl_context=ctx)
        try:
            await client.put(b"tls/k", b"v")
            kv = await client.get(b"tls/k")
            return kv.value if kv else b""
        finally:
            await client.close()

    assert asyncio.run(roundtrip()) == b"v"


def test_one_tls_connection_carries_fast_calls_then_any_other_request(tls_member) -> None:
    """Plain unary posts are answered by the lean HTTP layer; the first other request on the same
    TLS connection moves it to aiohttp, which answers that request and every later one."""
    import base64
    import http.client
    import json

    url, _pki, ctx = tls_member
    port = int(url.rsplit(":", 1)[1])
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
    key = base64.b64encode(b"tls/same-connection").decode()

    def call(method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        conn.request(method, path, body=json.dumps(body).encode() if body is not None else None,
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()

    try:
        status, _ = call("POST", "/v3/kv/put", {"key": key, "value": base64.b64encode(b"1").decode()})
        assert status == 200
        sock = conn.sock
        status, body = call("GET", "/version")
        assert status == 200 and json.loads(body)["etcdserver"]
        status, body = call("POST", "/v3/kv/range", {"key": key})
        assert status == 200 and base64.b64decode(json.loads(body)["kvs"][0]["value"]) == b"1"
        status, body = call("POST", "/v3/kv/range", {"key": key, "limit": "x"})
        assert status == 400 and json.loads(body)["code"] == 3
        assert conn.sock is sock  # all of it on the one connection
    finally:
        conn.close()
