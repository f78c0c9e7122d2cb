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
