"""Helpers for the proxy, DNS and ingress tests (no tests here): processes, backends, API objects.

* ``loopback_net()`` picks a random 127.N.0.0/16 for the API server's ``--service-cluster-ip-range``
  and a random node address, so two test runs on one host never listen on the same address.
* ``Component`` runs ``python -m proxy [dns|ingress]`` against a test API server.
* Fixtures ``api`` (a store and API server allocating ClusterIPs from the test module's ``CIDR``),
  ``root`` (a directory for logs) and ``backend`` (make backends on the module's ``POD`` prefix,
  killed afterwards); a test module imports them and defines ``CIDR, NODE_IP, POD = loopback_net()``.
* ``Backend`` is a "pod": an aiohttp server in its own process on a loopback address (so it can be
  killed with SIGKILL mid-request), answering every request with its name as JSON, plus an
  optional UDP echo. Run as ``python -m tests.integration.test_proxy_support backend ...``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness.apicluster import APICluster
from tests.harness.kvcluster import REPO

Obj = dict[str, Any]


def wait_for(cond: Callable[[], Any], timeout: float = 30.0, what: str = "condition", interval: float = 0.05) -> Any:
    """Poll until ``cond()`` is truthy; fail after ``timeout`` seconds (a bound, not a performance claim)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = cond()
        except (OSError, ValueError, KeyError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def loopback_net() -> tuple[str, str, str]:
    """``(service CIDR, node IP, pod address prefix)``: random, disjoint loopback ranges for one test module."""
    n = random.randint(100, 199)
    return f"127.{n}.0.0/16", f"127.0.{random.randint(10, 250)}.{random.randint(2, 250)}", f"127.{n + 50}.{random.randint(0, 250)}."


_last_host: dict[str, int] = {}


def pod_ip(prefix: str) -> str:
    """The next unused address of ``prefix`` (``127.a.b.``) in this test run."""
    _last_host[prefix] = _last_host.get(prefix, 0) + 1
    return f"{prefix}{_last_host[prefix]}"


@pytest.fixture(scope="module")
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[APICluster]:
    cluster = APICluster(tmp_path_factory.mktemp("api"),
                         extra_args=("--service-cluster-ip-range", request.module.CIDR))
    cluster.start_or_close()
    yield cluster
    cluster.close()


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("net")


@pytest.fixture
def backend(request: pytest.FixtureRequest, root: Path) -> Iterator[Callable[..., Backend]]:
    """``backend(name, wait=True, udp_port=0)``: a Backend on the next address of the module's ``POD``."""
    made: list[Backend] = []

    def make(name: str, *, wait: bool = True, **kw: Any) -> Backend:
        b = Backend(name, pod_ip(request.module.POD), root=root, **kw)
        made.append(b)
        return b.wait_ready() if wait else b

    yield make
    for b in made:
        b.kill()


def free_port_on(ip: str) -> int:
    with socket.socket() as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


def port_open(ip: str, port: int) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=0.5):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------------- processes

class Component:
    """``python -m proxy <command> --kubeconfig ... <args>`` with its log in a file; SIGTERM then SIGKILL.

    ``module`` runs another component instead (``python -m <module> --kubeconfig ... <args>``, health
    on ``--bind``), e.g. the scheduler or the controller-manager.
    """

    def __init__(self, api: APICluster, root: Path, command: str, *args: str, health: str,
                 module: str = "proxy") -> None:
        self.api, self.root, self.command, self.args, self.health = api, root, command, args, health
        self.module = module
        self.log_path = root / f"{command}-{os.getpid()}-{time.monotonic_ns()}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        log = open(self.log_path, "ab")
        head = ["-m", "proxy", self.command] if self.module == "proxy" else ["-m", self.module]
        health = "--bind-health" if self.module == "proxy" else "--bind"
        self.proc = subprocess.Popen(
            [sys.executable, *head, "--kubeconfig", str(self.api.kubeconfig), health, self.health, *self.args],
            stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        log.close()

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://{self.health}{path}", timeout=5) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError:
            return 0, ""

    def wait_ready(self, timeout: float = 30) -> None:
        try:
            wait_for(lambda: self.get("/readyz")[0] == 200, timeout, f"{self.command} ready")
        except AssertionError:
            print(self.logs())
            raise

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")[-8000:] if self.log_path.exists() else ""

    def records(self) -> list[Obj]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


class Backend:
    """A pod: an HTTP server (and optional UDP echo) in its own process on ``ip:port``."""

    def __init__(self, name: str, ip: str, port: int = 8080, *, udp_port: int = 0, root: Path | None = None) -> None:
        self.name, self.ip, self.port, self.udp_port = name, ip, port, udp_port
        out = open(root / f"backend-{name}.log", "ab") if root else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.test_proxy_support", "backend", "--name", name, "--ip", ip,
             "--port", str(port), "--udp-port", str(udp_port)],
            stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        if root:
            out.close()  # type: ignore[union-attr]

    def wait_ready(self, timeout: float = 20) -> Backend:
        wait_for(lambda: self.proc.poll() is None and port_open(self.ip, self.port), timeout, f"backend {self.name}")
        return self

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        """Graceful: stop listening, finish in-flight requests, exit."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def start_backends(specs: list[tuple[str, str]], **kw: Any) -> list[Backend]:
    backends = [Backend(name, ip, **kw) for name, ip in specs]
    for b in backends:
        b.wait_ready()
    return backends


# ---------------------------------------------------------------------- API objects

def must(result: tuple[int, Any, dict[str, str]], *ok: int) -> Any:
    status, body, _ = result
    if status not in (ok or (200, 201)):
        raise AssertionError(f"API answered {status}: {body}")
    return body


def create_service(api: APICluster, ns: str, name: str, ports: list[Obj], **spec: Any) -> Obj:
    body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"app": name}, "ports": ports, **spec}}
    return must(api.request("POST", f"/api/v1/namespaces/{ns}/services", body))


def ensure_namespace(api: APICluster, ns: str) -> None:
    must(api.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
         201, 409)


def endpoint(ip: str, *, ready: bool = True, terminating: bool = False, hostname: str = "") -> Obj:
    ep: Obj = {"addresses": [ip], "conditions": {"ready": ready, "serving": ready or terminating,
                                                 "terminating": terminating}}
    if hostname:
        ep["hostname"] = hostname
    return ep


def put_slice(api: APICluster, ns: str, service: str, endpoints: list[Obj], ports: list[Obj],
              name: str | None = None) -> Obj:
    """Create or replace the EndpointSlice ``name`` (default ``<service>-test``) of ``service``."""
    name = name or f"{service}-test"
    path = f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices"
    body: Obj = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                 "metadata": {"name": name, "namespace": ns, "labels": {"kubernetes.io/service-name": service}},
                 "addressType": "IPv4", "ports": ports, "endpoints": endpoints}
    for _ in range(10):
        status, current, _ = api.request("GET", f"{path}/{name}")
        if status == 404:
            status, created, _ = api.request("POST", path, body)
            if status == 201:
                return created
        else:
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            status, updated, _ = api.request("PUT", f"{path}/{name}", body)
            if status == 200:
                return updated
    raise AssertionError(f"could not write EndpointSlice {ns}/{name}")


def get_json(url: str, timeout: float = 5.0, headers: dict[str, str] | None = None) -> Obj:
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def who(url: str, timeout: float = 5.0, headers: dict[str, str] | None = None) -> str:
    """The name of the backend that answered a new connection to ``url``."""
    return str(get_json(url, timeout, headers)["name"])


# ---------------------------------------------------------------------- the backend process

def _backend_main(argv: list[str]) -> None:
    from aiohttp import web

    p = argparse.ArgumentParser()
    p.add_argument("--name", required=True)
    p.add_argument("--ip", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--udp-port", type=int, default=0)
    args = p.parse_args(argv)

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/stream"):
            chunks = int(request.query.get("chunks", "10"))
            resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
            await resp.prepare(request)
            for i in range(chunks):
                await resp.write(bytes([i % 256]) * 65536)
            await resp.write_eof()
            return resp
        size = 0
        digest = 0
        async for chunk in request.content.iter_any():
            size += len(chunk)
            digest = (digest + sum(chunk)) % (1 << 32)
        if request.path.startswith("/slow"):
            await asyncio.sleep(float(request.query.get("s", "0.2")))
        return web.json_response({"name": args.name, "method": request.method, "path": request.path_qs,
                                  "headers": {k: v for k, v in request.headers.items()}, "size": size,
                                  "sum": digest})

    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: Any) -> None:
            self.transport.sendto(f"{args.name}:".encode() + data, addr)

    async def main() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=10)
        await runner.setup()
        site = web.TCPSite(runner, args.ip, args.port, reuse_address=True)
        await site.start()
        if args.udp_port:
            await asyncio.get_running_loop().create_datagram_endpoint(Echo, local_addr=(args.ip, args.udp_port))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(main())


if __name__ == "__main__":
    if sys.argv[1:2] == ["backend"]:
        _backend_main(sys.argv[2:])
