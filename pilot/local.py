"""The local cluster behind ``pilot up``: its layout in the state dir, start, status and stop.

State dir (default ``./.pilot``)::

    cluster.json      ports chosen on the first ``pilot up`` (reused by later ones; the components'
                      health ports are added to a state dir from before they were kept)
    kubeconfig        admin kubeconfig (HTTPS, embedded CA, token)
    kubeconfigs/<identity>.kubeconfig   one per component identity (scheduler, controller-manager,
                      node-<name>, proxy): components never use the admin token
    pki/ tokens.csv peer-secret encryption.yaml     credentials, mode 0600
    data/kvstore-N/   store members' journals and snapshots
    logs/<name>.log   pids/<name>.pid   one per component, plus the supervisor's
"""

from __future__ import annotations

import asyncio
import http.client
import ipaddress
import json
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .certs import component_kubeconfig, ensure_cluster_secrets, ensure_identities
from .supervisor import Component, Supervisor, install_stop_signals

DEFAULT_STATE_DIR = Path(".pilot")


# identity -> (user name, groups): each component authenticates as itself (RBAC binds the defaults).
IDENTITIES: dict[str, tuple[str, list[str]]] = {
    "admin": ("admin", ["system:masters"]),
    "scheduler": ("system:kube-scheduler", []),
    "controller-manager": ("system:kube-controller-manager", []),
    "proxy": ("system:kube-proxy", []),
}


def node_identity(node: str) -> tuple[str, tuple[str, list[str]]]:
    return f"node-{node}", (f"system:node:{node}", ["system:nodes"])


SERVICE_CIDR = "127.96.0.0/16"  # ClusterIPs are loopback addresses where each node's proxy listens
KUBERNETES_SERVICE_IP = str(next(ipaddress.ip_network(SERVICE_CIDR).hosts()))  # the `kubernetes` Service's ClusterIP


@dataclass(frozen=True)
class Layout:
    state_dir: Path
    store: list[dict[str, Any]]  # name, client, peer
    api_ports: list[int]
    schedulers: int = 2
    controller_managers: int = 2
    nodes: tuple[str, ...] = ("n1", "n2")
    dns_port: int = 10053
    ingress_port: int = 8080
    ingress_tls_port: int = 8443
    node_ports: dict[str, dict[str, int]] = field(default_factory=dict)  # node -> kubelet / proxy_health
    health_ports: dict[str, int] = field(default_factory=dict)  # component -> its /healthz port (HTTP)

    def node_port(self, node: str, which: str, default: int) -> int:
        return self.node_ports.get(node, {}).get(which, default)

    def node_ip(self, node: str) -> str:
        """Every node has its own loopback address; pods get 127.<10+i>.x.y (the kubelet's pod CIDR)."""
        return f"127.0.1.{self.nodes.index(node) + 1}"

    def pod_cidr(self, node: str) -> str:
        return f"127.{10 + self.nodes.index(node)}.0.0/16"

    @property
    def api_urls(self) -> list[str]:
        return [f"https://127.0.0.1:{p}" for p in self.api_ports]

    def kubeconfig(self, identity: str) -> Path:
        return component_kubeconfig(self.state_dir, identity)

    @property
    def store_endpoints(self) -> list[str]:
        return [f"https://127.0.0.1:{m['client']}" for m in self.store]

    def store_tls(self) -> ssl.SSLContext:
        """Client TLS for talking to the store (status probes use the API servers' client cert)."""
        pki = self.state_dir / "pki"
        ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        ctx.load_cert_chain(str(pki / "apiserver-kvstore-client.crt"), str(pki / "apiserver-kvstore-client.key"))
        return ctx

    @property
    def api_url(self) -> str:
        return f"https://127.0.0.1:{self.api_ports[0]}"

    def health_port(self, name: str) -> int:
        return self.health_ports.get(name, 0)

    def components(self) -> list[Component]:
        """Every process of the cluster, in start order (store first: everything else waits on it).

        ``preload`` names what the supervisor's fork server imports once for all replicas of a kind;
        ``health`` is what ``component_health`` probes (the store and API servers are probed by URL).
        """
        py = sys.executable
        initial = ",".join(f"{m['name']}=127.0.0.1:{m['peer']}" for m in self.store)
        pki = self.state_dir / "pki"
        out = []
        for m in self.store:
            out.append(Component(m["name"], [
                py, "-m", "kvstore", "--name", m["name"], "--data-dir", str(self.state_dir / "data" / m["name"]),
                "--listen-client", f"https://127.0.0.1:{m['client']}", "--listen-peer", f"127.0.0.1:{m['peer']}",
                "--initial-cluster", initial, "--peer-secret-file", str(self.state_dir / "peer-secret"),
                "--cert-file", str(pki / "kvstore.crt"), "--key-file", str(pki / "kvstore.key"),
                "--trusted-ca-file", str(pki / "ca.crt"), "--client-cert-auth",
                "--peer-cert-file", str(pki / "kvstore.crt"), "--peer-key-file", str(pki / "kvstore.key"),
                "--peer-trusted-ca-file", str(pki / "ca.crt")],
                url=f"https://127.0.0.1:{m['client']}", preload=("kvstore.member",)))
        for i, port in enumerate(self.api_ports, 1):
            out.append(Component(f"apiserver-{i}", [
                py, "-m", "apiserver", "--etcd-servers", ",".join(self.store_endpoints),
                "--etcd-cafile", str(pki / "ca.crt"), "--etcd-certfile", str(pki / "apiserver-kvstore-client.crt"),
                "--etcd-keyfile", str(pki / "apiserver-kvstore-client.key"),
                "--bind", f"127.0.0.1:{port}", "--tls-cert-file", str(pki / "apiserver.crt"),
                "--tls-private-key-file", str(pki / "apiserver.key"),
                "--token-auth-file", str(self.state_dir / "tokens.csv"),
                "--service-account-signing-key-file", str(pki / "sa.key"),
                "--encryption-provider-config", str(self.state_dir / "encryption.yaml"),
                "--audit-log-path", str(self.state_dir / "logs" / f"audit-{i}.log"),
                "--service-cluster-ip-range", SERVICE_CIDR],
                url=f"https://127.0.0.1:{port}", health=f"https://127.0.0.1:{port}/readyz", preload=("apiserver.app",)))
        masters = ",".join(self.api_urls)
        for i in range(1, self.schedulers + 1):
            name = f"scheduler-{i}"
            out.append(Component(name, [
                py, "-m", "scheduler", "--kubeconfig", str(self.kubeconfig("scheduler")),
                "--master", masters, "--leader-elect", "--replica-name", name,
                "--bind", f"127.0.0.1:{self.health_port(name)}"],
                health=self._health_url(f"127.0.0.1:{self.health_port(name)}"), preload=("scheduler.app",)))
        for i in range(1, self.controller_managers + 1):
            name = f"controller-manager-{i}"
            # Shorter node timeouts than upstream's 40 s / 300 s suit a laptop cluster (documented).
            out.append(Component(name, [
                py, "-m", "controllers", "--kubeconfig", str(self.kubeconfig("controller-manager")),
                "--master", masters, "--leader-elect", "--replica-name", name,
                "--bind", f"127.0.0.1:{self.health_port(name)}", "--node-monitor-grace-period", "20",
                "--default-unreachable-toleration-seconds", "30", "--default-not-ready-toleration-seconds", "30"],
                health=self._health_url(f"127.0.0.1:{self.health_port(name)}"), preload=("controllers.app",)))
        for node in self.nodes:
            ip = self.node_ip(node)
            kubelet_bind = f"{ip}:{self.node_port(node, 'kubelet', 10250)}"
            out.append(Component(f"kubelet-{node}", [
                py, "-m", "kubelet", "--node-name", node, "--runtime", "process",
                "--kubeconfig", str(self.kubeconfig(f"node-{node}")), "--master", masters,
                "--root-dir", str(self.state_dir / "nodes" / node), "--bind", kubelet_bind, "--node-ip", ip,
                "--pod-cidr", self.pod_cidr(node), "--stop-pods-on-exit",
                "--cluster-dns", f"127.0.0.1:{self.dns_port}"],
                url=f"https://{kubelet_bind}", health=f"https://{kubelet_bind}/healthz", preload=("kubelet.app",)))
            proxy_health = f"{ip}:{self.node_port(node, 'proxy_health', 10256)}"
            out.append(Component(f"proxy-{node}", [
                py, "-m", "proxy", "--kubeconfig", str(self.kubeconfig("proxy")), "--master", masters,
                "--node-name", node, "--node-ip", ip, "--bind-health", proxy_health,
                *([] if node == self.nodes[0] else ["--no-lb-allocator"])],
                health=self._health_url(proxy_health), preload=("proxy.app",)))
        # `python -m proxy dns|ingress` is `pilot dns|ingress` without the CLI's imports.
        out.append(Component("dns", [
            py, "-m", "proxy", "dns", "--kubeconfig", str(self.kubeconfig("proxy")), "--master", masters,
            "--bind", f"127.0.0.1:{self.dns_port}", "--bind-health", f"127.0.0.1:{self.health_port('dns')}"],
            url=f"dns://127.0.0.1:{self.dns_port}", health=self._health_url(f"127.0.0.1:{self.health_port('dns')}"),
            preload=("proxy.dns",)))
        out.append(Component("ingress", [
            py, "-m", "proxy", "ingress", "--kubeconfig", str(self.kubeconfig("proxy")), "--master", masters,
            "--bind", f"127.0.0.1:{self.ingress_port}", "--tls-bind", f"127.0.0.1:{self.ingress_tls_port}",
            "--bind-health", f"127.0.0.1:{self.health_port('ingress')}"],
            url=f"http://127.0.0.1:{self.ingress_port}",
            health=self._health_url(f"127.0.0.1:{self.health_port('ingress')}"), preload=("proxy.ingress",)))
        return out

    @staticmethod
    def _health_url(hostport: str) -> str:
        return f"http://{hostport}/healthz"

    def health_port_names(self) -> list[str]:
        return ([f"scheduler-{i}" for i in range(1, self.schedulers + 1)]
                + [f"controller-manager-{i}" for i in range(1, self.controller_managers + 1)] + ["dns", "ingress"])


def free_ports(n: int, *, exclude: Any = ()) -> list[int]:
    """Free ports below Linux's ephemeral range (32768+), so outgoing connections of processes we
    start in the meantime cannot take them (the OS would hand out ephemeral ones for port 0).
    ``exclude``: ports already promised to someone (free now, but not for long)."""
    low, high = _ephemeral_low() - 12000, _ephemeral_low() - 1
    chosen: list[int] = []
    rnd = random.Random()
    while len(chosen) < n:
        port = rnd.randint(low, high)
        if port in chosen or port in exclude:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        chosen.append(port)
    return chosen


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def prepare(state_dir: Path, *, api_port: int = 6443, store_port: int = 23790, store_size: int = 3,
            apiservers: int = 2) -> Layout:
    """Create (or reuse) the state dir: ports, credentials, kubeconfig."""
    state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(state_dir, 0o700)
    layout_file = state_dir / "cluster.json"
    if layout_file.exists():
        data = json.loads(layout_file.read_text())
    else:
        # Port 0 means "any free port" (chosen now and kept in cluster.json for later `pilot up`s).
        first = free_ports(2 * store_size * (store_port == 0) + apiservers * (api_port == 0) + 3)
        spare = iter(first)
        data = {
            "store": [{"name": f"kvstore-{i}",
                       "client": store_port + 2 * i - 1 if store_port else next(spare),
                       "peer": store_port + 2 * i if store_port else next(spare)}
                      for i in range(1, store_size + 1)],
            "api_ports": [api_port + i if api_port else next(spare) for i in range(apiservers)],
        }
        # Kubelet and proxy health ports: free ones, so several clusters can share the node addresses.
        node_spare = iter(free_ports(4, exclude={p for m in data["store"] for p in (m["client"], m["peer"])}
                                     | set(data["api_ports"]) | set(first)))
        data["node_ports"] = {node: {"kubelet": next(node_spare), "proxy_health": next(node_spare)}
                              for node in ("n1", "n2")}
        # DNS and ingress: the usual ports when free, any free port otherwise.
        for key, default in (("dns_port", 10053), ("ingress_port", 8080), ("ingress_tls_port", 8443)):
            fallback = next(spare)
            data[key] = default if (api_port and _port_free(default)) else fallback
        busy = [p for m in data["store"] for p in (m["client"], m["peer"])] + data["api_ports"]
        taken = [p for p in busy if not _port_free(p)]
        if taken:
            raise SystemExit(f"ports already in use: {taken} (choose others with --api-port/--store-port)")
        layout_file.write_text(json.dumps(data, indent=2) + "\n")

    def make_layout() -> Layout:
        return Layout(state_dir.resolve(), data["store"], data["api_ports"], data.get("schedulers", 2),
                      data.get("controller_managers", 2), tuple(data.get("nodes", ("n1", "n2"))),
                      data.get("dns_port", 10053), data.get("ingress_port", 8080), data.get("ingress_tls_port", 8443),
                      data.get("node_ports", {}), data.get("health_ports", {}))

    layout = make_layout()
    # Health ports of the components that serve only /healthz (state dirs from before they were kept
    # get them now): fixed per cluster, so readiness and `pilot status` can probe them.
    missing = [name for name in layout.health_port_names() if name not in layout.health_ports]
    if missing:
        taken = {p for m in data["store"] for p in (m["client"], m["peer"])} | set(data["api_ports"]) \
            | {p for ports in layout.node_ports.values() for p in ports.values()} | set(layout.health_ports.values()) \
            | {layout.dns_port, layout.ingress_port, layout.ingress_tls_port}
        data["health_ports"] = {**layout.health_ports, **dict(zip(missing, free_ports(len(missing), exclude=taken)))}
        layout_file.write_text(json.dumps(data, indent=2) + "\n")
        layout = make_layout()
    ensure_cluster_secrets(state_dir, hosts=["127.0.0.1", "localhost"], api_hosts=[KUBERNETES_SERVICE_IP])
    identities = dict(IDENTITIES)
    for node in layout.nodes:
        name, identity = node_identity(node)
        identities[name] = identity
    ensure_identities(state_dir, identities, admin_server=layout.api_url, component_server=layout.api_url)
    return layout


# ---------------------------------------------------------------------- probing

_contexts: dict[tuple[str, str], ssl.SSLContext] = {}


def _context(layout: Layout, kind: str) -> ssl.SSLContext:
    """TLS contexts for probes, made once per state dir (loading them is most of a probe's CPU).

    ``api``: verifies the cluster CA; ``store``: also presents the API servers' store client
    certificate (the store's client port is mutual TLS); ``kubelet``: the kubelet's serving
    certificate is self-signed and /healthz is public, so it is not verified.
    """
    key = (str(layout.state_dir), kind)
    ctx = _contexts.get(key)
    if ctx is None:
        if kind == "store":
            ctx = layout.store_tls()
        elif kind == "kubelet":
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        else:
            ctx = ssl.create_default_context(cafile=str(layout.state_dir / "pki" / "ca.crt"))
        _contexts[key] = ctx
    return ctx


def _request(url: str, *, context: ssl.SSLContext | None = None, timeout: float = 1.0, method: str = "GET",
             body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes] | None:
    """One HTTP(S) request straight to a loopback address (no proxy settings apply); None if unreachable."""
    parsed = urllib.parse.urlsplit(url)
    conn: http.client.HTTPConnection
    if parsed.scheme == "https":
        conn = http.client.HTTPSConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=timeout,
                                           context=context)
    else:
        conn = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=timeout)
    try:
        conn.request(method, parsed.path + (f"?{parsed.query}" if parsed.query else ""), body=body,
                     headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def api_ready(layout: Layout, port: int | None = None, timeout: float = 1.0) -> bool:
    got = _request(f"https://127.0.0.1:{port or layout.api_ports[0]}/readyz", context=_context(layout, "api"),
                   timeout=timeout)
    return got is not None and got[0] == 200


def store_status(url: str, timeout: float = 1.0, context: ssl.SSLContext | None = None) -> dict[str, Any] | None:
    got = _request(url + "/v3/maintenance/status", context=context, timeout=timeout, method="POST", body=b"{}",
                   headers={"Content-Type": "application/json"})
    if got is None or got[0] != 200:
        return None
    try:
        return json.loads(got[1])
    except ValueError:
        return None


def probe(layout: Layout, comp: Component, timeout: float = 1.0) -> dict[str, Any]:
    """One component's row: its pid and health — ``ok`` only when it answers its health check:
    a store member that knows the leader, an API server whose /readyz is 200 (RBAC defaults loaded),
    any other component whose /healthz is 200."""
    pid = read_pid(layout.state_dir / "pids" / f"{comp.name}.pid")
    row: dict[str, Any] = {"name": comp.name, "pid": pid, "url": comp.url or comp.health.rsplit("/", 1)[0],
                           "health": "down", "leader": False}
    if not pid:
        return row
    if comp.name.startswith("kvstore"):
        st = store_status(comp.url, timeout=timeout, context=_context(layout, "store"))
        row["health"] = "starting"
        if st is not None:
            row["health"] = "ok" if st.get("leader") else "no leader"
            row["leader_id"] = st.get("leader")
            row["member_id"] = st.get("header", {}).get("member_id")
    elif comp.health:
        kind = "kubelet" if comp.name.startswith("kubelet") else "api"
        got = _request(comp.health, context=_context(layout, kind) if comp.health.startswith("https") else None,
                       timeout=timeout)
        row["health"] = "ok" if got is not None and got[0] == 200 else (
            "not ready" if got is not None else "starting")
    else:
        row["health"] = "ok"  # nothing to probe: alive is all we know
    return row


def cluster_ready(layout: Layout) -> bool:
    """Every component healthy and every node registered and Ready."""
    if not all(r["health"] == "ok" for r in component_health(layout, leaders=False)):
        return False
    return nodes_ready(layout)


def nodes_ready(layout: Layout, since: float | None = None) -> bool:
    """Every node Ready in the API; with ``since`` (a Unix time), Ready as reported by a kubelet
    after that time — a restarted cluster's Nodes still say Ready from before it was stopped."""
    ready = {n["name"] for n in nodes(layout) if n["ready"] == "True"
             and (since is None or (n["heartbeat"] is not None and n["heartbeat"] >= int(since)))}
    return set(layout.nodes) <= ready


def wait_ready(layout: Layout, *, timeout: float, progress: Any = None, interval: float = 0.1,
               stop: Any = None, since: float | None = None) -> bool:
    """Wait until the cluster is ready: every component healthy and every node Ready in the API
    (reported Ready after ``since``, a Unix time, when given: the start of the components).

    While starting, a component already seen healthy is not probed again (each probe costs CPU the
    starting components need); the answer is only ``True`` after one more round in which every
    component is probed and healthy and every node is Ready. ``progress(rows, ready)`` is called
    after each round (rows as :func:`probe` makes them); ``stop()`` true ends the wait early (``False``).
    """
    comps = layout.components()
    seen: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not (stop is not None and stop()):
        rows = [seen.get(c.name) or probe(layout, c) for c in comps]
        seen.update({r["name"]: r for r in rows if r["health"] == "ok"})
        if len(seen) == len(comps) and nodes_ready(layout, since):
            final = [probe(layout, c) for c in comps]
            seen = {r["name"]: r for r in final if r["health"] == "ok"}
            rows = final
            if len(seen) == len(comps):
                if progress is not None:
                    progress(rows, True)
                return True
        if progress is not None:
            progress(rows, False)
        time.sleep(interval)
    return False


# ---------------------------------------------------------------------- supervising

# Start order: what the others wait on first. The fork server imports a kind's modules when the first
# of its kind starts, one kind after the other, so the store comes first, then the API servers, then
# the kubelets (their node registration is the last step of readiness), then the rest.
START_ORDER = ("kvstore", "apiserver", "kubelet", "scheduler", "controller-manager", "proxy", "dns", "ingress")


def start_order(comp: Component) -> int:
    return next((i for i, kind in enumerate(START_ORDER) if comp.name == kind or comp.name.startswith(kind + "-")),
                len(START_ORDER))


async def supervise(layout: Layout, *, on_ready: Any = None, progress: Any = None) -> None:
    """Run every component until SIGTERM/SIGINT; the foreground of ``pilot up``."""
    pid_file = layout.state_dir / "pids" / "supervisor.pid"
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{os.getpid()}\n")
    sup = Supervisor(layout.state_dir, sorted(layout.components(), key=start_order))
    stop = asyncio.Event()
    install_stop_signals(stop)
    since = time.time()
    starting = asyncio.get_running_loop().create_task(sup.start())  # progress is shown while they start
    if on_ready is not None:
        loop = asyncio.get_running_loop()
        ready = False
        while not stop.is_set() and not ready:
            ready = await loop.run_in_executor(None, lambda: wait_ready(layout, timeout=5.0, progress=progress,
                                                                        stop=stop.is_set, since=since))
        if ready and not stop.is_set():
            on_ready()
    await starting
    await stop.wait()
    await sup.stop()
    pid_file.unlink(missing_ok=True)


def read_pid(path: Path) -> int | None:
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return pid


def start_detached(layout: Layout, *, timeout: float = 60.0, progress: Any = None) -> bool:
    """Start the supervisor in the background (unless it runs) and wait until the cluster is ready."""
    pid = read_pid(layout.state_dir / "pids" / "supervisor.pid")
    since = None  # already running: its nodes' Ready is current (the node lifecycle controller sees to that)
    if pid is None:
        since = time.time()
        (layout.state_dir / "logs").mkdir(parents=True, exist_ok=True)
        with open(layout.state_dir / "logs" / "supervisor.log", "ab") as log:
            # The supervisor itself, without the CLI's imports (typer, rich): `pilot supervise` does the same.
            subprocess.Popen([sys.executable, "-c", "import sys; from pilot.local import main_supervise; "
                              "main_supervise(sys.argv[1])", str(layout.state_dir)],
                             stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    return wait_ready(layout, timeout=timeout, progress=progress, since=since)


def main_supervise(state_dir: str) -> None:
    """Entry point of the background supervisor (``pilot up --detach``); it logs to supervisor.log."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(supervise(prepare(Path(state_dir))))


def stop(state_dir: Path, timeout: float = 20.0) -> bool:
    pids_dir = state_dir / "pids"
    sup = read_pid(pids_dir / "supervisor.pid")
    if sup is not None:
        os.kill(sup, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and read_pid(pids_dir / "supervisor.pid") is not None:
            time.sleep(0.1)
    stopped = sup is not None
    # Anything left behind (a supervisor killed with -9): stop it by its pid file.
    for pid_file in pids_dir.glob("*.pid") if pids_dir.exists() else []:
        pid = read_pid(pid_file)
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
                stopped = True
            except ProcessLookupError:
                pass
        pid_file.unlink(missing_ok=True)
    return stopped


# Leases that name the active replica of an elected component (holderIdentity "<replica>_<pid>").
ELECTION_LEASES = {"scheduler": "kube-scheduler", "controller-manager": "kube-controller-manager"}


def api_get(layout: Layout, path: str, timeout: float = 2.0) -> dict[str, Any] | None:
    """GET an API path with the admin credentials (for status reporting)."""
    import yaml

    try:
        config = yaml.safe_load((layout.state_dir / "kubeconfig").read_text())
        token = config["users"][0]["user"]["token"]
    except (OSError, KeyError, IndexError, TypeError, ValueError):
        return None
    for url in layout.api_urls:
        got = _request(url + path, context=_context(layout, "api"), timeout=timeout,
                       headers={"Authorization": f"Bearer {token}"})
        if got is None or got[0] != 200:
            continue
        try:
            return json.loads(got[1])
        except ValueError:
            continue
    return None


def component_health(layout: Layout, *, leaders: bool = True) -> list[dict[str, Any]]:
    """One row per component (see :func:`probe`); ``leader`` marks the store leader and the holders
    of the scheduler's and controller-manager's Leases (``leaders=False`` skips those lookups)."""
    rows = [probe(layout, comp) for comp in layout.components()]
    if not leaders:
        return rows
    holders = {}
    for component, lease in ELECTION_LEASES.items():
        obj = api_get(layout, f"/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{lease}")
        holder = ((obj or {}).get("spec") or {}).get("holderIdentity") or ""
        holders[component] = holder.split("_", 1)[0]
    leader_id = next((r["leader_id"] for r in rows if r.get("leader_id")), None)
    for row in rows:
        base = row["name"].rsplit("-", 1)[0]
        if base in holders and holders[base] == row["name"]:
            row["leader"] = True
        if leader_id and row.get("member_id") == leader_id:
            row["leader"] = True
    return rows


def nodes(layout: Layout) -> list[dict[str, Any]]:
    """The Nodes: name, Ready condition status, InternalIP and ``heartbeat`` (the Ready condition's
    lastHeartbeatTime as a Unix time, None if absent)."""
    from apimachinery.meta import parse_rfc3339

    lst = api_get(layout, "/api/v1/nodes") or {}
    out = []
    for node in lst.get("items", []):
        cond = next((c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), {})
        addr = next((a.get("address") for a in (node.get("status") or {}).get("addresses") or []
                     if a.get("type") == "InternalIP"), "")
        try:
            heartbeat: float | None = parse_rfc3339(cond["lastHeartbeatTime"]).timestamp()
        except (KeyError, TypeError, ValueError):
            heartbeat = None
        out.append({"name": node["metadata"]["name"], "ready": cond.get("status", "Unknown"), "address": addr,
                    "heartbeat": heartbeat})
    return out
