"""docker compose: the same topology as containers; a Deployment's pods run as real Docker containers,
reach Services by ClusterIP and NodePort, and come back when one is killed; the chaos suite's faults
on compose.

Faults: kill -9 of the store leader and of an API server; then, under a writer and a watcher through
the published API server, a store member frozen for 20 s (docker pause) and one cut from the network
for 15 s; the active scheduler and controller-manager killed together (a scale-up must still happen); a
kubelet held down (its pods are replaced on the other node); every container killed at once.
Nothing acknowledged may be lost, the watch must stay in order, the Deployment and both nodes must
come back.

Runs where a Docker engine and compose v2 answer (`.ci/run` sets them up through
scripts/ensure-docker.sh); skipped with the reason otherwise. The pods run the base image the
compose image is built from (``BASE_IMAGE``, present on the engine) with a command, so nothing has
to be pulled; an image that is neither present nor pullable must end as ErrImagePull/ImagePullBackOff.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness.kvcluster import REPO, free_ports

# Building the image (pip install inside it) takes minutes: more than the suite's default timeout.
pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.timeout(1500)]

BASE_IMAGE = os.environ.get("BASE_IMAGE", "python:3.11-slim")


def _docker_ok() -> str | None:
    if shutil.which("docker") is None:
        return "docker CLI not installed"
    if subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode != 0:
        return "no Docker engine answers"
    if subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30).returncode != 0:
        return "docker compose v2 is not installed"
    if subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True, timeout=30).returncode != 0:
        return f"base image {BASE_IMAGE} is not available (run scripts/ensure-docker.sh)"
    return None


SKIP = _docker_ok()


def docker(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: {result.stdout}\n{result.stderr}")
    return result


@pytest.fixture
def compose(tmp_path: Path):
    if SKIP:
        pytest.skip(SKIP)
    project = f"pilothouse-test-{os.getpid()}"
    # Our own image tag: another checkout building pilothouse:latest at the same time cannot swap it.
    image = f"{project}:latest"
    kubelets = tmp_path / "kubelets"
    port, port2 = free_ports(2)
    port3 = free_ports(1)[0]
    env = {**os.environ, "PILOT_STATE_DIR": str(tmp_path / "state"), "PILOT_API_PORT": str(port),
           "PILOT_API_PORT_2": str(port2), "PILOT_INGRESS_PORT": str(port3),
           "PILOT_KUBELET_DIR": str(kubelets), "PILOT_IMAGE": image, "BASE_IMAGE": BASE_IMAGE}

    def run(*args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(["docker", "compose", "-p", project, "-f", str(REPO / "docker-compose.yml"), *args],
                                capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
        if check and result.returncode != 0:
            raise AssertionError(f"docker compose {' '.join(args)}: {result.stdout}\n{result.stderr}")
        return result

    run("build")
    try:
        yield run, tmp_path / "state", project, kubelets, port3
    finally:
        logs = run("logs", "--no-color", "--tail", "30", check=False).stdout
        run("down", "-v", "--remove-orphans", timeout=300, check=False)
        # The kubelets remove their pods when stopped; whatever a killed one left goes here.
        for node in ("kubelet-1", "kubelet-2"):
            left = docker("ps", "-aq", "-f", f"label=io.pilothouse.kubelet.root-dir={kubelets / node}",
                          check=False).stdout.split()
            if left:
                docker("rm", "-f", *left, check=False)
        docker("network", "rm", f"{project}_default", check=False)
        docker("image", "rm", image, check=False)
        print(logs[-6000:])


def kubectl(state: Path, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["kubectl", "--kubeconfig", str(state / "kubeconfig"), "--cache-dir", str(state / "kc"),
                             *args], capture_output=True, text=True, timeout=60, input=input)
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)}: {result.stderr}")
    return result


def wait_for(check, timeout: float = 120.0, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1)
    raise AssertionError(f"{what}: not reached in {timeout:.0f} s")


def store_leader(run: Any) -> str:
    """The compose service of the store's leader, asked of kvstore-1 (its client port is mutual TLS)."""
    probe = ("import json, ssl, urllib.request\n"
             "c = ssl.create_default_context(cafile='/state/pki/ca.crt')\n"
             "c.load_cert_chain('/state/pki/apiserver-kvstore-client.crt', '/state/pki/apiserver-kvstore-client.key')\n"
             "def status(host):\n"
             "    req = urllib.request.Request(f'https://{host}:2379/v3/maintenance/status', data=b'{}')\n"
             "    return json.loads(urllib.request.urlopen(req, context=c, timeout=3).read())\n"
             "for host in ('kvstore-1', 'kvstore-2', 'kvstore-3'):\n"
             "    s = status(host)\n"
             "    if s.get('leader') and s['leader'] == s['header']['member_id']:\n"
             "        print(host)\n")
    found: list[str] = []

    def ask() -> bool:
        out = run("exec", "-T", "kvstore-1", "python3", "-c", probe, check=False).stdout.split()
        found[:] = out
        return len(out) == 1

    wait_for(ask, timeout=60, what="the store leader")
    return found[0]


def lease_holder_service(state: Path, lease: str) -> str:
    """The compose service holding a leader-election Lease (its identity is ``<replica name>_<pid>``)."""
    holder = kubectl(state, "get", "lease", "-n", "kube-system", lease, "-o", "jsonpath={.spec.holderIdentity}").stdout
    return holder.rsplit("_", 1)[0]


def kill9(project: str, service: str) -> None:
    cid = subprocess.run(["docker", "ps", "-q", "-f", f"label=com.docker.compose.project={project}",
                          "-f", f"label=com.docker.compose.service={service}"], capture_output=True, text=True).stdout.split()[0]
    pid = subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}", cid], capture_output=True, text=True).stdout.strip()
    os.kill(int(pid), 9)


def container(project: str, service: str) -> str:
    """The id of a compose service's container (running or not)."""
    return docker("ps", "-aq", "-f", f"label=com.docker.compose.project={project}",
                  "-f", f"label=com.docker.compose.service={service}").stdout.split()[0]


class API:
    """HTTPS to the published API server with the admin kubeconfig's token and CA (no kubectl per call)."""

    def __init__(self, state: Path) -> None:
        cfg = yaml.safe_load((state / "kubeconfig").read_text())
        cluster = cfg["clusters"][0]["cluster"]
        self.server = cluster["server"]
        self.ctx = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        self.token = cfg["users"][0]["user"]["token"]

    def open(self, method: str, path: str, body: Any = None, timeout: float = 10) -> Any:
        req = urllib.request.Request(self.server + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {self.token}",
                                              "Content-Type": "application/json"})
        return urllib.request.urlopen(req, context=self.ctx, timeout=timeout)


class Writer:
    """Creates ConfigMaps one after the other until stopped; records which were acknowledged (201)."""

    def __init__(self, api: API, prefix: str, *, limit: int = 20000) -> None:
        self.api, self.prefix, self.limit = api, prefix, limit
        self.acked: list[str] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for i in range(self.limit):
            if self._stop.is_set():
                return
            name = f"{self.prefix}-{i}"
            try:
                with self.api.open("POST", "/api/v1/namespaces/default/configmaps",
                                   {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                                    "data": {"i": str(i)}}) as resp:
                    if resp.status == 201:
                        self.acked.append(name)
            except (OSError, urllib.error.HTTPError):
                self.failures += 1
                self._stop.wait(0.2)
            self._stop.wait(0.05)

    def progress(self, since: int, timeout: float, what: str) -> float:
        """Seconds until a write after index ``since`` was acknowledged (the fault's recovery time)."""
        start = time.monotonic()
        wait_for(lambda: len(self.acked) > since, timeout=timeout, what=what)
        return time.monotonic() - start

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)


class Watcher:
    """Watches ConfigMaps from the published API server as an informer does: resumes from the last
    resourceVersion after a broken stream, and lists again when that is too old (410 Gone, e.g. after
    the API servers restarted with empty watch caches). Records every resourceVersion seen, to check
    they only grow, and the names seen in events and lists."""

    def __init__(self, api: API, rv: str) -> None:
        self.api, self.rv = api, rv
        self.seen: list[int] = []
        self.names: set[str] = set()
        self.relists = 0
        self.journal: list[str] = []  # what happened, for the message of a failed check
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                path = (f"/api/v1/namespaces/default/configmaps?watch=1&allowWatchBookmarks=true"
                        f"&resourceVersion={self.rv}&timeoutSeconds=30")
                self.journal.append(f"{time.strftime('%H:%M:%S')} watch from {self.rv}")
                with self.api.open("GET", path, timeout=40) as resp:
                    for line in resp:
                        event = json.loads(line)
                        meta = event["object"].get("metadata", {})
                        self.journal.append(f"{event['type']} {meta.get('name', '')} {meta.get('resourceVersion', '')}")
                        if event["type"] == "ERROR":
                            if event["object"].get("code") != 410:
                                raise ValueError(f"watch error {event['object']}")
                            self._relist()
                            break
                        self.rv = event["object"]["metadata"]["resourceVersion"]
                        if event["type"] != "BOOKMARK":
                            self.seen.append(int(self.rv))
                            self.names.add(event["object"]["metadata"]["name"])
                        if self._stop.is_set():
                            return
            except (OSError, ValueError, urllib.error.HTTPError) as exc:
                self.journal.append(f"{time.strftime('%H:%M:%S')} broke: {exc!r}"[:200])
                self._stop.wait(0.5)

    def _relist(self) -> None:
        with self.api.open("GET", "/api/v1/namespaces/default/configmaps", timeout=30) as resp:
            listed = json.loads(resp.read())
        self.relists += 1
        self.rv = listed["metadata"]["resourceVersion"]
        self.seen.append(int(self.rv))
        self.names |= {o["metadata"]["name"] for o in listed["items"]}

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)


WEB = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: http
        image: %(image)s
        imagePullPolicy: IfNotPresent
        command: [python3, -m, http.server, "8000"]
        ports: [{containerPort: 8000}]
        readinessProbe: {httpGet: {path: /, port: 8000}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{port: 8000}]
---
apiVersion: v1
kind: Service
metadata: {name: web-vip}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8000}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
spec:
  rules:
  - host: web.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 8000}}}}
---
apiVersion: v1
kind: Pod
metadata: {name: absent-image}
spec:
  containers:
  - {name: app, image: "pilothouse-test/absent-image:0", command: ["true"]}
"""


def pods(state: Path) -> list[dict]:  # type: ignore[type-arg]
    out = kubectl(state, "get", "pods", "-l", "app=web", "-o", "json", check=False)
    return json.loads(out.stdout)["items"] if out.returncode == 0 else []


def ready(pod: dict) -> bool:  # type: ignore[type-arg]
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions") or [])


def pod_containers(kubelets: Path, uid: str) -> list[dict[str, str]]:
    """The running Docker containers of one pod (sandbox excluded), with their labels."""
    ids = []
    for node in ("kubelet-1", "kubelet-2"):
        ids += docker("ps", "-q", "-f", f"label=io.pilothouse.kubelet.root-dir={kubelets / node}",
                      "-f", f"label=io.kubernetes.pod.uid={uid}", "-f", "label=io.kubernetes.docker.type=container"
                      ).stdout.split()
    if not ids:
        return []
    return [c["Config"]["Labels"] | {"id": c["Id"]} for c in json.loads(docker("inspect", *ids).stdout)]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed on this machine")
def test_compose_cluster_survives_kill9_and_runs_pods_as_containers(compose) -> None:
    run, state, project, kubelets, ingress_port = compose
    run("up", "-d", "--wait", timeout=600)
    wait_for(lambda: kubectl(state, "get", "ns", check=False).returncode == 0, what="API answers")
    kubectl(state, "create", "configmap", "survivor", "--from-literal=k=v")
    leader = store_leader(run)
    kill9(project, leader)
    kill9(project, "apiserver-2")
    wait_for(lambda: kubectl(state, "get", "configmap", "survivor", "-o", "jsonpath={.data.k}", check=False).stdout == "v",
             what="configmap readable after kill -9")
    # both killed containers come back (restart policy), and the data is still there
    wait_for(lambda: leader in run("ps", "--status", "running", "--services", check=False).stdout
             and "apiserver-2" in run("ps", "--status", "running", "--services", check=False).stdout,
             what="killed containers restarted")
    kubectl(state, "create", "configmap", "after", "--from-literal=k=w")
    assert kubectl(state, "get", "configmap", "after", "-o", "jsonpath={.data.k}").stdout == "w"

    # A Deployment's pods are real containers, labelled with their pod, Running and Ready (probed).
    kubectl(state, "apply", "-f", "-", input=WEB % {"image": BASE_IMAGE})
    wait_for(lambda: len(p := pods(state)) == 2 and all(ready(x) for x in p), timeout=180, what="2 web pods Ready")
    web = pods(state)
    assert {p["spec"]["nodeName"] for p in web} <= {"kubelet-1", "kubelet-2"}
    for p in web:
        (c,) = pod_containers(kubelets, p["metadata"]["uid"])
        assert (c["io.kubernetes.pod.name"], c["io.kubernetes.pod.namespace"], c["io.kubernetes.pod.uid"],
                c["io.kubernetes.container.name"]) == (p["metadata"]["name"], "default", p["metadata"]["uid"], "http")
        assert p["status"]["phase"] == "Running"
        assert p["status"]["containerStatuses"][0]["containerID"] == f"docker://{c['id']}"

    # Requests: to each pod IP from a compose service, and by Service name through the cluster DNS
    # from inside a pod (its /etc/resolv.conf names the compose `dns` service).
    for p in web:
        got = run("exec", "-T", "ingress", "python3", "-c", "import urllib.request, sys; "
                  f"print(urllib.request.urlopen('http://{p['status']['podIP']}:8000/', timeout=5).status)")
        assert got.stdout.strip() == "200"
    first = pod_containers(kubelets, web[0]["metadata"]["uid"])[0]["id"]
    dns_ip = docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                    f"{project}-dns-1").stdout.strip()
    assert docker("exec", first, "cat", "/etc/resolv.conf").stdout == (
        f"nameserver {dns_ip}\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n")
    got = docker("exec", first, "python3", "-c", "import socket, urllib.request; "
                 "print(sorted({a[4][0] for a in socket.getaddrinfo('web', 8000)})); "
                 "print(urllib.request.urlopen('http://web:8000/', timeout=5).status)").stdout.split("\n")
    assert got[0] == str(sorted(p["status"]["podIP"] for p in web)) and got[1] == "200"

    # A ClusterIP Service from inside a pod: the name resolves to its ClusterIP (a 127/8 address, the
    # pod's own loopback), where the node's proxy listens inside the pod's namespace. The API server
    # through the kubernetes Service, with the pod's service-account token and CA, as in-cluster clients do.
    vip = kubectl(state, "get", "service", "web-vip", "-o", "jsonpath={.spec.clusterIP}").stdout
    in_pod = ("import os, socket, ssl, urllib.request\n"
              "print(sorted({a[4][0] for a in socket.getaddrinfo('web-vip', 80)}))\n"
              "print(urllib.request.urlopen('http://web-vip/', timeout=5).status)\n"
              "sa = '/var/run/secrets/kubernetes.io/serviceaccount/'\n"
              "req = urllib.request.Request('https://kubernetes.default.svc/api/v1/namespaces/default/pods',"
              " headers={'Authorization': 'Bearer ' + open(sa + 'token').read()})\n"
              "try: print(urllib.request.urlopen(req, context=ssl.create_default_context(cafile=sa + 'ca.crt'),"
              " timeout=5).status)\n"
              "except urllib.error.HTTPError as exc: print(exc.code)\n"
              "print(os.environ.get('KUBERNETES_SERVICE_HOST'), os.environ.get('KUBERNETES_SERVICE_PORT'))\n")

    got: list[str] = []

    def through_cluster_ip() -> bool:
        out = docker("exec", first, "python3", "-c", in_pod, check=False)
        if out.returncode != 0:
            print(out.stdout, out.stderr)
            return False
        got[:] = out.stdout.split("\n")
        return True

    wait_for(through_cluster_ip, timeout=60, what="the ClusterIP Service answering in a pod")
    assert got[0] == str([vip]) and vip.startswith("127.96.") and got[1] == "200", got
    assert got[2] == "403", got  # authenticated as the pod's service account, which may not list pods
    assert got[3] in ("apiserver-1 6443", "apiserver-2 6443"), got

    # From the host, the NodePort on every node's address (the proxy shares its kubelet's namespace).
    wait_for(lambda: node_ports_answer(state), timeout=60, what="the NodePort answering on both nodes")

    # From the host, through the published ingress port, the Ingress and the Service to a pod.
    def through_ingress() -> bool:
        req = urllib.request.Request(f"http://127.0.0.1:{ingress_port}/", headers={"Host": "web.test"})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status == 200 and b"Directory listing" in resp.read()
        except OSError:
            return False

    wait_for(through_ingress, timeout=60, what="request through the ingress answered by a pod")

    # An image that is absent and cannot be pulled does not pretend to run.
    def pull_failed() -> bool:
        out = kubectl(state, "get", "pod", "absent-image", "-o",
                      "jsonpath={.status.containerStatuses[0].state.waiting.reason}", check=False).stdout
        return out in ("ErrImagePull", "ImagePullBackOff")

    wait_for(pull_failed, timeout=60, what="absent image reported as ErrImagePull/ImagePullBackOff")

    # docker kill (SIGKILL) one pod's container: the kubelet starts a new one and the pod is Ready again.
    victim = web[0]
    docker("kill", "-s", "KILL", first)

    def restarted() -> bool:
        p = next((x for x in pods(state) if x["metadata"]["uid"] == victim["metadata"]["uid"]), None)
        return p is not None and ready(p) and p["status"]["containerStatuses"][0]["restartCount"] >= 1

    wait_for(restarted, timeout=120, what="killed pod container restarted")
    (again,) = pod_containers(kubelets, victim["metadata"]["uid"])
    assert again["id"] != first and int(again["io.kubernetes.container.restartCount"]) >= 1
    p = next(x for x in pods(state) if x["metadata"]["uid"] == victim["metadata"]["uid"])
    assert p["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 137

    chaos(run, state, project, kubelets)


def chaos(run: Any, state: Path, project: str, kubelets: Path) -> None:
    """The chaos faults on compose, under a writer and a watcher: a store member frozen, a store member
    cut from the network, a kubelet held down, everything killed at once. Nothing acknowledged is lost,
    the watch's resourceVersions only grow, the Deployment is whole again and both nodes Ready."""
    api = API(state)
    with api.open("GET", "/api/v1/namespaces/default/configmaps?limit=1") as resp:
        start_rv = json.loads(resp.read())["metadata"]["resourceVersion"]
    writer, watcher = Writer(api, "chaos"), Watcher(api, start_rv)
    recovery: dict[str, float] = {}
    try:
        writer.progress(0, 60, "writes before the faults")

        # A store member frozen for 20 s (docker pause: the cgroup freezer, as SIGSTOP).
        frozen = container(project, "kvstore-2")
        docker("pause", frozen)
        time.sleep(20)
        docker("unpause", frozen)
        recovery["store member frozen 20 s"] = writer.progress(len(writer.acked), 60, "writes after the freeze")

        # A store member cut from the network for 15 s, then connected again under its service name.
        network = f"{project}_default"
        cut = container(project, "kvstore-3")
        address = docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", cut).stdout.strip()
        docker("network", "disconnect", network, cut)
        time.sleep(15)
        docker("network", "connect", "--alias", "kvstore-3", network, cut)
        now = docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", cut).stdout.strip()
        if now != address:  # the member listens on the address it had: a new one needs a restart
            docker("restart", cut)
        recovery["store member partitioned 15 s"] = writer.progress(len(writer.acked), 60, "writes after the partition")

        # The active scheduler and the active controller-manager killed (-9) together: the standbys
        # take their Leases, and a scale-up needs both (a ReplicaSet creating a pod, a scheduler binding it).
        actives = [lease_holder_service(state, "kube-scheduler"), lease_holder_service(state, "kube-controller-manager")]
        assert all(a.startswith(("scheduler-", "controller-manager-")) for a in actives), actives
        down = time.monotonic()
        for service in actives:
            kill9(project, service)
        kubectl(state, "scale", "deployment", "web", "--replicas=3")
        wait_for(lambda: len(p := [x for x in pods(state) if not x["metadata"].get("deletionTimestamp")]) == 3
                 and all(ready(x) for x in p), timeout=120, what="a scale-up after the active controllers died")
        recovery["active scheduler + controller-manager killed"] = time.monotonic() - down
        kubectl(state, "scale", "deployment", "web", "--replicas=2")
        wait_for(lambda: len(pods(state)) == 2, timeout=120, what="back to 2 web pods")

        # A kubelet held down (docker kill: the restart policy leaves it stopped): its node becomes
        # unreachable and its web pods are replaced on the other node. Started again, it removes the
        # containers of the pods that were replaced.
        victim_pods = pods(state)
        node = victim_pods[0]["spec"]["nodeName"]
        other = "kubelet-2" if node == "kubelet-1" else "kubelet-1"
        gone = {p["metadata"]["uid"] for p in victim_pods if p["spec"]["nodeName"] == node}
        down = time.monotonic()
        docker("kill", container(project, node))

        def replaced() -> bool:
            # The evicted pods stay Terminating while their kubelet is away (as upstream): count the others.
            now = [p for p in pods(state) if not p["metadata"].get("deletionTimestamp")]
            return (len(now) == 2 and all(ready(p) and p["spec"]["nodeName"] == other for p in now)
                    and not gone & {p["metadata"]["uid"] for p in now})

        wait_for(replaced, timeout=240, what=f"the pods of {node} replaced on {other}")
        recovery[f"{node} held down (pods replaced)"] = time.monotonic() - down
        docker("start", container(project, node))
        wait_for(lambda: node_ready(state, node), timeout=120, what=f"{node} Ready again")
        wait_for(lambda: not any(pod_containers(kubelets, uid) for uid in gone)
                 and not gone & {p["metadata"]["uid"] for p in pods(state)}, timeout=120,
                 what="the replaced pods' containers and objects removed by the returning kubelet")

        # Everything killed at once (SIGKILL), then started again.
        before = len(writer.acked)
        down = time.monotonic()
        run("kill", "-s", "SIGKILL", timeout=120)
        run("up", "-d", "--wait", timeout=600)
        writer.progress(before, 120, "writes after restarting everything")
        recovery["everything killed at once"] = time.monotonic() - down
        wait_for(lambda: len(p := pods(state)) == 2 and all(ready(x) for x in p), timeout=180,
                 what="2 web pods Ready after restarting everything")
        wait_for(lambda: node_ready(state, "kubelet-1") and node_ready(state, "kubelet-2"), timeout=120,
                 what="both nodes Ready after restarting everything")
        wait_for(lambda: node_ports_answer(state), timeout=120, what="the NodePort answering on both nodes again")
        acked_until = len(writer.acked)
        deadline = time.monotonic() + 90
        while not set(writer.acked[:acked_until]) <= watcher.names and time.monotonic() < deadline:
            time.sleep(1)
    finally:
        writer.stop()
        watcher.stop()
    print("compose chaos recovery (s):", json.dumps({k: round(v, 2) for k, v in recovery.items()}),
          "acknowledged writes:", len(writer.acked), "failed write attempts:", writer.failures,
          "watch relists (410):", watcher.relists)

    stored = set(kubectl(state, "get", "configmaps", "-o", "name").stdout.split())
    lost = [n for n in writer.acked if f"configmap/{n}" not in stored]
    assert not lost, f"acknowledged writes lost: {lost[:10]} ({len(lost)})"
    unseen = sorted(set(writer.acked[:acked_until]) - watcher.names)
    if unseen:
        print(explain_unseen(api, watcher, unseen))
    assert not unseen, (f"{len(unseen)} acknowledged writes (stored) never came through the watch: {unseen[:10]}; "
                        f"last resourceVersion {watcher.rv}, relists {watcher.relists}")
    assert watcher.seen == sorted(watcher.seen), "resourceVersions went backwards in the watch"


def explain_unseen(api: API, watcher: Watcher, unseen: list[str]) -> str:
    """The stored resourceVersions of writes the watch missed, and the watch's journal around them."""
    lines = []
    for name in unseen[:5]:
        with api.open("GET", f"/api/v1/namespaces/default/configmaps/{name}") as resp:
            rv = int(json.loads(resp.read())["metadata"]["resourceVersion"])
        lines.append(f"{name} stored at resourceVersion {rv}")
        near = [i for i, entry in enumerate(watcher.journal)
                if entry.split()[-1].isdigit() and abs(int(entry.split()[-1]) - rv) <= 3]
        if near:
            lines += watcher.journal[max(0, near[0] - 15): near[-1] + 15]
    return "\n".join(lines)


def node_ports_answer(state: Path) -> bool:
    """The web-vip Service's NodePort answers on every node's InternalIP, from the host."""
    port = kubectl(state, "get", "service", "web-vip", "-o", "jsonpath={.spec.ports[0].nodePort}").stdout
    nodes = json.loads(kubectl(state, "get", "nodes", "-o", "json").stdout)["items"]
    ips = [a["address"] for n in nodes for a in n["status"]["addresses"] if a["type"] == "InternalIP"]
    for ip in ips:
        try:
            with urllib.request.urlopen(f"http://{ip}:{port}/", timeout=5) as resp:
                if resp.status != 200:
                    return False
        except OSError:
            return False
    return len(ips) == 2


def node_ready(state: Path, name: str) -> bool:
    out = kubectl(state, "get", "node", name, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
                  check=False).stdout
    return out == "True"
