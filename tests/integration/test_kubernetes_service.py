"""The ``default/kubernetes`` Service and its endpoints, with two API server replicas as real processes.

Both replicas listen on 127.0.0.1 with different ports (as ``pilot up`` runs them), so the Endpoints
have one subset per port and there is one EndpointSlice per port. Identity leases are short here
(3 s, renewed every 0.5 s) so that a killed replica leaves the endpoints within a bounded wait.
"""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pilot.certs import ensure_certificates
from tests.harness.apicluster import APICluster
from tests.integration.test_kubelet import Env, KubeletProcess, running_ready
from tests.integration.test_proxy_support import (Component, ensure_namespace, free_port_on, loopback_net, must,
                                                  wait_for)

CIDR, NODE_IP, POD = loopback_net()
FIRST_IP = CIDR.replace(".0.0/16", ".0.1")
LEASE_ARGS = ("--identity-lease-duration-seconds", "3", "--identity-lease-renew-interval-seconds", "0.5")
SVC = "/api/v1/namespaces/default/services/kubernetes"
EPS = "/api/v1/namespaces/default/endpoints/kubernetes"
SLICES = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[APICluster]:
    root = tmp_path_factory.mktemp("kubesvc")
    # The serving certificate also names the kubernetes Service's ClusterIP, as a real cluster's does.
    ensure_certificates(root / "pki", hosts=["127.0.0.1", FIRST_IP])
    cluster = APICluster(root, replicas=2, extra_args=("--service-cluster-ip-range", CIDR, *LEASE_ARGS))
    cluster.start_or_close()
    yield cluster
    print(cluster.logs()[-6000:])
    cluster.close()


def ports_in_endpoints(api: APICluster) -> set[int]:
    code, eps, _ = api.request("GET", EPS)
    if code != 200:
        return set()
    out = set()
    for subset in eps.get("subsets") or []:
        assert [a["ip"] for a in subset["addresses"]] == ["127.0.0.1"], subset
        out |= {p["port"] for p in subset["ports"]}
    return out


def ports_in_slices(api: APICluster) -> set[int]:
    slices = must(api.request("GET", SLICES + "?labelSelector=kubernetes.io/service-name=kubernetes"))["items"]
    return {p["port"] for sl in slices for p in sl["ports"]
            if any(e["addresses"] == ["127.0.0.1"] for e in sl["endpoints"])}


def test_service_endpoints_and_slices_list_both_replicas(api: APICluster) -> None:
    svc = wait_for(lambda: must(api.request("GET", SVC)), 30, "the kubernetes Service")
    assert svc["spec"]["clusterIP"] == FIRST_IP and svc["spec"]["clusterIPs"] == [FIRST_IP]
    assert svc["spec"]["type"] == "ClusterIP" and not svc["spec"].get("selector")
    assert svc["metadata"]["labels"] == {"component": "apiserver", "provider": "kubernetes"}
    [port] = svc["spec"]["ports"]
    assert (port["name"], port["port"], port["protocol"]) == ("https", 443, "TCP")
    assert port["targetPort"] in api.ports
    want = set(api.ports)
    wait_for(lambda: ports_in_endpoints(api) == want, 30, "both API servers in the Endpoints")
    eps = must(api.request("GET", EPS))
    assert eps["metadata"]["labels"]["endpointslice.kubernetes.io/skip-mirror"] == "true"
    assert [s["ports"][0]["port"] for s in eps["subsets"]] == sorted(want)  # one subset per port
    wait_for(lambda: ports_in_slices(api) == want, 30, "both API servers in the EndpointSlices")
    slices = must(api.request("GET", SLICES + "?labelSelector=kubernetes.io/service-name=kubernetes"))["items"]
    names = sorted(sl["metadata"]["name"] for sl in slices)
    assert names == sorted(["kubernetes", f"kubernetes-{max(api.ports)}"])
    for sl in slices:
        assert sl["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == "kube-apiserver"
        assert sl["addressType"] == "IPv4" and sl["endpoints"][0]["conditions"]["ready"] is True
    leases = must(api.request("GET", LEASES + "?labelSelector=apiserver.kubernetes.io/identity=kube-apiserver"))
    addresses = sorted(lease["metadata"]["annotations"]["pilothouse.dev/advertise-address"] for lease in leases["items"])
    assert addresses == sorted(f"127.0.0.1:{p}" for p in api.ports)
    assert all(lease["metadata"]["name"].startswith("kube-apiserver-") for lease in leases["items"])
    # Steady state: nothing is rewritten when nothing changed (both replicas agree).
    before = [must(api.request("GET", path))["metadata"]["resourceVersion"] for path in (SVC, EPS)]
    time.sleep(2)  # four reconcile rounds of each replica; only an equality check follows, no timing claim
    after = [must(api.request("GET", path))["metadata"]["resourceVersion"] for path in (SVC, EPS)]
    assert before == after


def test_first_address_is_reserved_for_the_kubernetes_service(api: APICluster) -> None:
    body = {"metadata": {"name": "thief"}, "spec": {"clusterIP": FIRST_IP, "ports": [{"port": 80}]}}
    code, out, _ = api.request("POST", "/api/v1/namespaces/default/services", body)
    assert code == 422 and FIRST_IP in out["message"], out


def test_deleted_or_edited_service_is_restored(api: APICluster) -> None:
    old = must(api.request("GET", SVC))
    must(api.request("DELETE", SVC))
    new = wait_for(lambda: (lambda r: r[1] if r[0] == 200 and r[1]["metadata"]["uid"] != old["metadata"]["uid"]
                            else None)(api.request("GET", SVC)), 30, "the kubernetes Service re-created")
    assert new["spec"]["clusterIP"] == FIRST_IP
    # The ClusterIP stays claimed by it: nobody else can take it.
    code, _, _ = api.request("POST", "/api/v1/namespaces/default/services",
                             {"metadata": {"name": "thief2"}, "spec": {"clusterIP": FIRST_IP, "ports": [{"port": 80}]}})
    assert code == 422
    patch = {"metadata": {"labels": {"provider": "someone"}},
             "spec": {"selector": {"app": "x"}, "ports": [{"name": "https", "port": 8443, "protocol": "TCP",
                                                            "targetPort": 1}]}}
    must(api.request("PATCH", SVC, patch, content_type="application/merge-patch+json"))

    def repaired() -> bool:
        svc = must(api.request("GET", SVC))
        spec = svc["spec"]
        return (not spec.get("selector") and svc["metadata"]["labels"].get("provider") == "kubernetes"
                and [(p["port"], p["targetPort"]) for p in spec["ports"]] in ([(443, p)] for p in api.ports))

    wait_for(repaired, 30, "the kubernetes Service repaired")
    wait_for(lambda: ports_in_endpoints(api) == set(api.ports), 30, "Endpoints back after the Service's deletion")


def test_in_cluster_client_from_a_process_pod(api: APICluster, tmp_path: Path) -> None:
    """The official client's in-cluster config, from a pod of the process runtime: with the environment
    the kubelet injects, and — when this process may listen on port 443 — through the service proxy on
    the kubernetes Service's ClusterIP (KUBERNETES_SERVICE_HOST/PORT pointing there)."""
    ns = "incluster"
    env = Env(api, ns, node="kube-svc-node")
    env.call("POST", f"/api/v1/namespaces/{ns}/serviceaccounts", {"metadata": {"name": "default"}}, ok=(201, 409))
    env.call("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
        "metadata": {"name": "incluster-view"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                                            "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": ns}]}, ok=(201, 409))
    through_proxy = os.geteuid() == 0
    proxy = None
    if through_proxy:
        proxy = Component(api, tmp_path, "proxy", "--node-name", "kube-svc-node", "--node-ip", NODE_IP,
                          health=f"{NODE_IP}:{free_port_on(NODE_IP)}")
        proxy.wait_ready()
    kubelet = KubeletProcess(api, tmp_path / "kubelet", "kube-svc-node")
    try:
        kubelet.wait_ready()
        script = textwrap.dedent("""
            import os, sys, time
            from kubernetes import client
            from kubernetes.config.incluster_config import InClusterConfigLoader
            # The process runtime roots the pod's mounts at $PILOT_ROOT; the rest is the stock loader,
            # which reads KUBERNETES_SERVICE_HOST/PORT from the environment.
            base = os.environ["PILOT_ROOT"] + "/var/run/secrets/kubernetes.io/serviceaccount"
            InClusterConfigLoader(token_filename=base + "/token", cert_filename=base + "/ca.crt").load_and_set()
            v1 = client.CoreV1Api()
            for attempt in range(100):
                try:
                    svc = v1.read_namespaced_service("kubernetes", "default")
                    break
                except Exception as exc:
                    print("retry", repr(exc), flush=True)
                    time.sleep(0.2)
            print("HOST", os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"], flush=True)
            print("SERVICE", svc.spec.cluster_ip, svc.spec.ports[0].port, flush=True)
            time.sleep(600)
        """)
        volumes = [{"name": "kube-api-access", "projected": {"sources": [
            {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}]}}]
        mounts = [{"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]
        cases: list[tuple[str, list[dict[str, Any]], str]] = [("direct", [], "")]
        if through_proxy:
            cases.append(("via-proxy", [{"name": "KUBERNETES_SERVICE_HOST", "value": FIRST_IP},
                                        {"name": "KUBERNETES_SERVICE_PORT", "value": "443"}], f"HOST {FIRST_IP} 443"))
        for name, extra_env, host_line in cases:
            env.pod(name, [{"name": "c", "image": "python", "command": [sys.executable, "-c", script],
                            "env": extra_env, "volumeMounts": mounts}],
                    volumes=volumes, serviceAccountName="default")
            env.wait_pod(name, running_ready, 60)

            def logs() -> str:
                return api.kubectl("logs", "-n", ns, name).stdout

            try:
                wait_for(lambda: "SERVICE" in logs(), 60, f"the {name} pod's answer")
            except AssertionError:
                print(logs())
                raise
            out = logs()
            assert f"SERVICE {FIRST_IP} 443" in out, out
            if host_line:
                assert host_line in out, out
            else:
                host = next(line for line in out.splitlines() if line.startswith("HOST"))
                assert host.split()[1:] == ["127.0.0.1", str(api.ports[0])], out  # what the kubelet injects
    finally:
        kubelet.cleanup()
        if proxy is not None:
            proxy.stop()


def test_endpoints_controllers_leave_the_kubernetes_endpoints_alone(api: APICluster, tmp_path: Path) -> None:
    want = set(api.ports)
    cm = Component(api, tmp_path, "controllers", "--controllers", "endpoints,endpointslice",
                   health=f"127.0.0.1:{free_port_on('127.0.0.1')}", module="controllers")
    try:
        cm.wait_ready()
        # The controllers are at work: a Service with a selector gets its Endpoints and a slice.
        ensure_namespace(api, "ctl")
        must(api.request("POST", "/api/v1/namespaces/ctl/services", {
            "metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}))
        wait_for(lambda: api.request("GET", "/api/v1/namespaces/ctl/endpoints/web")[0] == 200, 30, "web's Endpoints")
        wait_for(lambda: must(api.request("GET", "/apis/discovery.k8s.io/v1/namespaces/ctl/endpointslices"))["items"],
                 30, "web's EndpointSlice")
        slices = must(api.request("GET", SLICES + "?labelSelector=kubernetes.io/service-name=kubernetes"))["items"]
        assert {sl["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] for sl in slices} == {"kube-apiserver"}
        assert ports_in_endpoints(api) == want and ports_in_slices(api) == want
        # Deleting the Service: the endpoints controller deletes its Endpoints as well; all of it comes back.
        old = must(api.request("GET", SVC))["metadata"]["uid"]
        must(api.request("DELETE", SVC))
        wait_for(lambda: (lambda r: r[0] == 200 and r[1]["metadata"]["uid"] != old)(api.request("GET", SVC)), 30,
                 "the Service re-created")
        wait_for(lambda: ports_in_endpoints(api) == want and ports_in_slices(api) == want, 30,
                 "the kubernetes endpoints back")
    finally:
        cm.stop()


def test_killed_replica_leaves_the_endpoints_and_returns(api: APICluster) -> None:
    want = set(api.ports)
    wait_for(lambda: ports_in_endpoints(api) == want, 30, "both API servers in the Endpoints")
    api.kill(1)
    wait_for(lambda: ports_in_endpoints(api) == {api.ports[0]}, 30, "the killed API server out of the Endpoints")
    wait_for(lambda: ports_in_slices(api) == {api.ports[0]}, 30, "the killed API server out of the EndpointSlices")
    api.start_replica(1)
    api.wait_ready(1)
    wait_for(lambda: ports_in_endpoints(api) == want, 30, "the restarted API server back in the Endpoints")
    wait_for(lambda: ports_in_slices(api) == want, 30, "the restarted API server back in the EndpointSlices")


def test_gracefully_stopped_replica_removes_itself(api: APICluster) -> None:
    want = set(api.ports)
    wait_for(lambda: ports_in_endpoints(api) == want, 30, "both API servers in the Endpoints")
    selector = "?labelSelector=apiserver.kubernetes.io/identity=kube-apiserver"

    def lease_ports() -> set[int]:
        items = must(api.request("GET", LEASES + selector))["items"]
        return {int(i["metadata"]["annotations"]["pilothouse.dev/advertise-address"].rpartition(":")[2]) for i in items}

    assert lease_ports() == want
    proc = api.procs[1]
    assert proc is not None
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    # Done before the process exits: its identity Lease is deleted, not left to expire.
    assert lease_ports() == {api.ports[0]}
    wait_for(lambda: ports_in_endpoints(api) == {api.ports[0]}, 30, "the stopped API server out of the Endpoints")
    wait_for(lambda: ports_in_slices(api) == {api.ports[0]}, 30, "the stopped API server out of the EndpointSlices")
