"""A kopf operator reconciling a CRD works unchanged against the API server."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.harness.apicluster import APICluster

pytest.importorskip("kopf")

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "greetings.demo.pilothouse.io"},
    "spec": {"group": "demo.pilothouse.io", "scope": "Namespaced",
             "names": {"plural": "greetings", "singular": "greeting", "kind": "Greeting"},
             "versions": [{"name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
                           "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                               "spec": {"type": "object", "properties": {"name": {"type": "string"}}},
                               "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}}]},
}

OPERATOR = textwrap.dedent('''
    import kopf

    @kopf.on.startup()
    def configure(settings: kopf.OperatorSettings, **_):
        settings.watching.server_timeout = 30
        settings.posting.level = 0

    @kopf.on.create("demo.pilothouse.io", "v1", "greetings")
    def create_fn(spec, name, namespace, logger, **_):

        from kubernetes import client, config
        config.load_kube_config()
        client.CoreV1Api().create_namespaced_config_map(namespace, {
            "metadata": {"name": f"greeting-{name}"}, "data": {"text": f"hello {spec.get('name')}"}})
        return {"greeted": spec.get("name")}
''')


def test_kopf_operator_reconciles(api: APICluster, tmp_path: Path) -> None:
    code, body, _ = api.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", CRD)
    assert code == 201, body
    op = tmp_path / "operator.py"
    op.write_text(OPERATOR)
    log = open(tmp_path / "kopf.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "kopf", "run", str(op), "--standalone", "--all-namespaces"],
                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "KUBECONFIG": str(api.kubeconfig)})
    try:
        time.sleep(3)
        code, _, _ = api.request("POST", "/apis/demo.pilothouse.io/v1/namespaces/default/greetings",
                                 {"apiVersion": "demo.pilothouse.io/v1", "kind": "Greeting",
                                  "metadata": {"name": "world"}, "spec": {"name": "World"}})
        assert code == 201
        deadline = time.monotonic() + 60
        cm = status = None
        while time.monotonic() < deadline:
            code, cm, _ = api.request("GET", "/api/v1/namespaces/default/configmaps/greeting-world")
            _, obj, _ = api.request("GET", "/apis/demo.pilothouse.io/v1/namespaces/default/greetings/world")
            status = obj.get("status") or {}
            if code == 200 and status.get("create_fn"):
                break
            time.sleep(0.5)
        assert code == 200 and cm["data"]["text"] == "hello World", (tmp_path / "kopf.log").read_text()[-3000:]
        assert status.get("create_fn") == {"greeted": "World"}, (tmp_path / "kopf.log").read_text()[-3000:]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
