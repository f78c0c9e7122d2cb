"""Config loading and the REST client: verbs against the real API server, Status errors, retries on
429 / Retry-After, failover between URLs, and watch events larger than aiohttp's 128 KiB line limit."""

from __future__ import annotations

import asyncio
import base64
import socket
from pathlib import Path

import pytest
import yaml
from aiohttp import web

from apiclient.config import ClientConfig, ConfigError, from_kubeconfig, in_cluster, load_config
from apiclient.rest import CONFIGMAPS, LEASES, PODS, APIConnectionError, RESTClient, resource
from apimachinery.errors import StatusError
from tests.harness.apicluster import APICluster


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"https://127.0.0.1:{s.getsockname()[1]}"  # nothing listens there once closed


# ---------------------------------------------------------------------- config

def test_kubeconfig_from_pilot(api: APICluster) -> None:
    cfg = from_kubeconfig(api.kubeconfig)
    assert cfg.servers == (api.url(0),)
    assert cfg.token == api.token and cfg.namespace == "default"
    assert cfg.ca_data == api.certs.ca_cert.read_bytes()
    assert cfg.ssl_context() is not None


def test_kubeconfig_files_relative_paths_context_and_several_servers(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not really a cert")
    (tmp_path / "tok").write_text("secret-token\n")
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": "a",
           "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1, https://127.0.0.1:2/",
                                                  "certificate-authority": "ca.pem"}}],
           "users": [{"name": "u", "user": {"tokenFile": "tok"}}],
           "contexts": [{"name": "a", "context": {"cluster": "c", "user": "u", "namespace": "team"}},
                        {"name": "b", "context": {"cluster": "c", "user": "u"}}]}
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(doc))
    cfg = from_kubeconfig(path)
    assert cfg.servers == ("https://127.0.0.1:1", "https://127.0.0.1:2")
    assert cfg.ca_data == b"not really a cert" and cfg.bearer_token() == "secret-token"
    assert cfg.namespace == "team"
    assert from_kubeconfig(path, context="b").namespace == "default"
    assert load_config(path, servers=["https://x:1"]).servers == ("https://x:1",)
    with pytest.raises(ConfigError):
        from_kubeconfig(path, context="missing")
    with pytest.raises(ConfigError):
        from_kubeconfig(tmp_path / "nope")


def test_in_cluster(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("tok\n")
    (tmp_path / "ca.crt").write_bytes(b"ca")
    (tmp_path / "namespace").write_text("kube-system")
    cfg = in_cluster(root=tmp_path, env={"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"})
    assert cfg.servers == ("https://10.96.0.1:443",) and cfg.token == "tok" and cfg.namespace == "kube-system"
    (tmp_path / "token").write_text("rotated")
    assert cfg.bearer_token() == "rotated"  # service-account tokens rotate: read on use
    with pytest.raises(ConfigError):
        in_cluster(root=tmp_path, env={})


def test_resource_paths() -> None:
    assert PODS.path("ns", "p", "binding") == "/api/v1/namespaces/ns/pods/p/binding"
    assert PODS.path() == "/api/v1/pods"
    assert LEASES.path("kube-system", "x") == "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/x"
    assert resource("nodes").path("ignored", "n1") == "/api/v1/nodes/n1"
    assert resource("horizontalpodautoscalers", "autoscaling").version == "v2"
    with pytest.raises(KeyError):
        resource("widgets")


# ---------------------------------------------------------------------- against the API server

async def test_verbs_and_status_errors(api: APICluster) -> None:
    async with RESTClient(load_config(api.kubeconfig)) as c:
        cm = await c.create(CONFIGMAPS, {"metadata": {"name": "rest-a"}, "data": {"x": "1"}})
        assert cm["metadata"]["namespace"] == "default"  # from the kubeconfig's context
        with pytest.raises(StatusError) as exc:
            await c.create(CONFIGMAPS, {"metadata": {"name": "rest-a"}})
        assert exc.value.code == 409 and exc.value.reason == "AlreadyExists"
        assert (await c.get(CONFIGMAPS, "rest-a"))["data"] == {"x": "1"}
        await c.patch(CONFIGMAPS, "rest-a", {"data": {"y": "2"}})
        await c.patch(CONFIGMAPS, "rest-a", {"data": {"z": "3"}}, patch_type="strategic")
        await c.patch(CONFIGMAPS, "rest-a", [{"op": "add", "path": "/data/w", "value": "4"}], patch_type="json")
        applied = await c.patch(CONFIGMAPS, "rest-a", {"apiVersion": "v1", "kind": "ConfigMap",
                                                       "metadata": {"name": "rest-a"}, "data": {"v": "5"}},
                                patch_type="apply", field_manager="test")
        assert applied["data"] == {"x": "1", "y": "2", "z": "3", "w": "4", "v": "5"}
        stale = dict(cm, data={})
        with pytest.raises(StatusError) as exc:
            await c.update(CONFIGMAPS, stale)
        assert exc.value.code == 409 and exc.value.reason == "Conflict"
        for i in range(5):
            await c.create(CONFIGMAPS, {"metadata": {"name": f"rest-page-{i}", "labels": {"page": "yes"}}})
        paged = await c.list(CONFIGMAPS, namespace="default", label_selector="page=yes", limit=2)
        assert sorted(o["metadata"]["name"] for o in paged["items"]) == [f"rest-page-{i}" for i in range(5)]
        assert "continue" not in paged["metadata"]
        await c.delete(CONFIGMAPS, "rest-a", namespace="default")
        with pytest.raises(StatusError) as exc:
            await c.get(CONFIGMAPS, "rest-a", namespace="default")
        assert exc.value.code == 404 and exc.value.message == 'configmaps "rest-a" not found'
        with pytest.raises(StatusError) as exc:
            await c.get("/api/v1/namespaces/default/widgets")
        assert exc.value.code == 404


async def test_failover_to_the_next_server(api: APICluster) -> None:
    cfg = load_config(api.kubeconfig, servers=[_dead_url(), api.url(0)])
    async with RESTClient(cfg, backoff_base=0.01) as c:
        assert (await c.get("/version"))["major"] == "1"
        assert c.server == api.url(0)
    dead = load_config(api.kubeconfig, servers=[_dead_url()])
    async with RESTClient(dead, max_retries=2, backoff_base=0.01) as c:
        with pytest.raises(APIConnectionError):
            await c.get("/version")


async def test_watch_reads_events_longer_than_128_kib(api: APICluster) -> None:
    big = "x" * (300 * 1024)
    async with RESTClient(load_config(api.kubeconfig)) as c:
        listed = await c.list(CONFIGMAPS, namespace="default")
        rv = listed["metadata"]["resourceVersion"]

        async def first_event() -> dict:
            async for ev in c.watch(CONFIGMAPS, namespace="default", resource_version=rv, field_selector="metadata.name=big"):
                return ev
            raise AssertionError("watch ended")

        watcher = asyncio.create_task(first_event())
        await asyncio.sleep(0.2)
        await c.create(CONFIGMAPS, {"metadata": {"name": "big"}, "data": {"blob": big}})
        ev = await asyncio.wait_for(watcher, 10)
        assert ev["type"] == "ADDED" and len(ev["object"]["data"]["blob"]) == len(big)


async def test_watch_from_an_expired_version_raises_410(api: APICluster) -> None:
    async with RESTClient(load_config(api.kubeconfig)) as c:
        with pytest.raises(StatusError) as exc:
            async for _ in c.watch(CONFIGMAPS, resource_version="1"):
                pass
        assert exc.value.code == 410 and exc.value.reason == "Expired"


# ---------------------------------------------------------------------- retries against a stub server

async def test_429_with_retry_after_is_retried_and_writes_are_not_replayed_after_a_reset() -> None:
    calls = {"429": 0, "reset": 0}

    async def busy(request: web.Request) -> web.Response:
        calls["429"] += 1
        if calls["429"] < 3:
            return web.json_response({"kind": "Status", "status": "Failure", "reason": "TooManyRequests",
                                      "message": "slow down", "code": 429}, status=429, headers={"Retry-After": "0"})
        return web.json_response({"ok": True})

    async def reset(request: web.Request) -> web.Response:
        calls["reset"] += 1
        assert request.transport is not None
        request.transport.close()  # the connection dies with the request possibly applied
        return web.Response()

    async def always_busy(request: web.Request) -> web.Response:
        return web.json_response({"kind": "Status", "status": "Failure", "reason": "TooManyRequests",
                                  "message": "slow down", "code": 429}, status=429, headers={"Retry-After": "0"})

    app = web.Application()
    app.router.add_post("/busy", busy)
    app.router.add_post("/reset", reset)
    app.router.add_get("/always", always_busy)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with RESTClient(ClientConfig(servers=(f"http://127.0.0.1:{port}",)), max_retries=3) as c:
            assert await c.request("POST", "/busy", body={}) == {"ok": True}
            assert calls["429"] == 3
            with pytest.raises(APIConnectionError):
                await c.request("POST", "/reset", body={})
            assert calls["reset"] == 1  # a write is never sent twice after a broken connection
            with pytest.raises(StatusError) as exc:
                await c.request("GET", "/always")
            assert exc.value.code == 429 and exc.value.message == "slow down"
    finally:
        await runner.cleanup()


def test_ca_data_is_used_for_tls(api: APICluster) -> None:
    cfg = ClientConfig(servers=(api.url(0),), ca_data=base64.b64decode(base64.b64encode(api.certs.ca_cert.read_bytes())))
    ctx = cfg.ssl_context()
    assert ctx is not None and ctx.verify_mode.name == "CERT_REQUIRED"
    assert ClientConfig(servers=("http://127.0.0.1:1",)).ssl_context() is None
