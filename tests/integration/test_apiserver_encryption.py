"""Secrets are encrypted at rest: neither the store nor its data directories ever hold the value."""

from __future__ import annotations

import asyncio
import base64
import os

import time
from pathlib import Path

import pytest

from kvstore.client import EtcdClient, prefix_end
from tests.harness.apicluster import APICluster

SECRET_VALUE = "correct-horse-battery-staple-9f3e1b"
NS = "/api/v1/namespaces/default"


def _needles() -> list[bytes]:
    raw = SECRET_VALUE.encode()
    return [raw, base64.b64encode(raw), base64.b64encode(raw).rstrip(b"=")]


def test_secret_values_never_reach_the_store_in_clear(api: APICluster) -> None:
    code, secret, _ = api.request("POST", NS + "/secrets", {"metadata": {"name": "enc"}, "stringData": {"password": SECRET_VALUE}})
    assert code == 201
    code, got, _ = api.request("GET", NS + "/secrets/enc")
    assert base64.b64decode(got["data"]["password"]).decode() == SECRET_VALUE
    # update, so the value is in the history twice
    got["data"]["other"] = base64.b64encode(SECRET_VALUE.encode()).decode()
    assert api.request("PUT", NS + "/secrets/enc", got)[0] == 200

    async def dump() -> list[bytes]:
        client = EtcdClient(api.store.endpoints)
        try:
            result = await client.range(b"\x00", b"\x00")
            return [kv.value for kv in result.kvs]
        finally:
            await client.close()

    values = asyncio.run(dump())
    stored = [v for v in values if b"k8s:enc:aesgcm:v1:" in v]
    assert stored, "the secret should be stored encrypted"
    for value in values:
        for needle in _needles():
            assert needle not in value
    # a ConfigMap (not configured for encryption) is stored readable
    api.request("POST", NS + "/configmaps", {"metadata": {"name": "plain"}, "data": {"k": "visible-value"}})
    assert any(b"visible-value" in v for v in asyncio.run(dump()))

    # and nothing on disk either: journal and snapshot files of every member
    time.sleep(0.5)
    for member in api.store.members:
        for path in Path(member.data_dir).rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                for needle in _needles():
                    assert needle not in data, f"{path} holds the secret"


def test_rotation_keeps_old_objects_readable(tmp_path: Path) -> None:
    import yaml

    cluster = APICluster(tmp_path / "rot")
    try:
        cluster.start()
        cluster.request("POST", NS + "/secrets", {"metadata": {"name": "old"}, "stringData": {"k": "v1"}})
        config = yaml.safe_load(cluster.encryption_config.read_text())
        keys = config["resources"][0]["providers"][0]["aesgcm"]["keys"]
        keys.insert(0, {"name": "key2", "secret": base64.b64encode(os.urandom(32)).decode()})
        cluster.encryption_config.write_text(yaml.safe_dump(config))
        cluster.kill(0)
        cluster.start_replica(0)
        cluster.wait_ready(0)
        code, old, _ = cluster.request("GET", NS + "/secrets/old")
        assert code == 200 and base64.b64decode(old["data"]["k"]) == b"v1"
        assert cluster.request("PUT", NS + "/secrets/old", old)[0] == 200  # rewritten with key2

        async def raw() -> bytes:
            client = EtcdClient(cluster.store.endpoints)
            try:
                result = await client.range(b"/registry/secrets/default/old")
                return result.kvs[0].value
            finally:
                await client.close()

        assert asyncio.run(raw()).startswith(b"k8s:enc:aesgcm:v1:key2:")
    finally:
        cluster.close()

