"""kubectl 1.32 against the API server (skipped where kubectl is not installed)."""

from __future__ import annotations

import json
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests.harness.apicluster import KUBECTL, APICluster

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this machine")

DEPLOY = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: %(name)s, labels: {app: %(name)s}}
spec:
  replicas: %(replicas)d
  selector: {matchLabels: {app: %(name)s}}
  template:
    metadata: {labels: {app: %(name)s}}
    spec:
      containers:
      - name: web
        image: %(image)s
        env: [{name: A, value: "1"}, {name: B, value: "2"}]
        ports: [{containerPort: 80}, {containerPort: 443}]
"""


def manifest(name: str, replicas: int = 2, image: str = "nginx:1.27") -> str:
    return DEPLOY % {"name": name, "replicas": replicas, "image": image}


def test_get_namespaces_and_api_resources(api: APICluster) -> None:
    out = api.kubectl("get", "ns").stdout
    assert "default" in out and "kube-system" in out
    res = api.kubectl("api-resources").stdout
    assert "deployments" in res and "deploy" in res and "apps/v1" in res
    assert api.kubectl("get", "--raw", "/healthz").stdout == "ok"


def test_apply_client_side_then_change_then_unchanged(api: APICluster) -> None:
    assert "created" in api.kubectl("apply", "-f", "-", input=manifest("capply")).stdout
    # remove a container port and an env var, change the image: a strategic merge patch
    changed = manifest("capply", image="nginx:1.28").replace(', {name: B, value: "2"}', "").replace(
        ", {containerPort: 443}", "")
    assert "configured" in api.kubectl("apply", "-f", "-", input=changed).stdout
    assert "unchanged" in api.kubectl("apply", "-f", "-", input=changed).stdout
    d = json.loads(api.kubectl("get", "deploy", "capply", "-o", "json").stdout)
    c = d["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "nginx:1.28" and [e["name"] for e in c["env"]] == ["A"]
    assert [p["containerPort"] for p in c["ports"]] == [80]


def test_apply_server_side(api: APICluster) -> None:
    out = api.kubectl("apply", "--server-side", "-f", "-", input=manifest("sapply", 1)).stdout
    assert "serverside-applied" in out
    api.kubectl("apply", "--server-side", "-f", "-", input=manifest("sapply", 3))
    d = json.loads(api.kubectl("get", "deploy", "sapply", "-o", "json").stdout)
    assert d["spec"]["replicas"] == 3


def test_create_f_get_output_formats_delete(api: APICluster) -> None:
    api.kubectl("create", "-f", "-", input=manifest("formats", 1))
    assert api.kubectl("get", "deploy", "formats", "-o", "name").stdout.strip() == "deployment.apps/formats"
    assert api.kubectl("get", "deploy", "formats", "-o", "jsonpath={.spec.replicas}").stdout == "1"
    assert "kind: Deployment" in api.kubectl("get", "deploy", "formats", "-o", "yaml").stdout
    assert "formats" in api.kubectl("get", "deploy", "-o", "wide").stdout
    assert "formats" in api.kubectl("get", "all").stdout
    out = api.kubectl("delete", "deploy", "formats").stdout
    assert 'deployment.apps "formats" deleted' in out
    r = api.kubectl("get", "deploy", "formats", check=False)
    assert r.returncode == 1 and "NotFound" in r.stderr


def test_label_annotate_patch_scale(api: APICluster) -> None:
    api.kubectl("apply", "-f", "-", input=manifest("lab", 1))
    api.kubectl("label", "deploy", "lab", "tier=frontend")
    api.kubectl("annotate", "deploy", "lab", "note=hello")
    api.kubectl("patch", "deploy", "lab", "-p", '{"spec":{"minReadySeconds":5}}')
    api.kubectl("patch", "deploy", "lab", "--type=merge", "-p", '{"metadata":{"labels":{"m":"y"}}}')
    api.kubectl("patch", "deploy", "lab", "--type=json", "-p", '[{"op":"replace","path":"/spec/replicas","value":2}]')
    api.kubectl("scale", "deploy", "lab", "--replicas=4")
    d = json.loads(api.kubectl("get", "deploy", "lab", "-o", "json").stdout)
    assert d["metadata"]["labels"]["tier"] == "frontend" and d["metadata"]["labels"]["m"] == "y"
    assert d["metadata"]["annotations"]["note"] == "hello"
    assert d["spec"]["minReadySeconds"] == 5 and d["spec"]["replicas"] == 4
    sel = api.kubectl("get", "deploy", "-l", "tier=frontend", "-o", "name").stdout.split()
    assert sel == ["deployment.apps/lab"]


def test_edit_with_editor_script(api: APICluster, tmp_path: Path) -> None:
    api.kubectl("apply", "-f", "-", input=manifest("edited", 1))
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/replicas: 1/replicas: 2/' \"$1\"\n")
    editor.chmod(editor.stat().st_mode | stat.S_IEXEC)
    api.kubectl("edit", "deploy", "edited", env={"EDITOR": str(editor), "KUBE_EDITOR": str(editor)})
    assert api.kubectl("get", "deploy", "edited", "-o", "jsonpath={.spec.replicas}").stdout == "2"


def test_diff_and_dry_run_server(api: APICluster) -> None:
    api.kubectl("apply", "-f", "-", input=manifest("diffme", 1))
    r = api.kubectl("diff", "-f", "-", input=manifest("diffme", 3), check=False)
    assert r.returncode == 1 and "replicas: 3" in r.stdout  # 1 = differences found
    api.kubectl("apply", "--dry-run=server", "-f", "-", input=manifest("diffme", 5))
    assert api.kubectl("get", "deploy", "diffme", "-o", "jsonpath={.spec.replicas}").stdout == "1"


def test_get_watch_prints_changes(api: APICluster) -> None:
    api.kubectl("create", "configmap", "watched", "--from-literal=a=b", check=False)
    proc = subprocess.Popen([KUBECTL, "--kubeconfig", str(api.kubeconfig), "--cache-dir", str(api.root / "kube-cache"),
                             "get", "configmaps", "-w", "--output-watch-events"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        api.kubectl("label", "configmap", "watched", "x=1", "--overwrite")
        time.sleep(1.5)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert "watched" in out and "MODIFIED" in out


def test_wait_for_delete_and_explain_unknown_fields(api: APICluster) -> None:
    api.kubectl("apply", "-f", "-", input=manifest("waitme", 1))
    api.kubectl("delete", "deploy", "waitme", "--wait=true")
    r = api.kubectl("wait", "--for=delete", "deploy/waitme", "--timeout=5s", check=False)
    assert r.returncode == 0 or "not found" in r.stderr.lower()
    bad = manifest("strict", 1).replace("replicas: 1", "replicas: 1\n  bogusTop: 1").replace("spec:\n  replicas", "spec:\n  replicas")
    r = api.kubectl("apply", "-f", "-", input=manifest("strict", 1) + "bogusTop: 1\n", check=False)
    assert r.returncode != 0 and "unknown field" in r.stderr
    del bad


def test_auth_whoami_and_create_namespace(api: APICluster) -> None:
    r = api.kubectl("create", "namespace", "made-by-kubectl", check=False)
    if r.returncode != 0 and "UnsupportedMediaType" in r.stderr:
        pytest.xfail("protobuf request bodies are not decoded yet")
    assert r.returncode == 0, r.stderr
    assert "admin" in api.kubectl("auth", "whoami").stdout


def test_explain_and_strict_nested_fields(api: APICluster) -> None:
    out = api.kubectl("explain", "deployment.spec.replicas").stdout
    assert "replicas" in out and "integer" in out.lower()
    out = api.kubectl("explain", "pods.spec.containers").stdout
    assert "image" in out
    bad = manifest("nested-strict", 1).replace("replicas: 1", "replicas: 1\n  bogusField: 1")
    r = api.kubectl("apply", "-f", "-", input=bad, check=False)
    assert r.returncode != 0 and 'unknown field "spec.bogusField"' in r.stderr
    r = api.kubectl("apply", "--validate=false", "-f", "-", input=bad, check=False)
    assert r.returncode == 0


def test_describe(api: APICluster) -> None:
    api.kubectl("apply", "-f", "-", input=manifest("described", 1))
    out = api.kubectl("describe", "deploy", "described").stdout
    assert "Name:" in out and "described" in out and "Replicas:" in out
    api.kubectl("run", "solo", "--image=busybox", "--restart=Never")
    out = api.kubectl("describe", "pod", "solo").stdout
    assert "solo" in out and "busybox" in out


def test_a_change_that_changes_nothing_is_not_written(api: APICluster) -> None:
    """As upstream: no new resourceVersion and no watch event for an update that stores the same
    object; kubectl says "(no change)"."""
    api.kubectl("create", "configmap", "noop", "--from-literal=a=1")

    def rv() -> str:
        return api.kubectl("get", "configmap", "noop", "-o", "jsonpath={.metadata.resourceVersion}").stdout

    before = rv()
    out = api.kubectl("patch", "configmap", "noop", "-p", '{"data":{"a":"1"}}').stdout
    assert "patched (no change)" in out and rv() == before
    # The first replace adds kubectl-replace to managedFields (a change); the same again is not.
    api.kubectl("replace", "-f", "-", input=api.kubectl("get", "configmap", "noop", "-o", "json").stdout)
    before = rv()
    api.kubectl("replace", "-f", "-", input=api.kubectl("get", "configmap", "noop", "-o", "json").stdout)
    assert rv() == before
    out = api.kubectl("patch", "configmap", "noop", "-p", '{"data":{"a":"2"}}').stdout
    assert "patched (no change)" not in out and int(rv()) > int(before)
    api.kubectl("delete", "configmap", "noop")
