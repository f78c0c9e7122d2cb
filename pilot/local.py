"""The local cluster behind ``pilot up``: its layout in the state dir, start, status and stop.

State dir (default ``./.pilot``)::

    cluster.json      ports chosen on the first ``pilot up`` (reused by later ones)
    kubeconfig        admin kubeconfig (HTTPS, embedded CA, token)
    kubeconfigs/<identity>.kubeconfig   one per component identity (scheduler, controller-manager,
                      node-<name>, proxy): components never use the admin token
    pki/ tokens.csv peer-secret encryption.yaml     credentials, mode 0600
    data/kvstore-N/   store members' journals and snapshots
    logs/<name>.log   pids/<name>.pid   one per component, plus the supervisor's
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
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

    def components(self) -> list[Component]:
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
                "--trusted-ca-file", str(pki / "ca.crt"), "--client-cert-auth"],
                url=f"https://127.0.0.1:{m['client']}"))
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
                url=f"https://127.0.0.1:{port}"))
        for i in range(1, self.schedulers + 1):
            out.append(Component(f"scheduler-{i}", [
                py, "-m", "scheduler", "--kubeconfig", str(self.kubeconfig("scheduler")),
                "--master", ",".join(self.api_urls), "--leader-elect", "--replica-name", f"scheduler-{i}",
                "--bind", "127.0.0.1:0"]))
        masters = ",".join(self.api_urls)
        for i in range(1, self.controller_managers + 1):
            # Shorter node timeouts than upstream's 40 s / 300 s suit a laptop cluster (documented).
            out.append(Component(f"controller-manager-{i}", [
                py, "-m", "controllers", "--kubeconfig", str(self.kubeconfig("controller-manager")),
                "--master", masters, "--leader-elect", "--replica-name", f"controller-manager-{i}",
                "--bind", "127.0.0.1:0", "--node-monitor-grace-period", "20",
                "--default-unreachable-toleration-seconds", "30", "--default-not-ready-toleration-seconds", "30"]))
        for node in self.nodes:
            ip = self.node_ip(node)
            out.append(Component(f"kubelet-{node}", [
                py, "-m", "kubelet", "--node-name", node, "--runtime", "process",
                "--kubeconfig", str(self.kubeconfig(f"node-{node}")), "--master", masters,
                "--root-dir", str(self.state_dir / "nodes" / node), "--bind", f"{ip}:{self.node_port(node, 'kubelet', 10250)}", "--node-ip", ip,
                "--pod-cidr", self.pod_cidr(node), "--stop-pods-on-exit",
                "--cluster-dns", f"127.0.0.1:{self.dns_port}"]))
            out.append(Component(f"proxy-{node}", [
                py, "-m", "proxy", "--kubeconfig", str(self.kubeconfig("proxy")), "--master", masters,
                "--node-name", node, "--node-ip", ip,
                "--bind-health", f"{ip}:{self.node_port(node, 'proxy_health', 10256)}",
                *([] if node == self.nodes[0] else ["--no-lb-allocator"])]))
        out.append(Component("dns", [
            py, "-m", "pilot", "dns", "--kubeconfig", str(self.kubeconfig("proxy")), "--master", masters,
            "--bind", f"127.0.0.1:{self.dns_port}", "--bind-health", "127.0.0.1:0"], url=f"dns://127.0.0.1:{self.dns_port}"))
        out.append(Component("ingress", [
            py, "-m", "pilot", "ingress", "--kubeconfig", str(self.kubeconfig("proxy")), "--master", masters,
            "--bind", f"127.0.0.1:{self.ingress_port}", "--tls-bind", f"127.0.0.1:{self.ingress_tls_port}",
            "--bind-health", "127.0.0.1:0"], url=f"http://127.0.0.1:{self.ingress_port}"))
        return out


def free_ports(n: int) -> list[int]:
    """Free ports below Linux's ephemeral range (32768+), so outgoing connections of processes we
    start in the meantime cannot take them (the OS would hand out ephemeral ones for port 0)."""
    low, high = _ephemeral_low() - 12000, _ephemeral_low() - 1
    chosen: list[int] = []
    rnd = random.Random()
    while len(chosen) < n:
        port = rnd.randint(low, high)
        if port in chosen:
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
        spare = iter(free_ports(2 * store_size * (store_port == 0) + apiservers * (api_port == 0) + 3))
        data = {
            "store": [{"name": f"kvstore-{i}",
                       "client": store_port + 2 * i - 1 if store_port else next(spare),
                       "peer": store_port + 2 * i if store_port else next(spare)}
                      for i in range(1, store_size + 1)],
            "api_ports": [api_port + i if api_port else next(spare) for i in range(apiservers)],
        }
        # Kubelet and proxy health ports: free ones, so several clusters can share the node addresses.
        node_spare = iter(free_ports(4))
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
    layout = Layout(state_dir.resolve(), data["store"], data["api_ports"], data.get("schedulers", 2),
                    data.get("controller_managers", 2), tuple(data.get("nodes", ("n1", "n2"))),
                    data.get("dns_port", 10053), data.get("ingress_port", 8080), data.get("ingress_tls_port", 8443),
                    data.get("node_ports", {}))
    ensure_cluster_secrets(state_dir, hosts=["127.0.0.1", "localhost"])
    identities = dict(IDENTITIES)
    for node in layout.nodes:
        name, identity = node_identity(node)
        identities[name] = identity
    ensure_identities(state_dir, identities, admin_server=layout.api_url, component_server=layout.api_url)
    return layout


def api_ready(layout: Layout, port: int | None = None, timeout: float = 1.0) -> bool:
    ctx = ssl.create_default_context(cafile=str(layout.state_dir / "pki" / "ca.crt"))
    url = f"https://127.0.0.1:{port or layout.api_ports[0]}/readyz"
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=timeout) as resp:
            return resp.status == 200
    except (OSError, urllib.error.URLError):
        return False


def store_status(url: str, timeout: float = 1.0, context: ssl.SSLContext | None = None) -> dict[str, Any] | None:
    req = urllib.request.Request(url + "/v3/maintenance/status", data=b"{}", method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
            return json.loads(resp.read())
    except (OSError, urllib.error.URLError, ValueError):
        return None


def cluster_ready(layout: Layout) -> bool:
    """Every API server ready and every node registered and Ready."""
    if not all(api_ready(layout, port) for port in layout.api_ports):
        return False
    ready = {n["name"] for n in nodes(layout) if n["ready"] == "True"}
    return set(layout.nodes) <= ready


# ---------------------------------------------------------------------- supervising

async def supervise(layout: Layout, *, on_ready: Any = None) -> None:
    """Run every component until SIGTERM/SIGINT; the foreground of ``pilot up``."""
    pid_file = layout.state_dir / "pids" / "supervisor.pid"
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{os.getpid()}\n")
    sup = Supervisor(layout.state_dir, layout.components())
    stop = asyncio.Event()
    install_stop_signals(stop)
    await sup.start()
    if on_ready is not None:
        loop = asyncio.get_running_loop()
        while not stop.is_set() and not await loop.run_in_executor(None, cluster_ready, layout):
            await asyncio.sleep(0.1)
        if not stop.is_set():
            on_ready()
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
    pid = read_pid(layout.state_dir / "pids" / "supervisor.pid")
    if pid is None:
        log = open(layout.state_dir / "logs" / "supervisor.log", "ab") if (layout.state_dir / "logs").exists() else None
        if log is None:
            (layout.state_dir / "logs").mkdir(parents=True, exist_ok=True)
            log = open(layout.state_dir / "logs" / "supervisor.log", "ab")
        subprocess.Popen([sys.executable, "-m", "pilot", "supervise", "--state-dir", str(layout.state_dir)],
                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if progress is not None:
            progress(component_health(layout))
        if cluster_ready(layout):
            return True
        time.sleep(0.2)
    return False


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
    ctx = ssl.create_default_context(cafile=str(layout.state_dir / "pki" / "ca.crt"))
    for url in layout.api_urls:
        req = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=timeout) as resp:
                return json.loads(resp.read())
        except (OSError, urllib.error.URLError, ValueError):
            continue
    return None


def component_health(layout: Layout) -> list[dict[str, Any]]:
    rows = []
    leader_id = None
    holders = {}
    for component, lease in ELECTION_LEASES.items():
        obj = api_get(layout, f"/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{lease}")
        holder = ((obj or {}).get("spec") or {}).get("holderIdentity") or ""
        holders[component] = holder.split("_", 1)[0]
    for comp in layout.components():
        pid = read_pid(layout.state_dir / "pids" / f"{comp.name}.pid")
        row: dict[str, Any] = {"name": comp.name, "pid": pid, "url": comp.url, "health": "down", "leader": False}
        if comp.name.startswith("kvstore") and pid:
            st = store_status(comp.url, context=layout.store_tls())
            if st is not None:
                row["health"] = "ok" if st.get("leader") else "no leader"
                leader_id = st.get("leader", leader_id)
                row["member_id"] = st["header"]["member_id"]
        elif comp.name.startswith("apiserver") and pid:
            row["health"] = "ok" if api_ready(layout, int(comp.url.rsplit(":", 1)[1])) else "not ready"
        elif pid:
            row["health"] = "ok"  # alive; elected components are marked by their Lease below
        base = comp.name.rsplit("-", 1)[0]
        if base in holders and holders[base] == comp.name:
            row["leader"] = True
        rows.append(row)
    for row in rows:
        if leader_id and row.get("member_id") == leader_id:
            row["leader"] = True
    return rows


def nodes(layout: Layout) -> list[dict[str, str]]:
    lst = api_get(layout, "/api/v1/nodes") or {}
    out = []
    for node in lst.get("items", []):
        ready = next((c.get("status") for c in (node.get("status") or {}).get("conditions") or []
                      if c.get("type") == "Ready"), "Unknown")
        addr = next((a.get("address") for a in (node.get("status") or {}).get("addresses") or []
                     if a.get("type") == "InternalIP"), "")
        out.append({"name": node["metadata"]["name"], "ready": ready, "address": addr})
    return out
