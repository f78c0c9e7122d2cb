"""Admission webhooks end to end: a real API server calls a tiny HTTPS webhook server (aiohttp, on
127.0.0.1, certificate from pilot/certs.py) that denies, allows, warns and patches."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from pilot.certs import ensure_certificates
from tests.harness.apicluster import KUBECTL, APICluster

VWC = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"
MWC = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebhookServer:
    """An HTTPS admission webhook in a background thread with its own event loop."""

    def __init__(self, pki: Path) -> None:
        self.certs = ensure_certificates(pki, hosts=["127.0.0.1"])
        self.ca_bundle = base64.b64encode(self.certs.ca_cert.read_bytes()).decode()
        self.port = _free_port()
        self.reviews: dict[str, list[dict[str, Any]]] = {}
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        self._thread.start()
        assert self._started.wait(10), "webhook server did not start"

    def close(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_post("/{hook}", self._handle)
        runner = web.AppRunner(app)
        await runner.setup()
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(self.certs.server_cert), str(self.certs.server_key))
        await web.TCPSite(runner, "127.0.0.1", self.port, ssl_context=ctx).start()
        self._stop = asyncio.Event()
        self._started.set()
        await self._stop.wait()
        await runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        hook = request.match_info["hook"]
        review = await request.json()
        self.reviews.setdefault(hook, []).append(review)
        req = review["request"]
        obj = req.get("object") or req.get("oldObject") or {}
        labels = (obj.get("metadata") or {}).get("labels") or {}
        response: dict[str, Any] = {"uid": req["uid"], "allowed": True}
        if hook == "validate":
            response["warnings"] = ["checked by the test webhook"]
            if labels.get("deny") == "yes":
                response = {"uid": req["uid"], "allowed": False,
                            "status": {"code": 403, "reason": "Forbidden", "message": "label deny=yes is not allowed"}}
            elif labels.get("deny") == "plain":
                response = {"uid": req["uid"], "allowed": False, "status": {"message": "no thanks"}}
        elif hook == "mutate":
            ops = [] if "labels" in obj.get("metadata", {}) else [{"op": "add", "path": "/metadata/labels", "value": {}}]
            ops.append({"op": "add", "path": "/metadata/labels/mutated", "value": "true"})
            response.update(patchType="JSONPatch", patch=base64.b64encode(json.dumps(ops).encode()).decode())
        elif hook == "slow":
            await asyncio.sleep(3)
        elif hook == "baduid":
            response["uid"] = "not-the-request-uid"
        elif hook == "move":
            ops = [{"op": "replace", "path": "/metadata/namespace", "value": "kube-system"}]
            response.update(patchType="JSONPatch", patch=base64.b64encode(json.dumps(ops).encode()).decode())
        elif hook == "badpatch":
            ops = [{"op": "replace", "path": "/spec/nothing/here", "value": 1}]
            response.update(patchType="JSONPatch", patch=base64.b64encode(json.dumps(ops).encode()).decode())
        return web.json_response({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})


@pytest.fixture(scope="module")
def hooks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebhookServer]:
    server = WebhookServer(tmp_path_factory.mktemp("webhook-pki"))
    server.start()
    yield server
    server.close()


def make_ns(api: APICluster, name: str, labels: dict | None = None) -> str:
    code, body, _ = api.request("POST", "/api/v1/namespaces", {"metadata": {"name": name, "labels": labels or {}}})
    assert code == 201, body
    return f"/api/v1/namespaces/{name}"


def webhook(name: str, client: dict, *, resources: list[str], namespace: str, operations: list[str] | None = None,
            **extra: Any) -> dict:
    return {"name": name, "clientConfig": client, "sideEffects": "None", "admissionReviewVersions": ["v1"],
            "rules": [{"operations": operations or ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": resources}],
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}, **extra}


def configure(api: APICluster, path: str, name: str, *hooks_: dict) -> None:
    kind = "ValidatingWebhookConfiguration" if path == VWC else "MutatingWebhookConfiguration"
    code, body, _ = api.request("POST", path, {"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
                                               "metadata": {"name": name}, "webhooks": list(hooks_)})
    assert code == 201, body


def eventually(check: Any, timeout: float = 10.0) -> Any:
    """Configurations reach each replica through its watch cache: retry until it has."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


def pod(name: str, labels: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}},
            "spec": {"containers": [{"name": "app", "image": "busybox:1.36"}]}}


def test_validating_webhook_denies_and_allows(api: APICluster, hooks: WebhookServer) -> None:
    ns = make_ns(api, "wh-validate")
    make_ns(api, "wh-elsewhere")
    configure(api, VWC, "deny-labels", webhook("deny.example.com", {"url": hooks.url("/validate"),
                                                                    "caBundle": hooks.ca_bundle},
                                               resources=["pods"], namespace="wh-validate",
                                               operations=["CREATE", "UPDATE"]))
    denied = eventually(lambda: api.request("POST", ns + "/pods?dryRun=All", pod("probe", {"deny": "yes"}))[0] == 403)
    assert denied, "the webhook never took effect"
    code, body, _ = api.request("POST", ns + "/pods", pod("bad", {"deny": "yes"}))
    assert code == 403, body
    assert body["reason"] == "Forbidden"
    assert body["message"] == 'admission webhook "deny.example.com" denied the request: label deny=yes is not allowed'
    code, body, _ = api.request("POST", ns + "/pods", pod("meh", {"deny": "plain"}))
    assert code == 400 and body["message"] == 'admission webhook "deny.example.com" denied the request: no thanks'
    code, body, headers = api.request("POST", ns + "/pods", pod("good"))
    assert code == 201, body
    assert "checked by the test webhook" in headers.get("Warning", "")
    # Other namespaces are not selected.
    assert api.request("POST", "/api/v1/namespaces/wh-elsewhere/pods", pod("bad", {"deny": "yes"}))[0] == 201
    # Updates are reviewed with the old object.
    code, good, _ = api.request("GET", ns + "/pods/good")
    good["metadata"]["labels"] = {"deny": "yes"}
    code, body, _ = api.request("PUT", ns + "/pods/good", good)
    assert code == 403 and "denied the request" in body["message"]
    update = hooks.reviews["validate"][-1]["request"]
    assert update["operation"] == "UPDATE" and update["oldObject"]["metadata"]["name"] == "good"
    create = next(r["request"] for r in hooks.reviews["validate"] if r["request"].get("name") == "good"
                  and r["request"]["operation"] == "CREATE")
    assert create["kind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert create["resource"] == {"group": "", "version": "v1", "resource": "pods"}
    assert create["namespace"] == "wh-validate" and create["dryRun"] is False
    assert create["userInfo"]["username"] == "admin" and "system:masters" in create["userInfo"]["groups"]
    assert create["options"]["kind"] == "CreateOptions" and create["oldObject"] is None
    assert api.request("DELETE", VWC + "/deny-labels")[0] == 200


def test_mutating_webhook_adds_a_label_before_validation(api: APICluster, hooks: WebhookServer) -> None:
    ns = make_ns(api, "wh-mutate")
    configure(api, MWC, "add-label", webhook("label.example.com", {"url": hooks.url("/mutate"),
                                                                   "caBundle": hooks.ca_bundle},
                                             resources=["pods"], namespace="wh-mutate",
                                             objectSelector={"matchExpressions": [{"key": "skip", "operator": "DoesNotExist"}]}))
    configure(api, VWC, "watch-mutated", webhook("seen.example.com", {"url": hooks.url("/validate"),
                                                                      "caBundle": hooks.ca_bundle},
                                                 resources=["pods"], namespace="wh-mutate"))

    def created_mutated() -> bool:
        code, body, _ = api.request("POST", ns + "/pods?dryRun=All", pod("probe"))
        return code == 201 and body["metadata"]["labels"].get("mutated") == "true"

    assert eventually(created_mutated), "the mutating webhook never took effect"
    code, body, _ = api.request("POST", ns + "/pods", pod("web", {"app": "web"}))
    assert code == 201, body
    assert body["metadata"]["labels"] == {"app": "web", "mutated": "true"}
    code, stored, _ = api.request("GET", ns + "/pods/web")
    assert stored["metadata"]["labels"]["mutated"] == "true"
    # The validating webhook saw the mutated object.
    seen = [r["request"]["object"] for r in hooks.reviews.get("validate", [])
            if r["request"]["object"]["metadata"]["name"] == "web"]
    assert seen and seen[-1]["metadata"]["labels"]["mutated"] == "true"
    code, body, _ = api.request("POST", ns + "/pods", pod("skipped", {"skip": "1"}))
    assert code == 201 and "mutated" not in body["metadata"]["labels"]
    assert api.request("DELETE", MWC + "/add-label")[0] == 200
    assert api.request("DELETE", VWC + "/watch-mutated")[0] == 200


def test_failure_policy_timeouts_and_bad_responses(api: APICluster, hooks: WebhookServer, tmp_path: Path) -> None:
    ns = make_ns(api, "wh-fail")
    closed = f"https://127.0.0.1:{_free_port()}/nowhere"
    other_ca = base64.b64encode(ensure_certificates(tmp_path / "other", hosts=["127.0.0.1"]).ca_cert.read_bytes()).decode()
    cases = [
        ("closed.example.com", {"url": closed}, "Fail", "configmaps", 'failed to call webhook: Post "' + closed),
        ("slow.example.com", {"url": hooks.url("/slow"), "caBundle": hooks.ca_bundle}, "Fail", "secrets",
         "context deadline exceeded"),
        ("uid.example.com", {"url": hooks.url("/baduid"), "caBundle": hooks.ca_bundle}, "Fail", "services",
         "received invalid webhook response: expected response.uid="),
        ("ca.example.com", {"url": hooks.url("/validate"), "caBundle": other_ca}, "Fail", "serviceaccounts",
         "CERTIFICATE_VERIFY_FAILED"),
        ("svc.example.com", {"service": {"namespace": "wh-fail", "name": "nope", "path": "/validate"}}, "Fail",
         "endpoints", 'service "wh-fail/nope" not found'),
        ("ignored.example.com", {"url": closed}, "Ignore", "limitranges", None),
    ]
    configure(api, VWC, "failures", *[webhook(name, client, resources=[res], namespace="wh-fail",
                                              failurePolicy=policy, timeoutSeconds=1)
                                      for name, client, policy, res, _ in cases])
    configure(api, MWC, "bad-patch", webhook("patch.example.com", {"url": hooks.url("/badpatch"),
                                                                   "caBundle": hooks.ca_bundle},
                                             resources=["persistentvolumeclaims"], namespace="wh-fail"),
              webhook("move.example.com", {"url": hooks.url("/move"), "caBundle": hooks.ca_bundle},
                      resources=["resourcequotas"], namespace="wh-fail"))

    def body_for(resource: str, name: str) -> dict:
        if resource == "services":
            return {"metadata": {"name": name}, "spec": {"ports": [{"port": 80}]}}
        if resource == "endpoints":
            return {"metadata": {"name": name}, "subsets": []}
        if resource == "limitranges":
            return {"metadata": {"name": name}, "spec": {"limits": []}}
        return {"metadata": {"name": name}}

    for name, _, policy, resource, text in cases:
        path = f"{ns}/{resource}"
        if text is None:
            time.sleep(0.3)
            code, body, _ = api.request("POST", path, body_for(resource, "x"))
            assert code == 201, (name, body)
            continue
        assert eventually(lambda: api.request("POST", path + "?dryRun=All", body_for(resource, "probe"))[0] == 500), name
        code, body, _ = api.request("POST", path, body_for(resource, "x"))
        assert code == 500, (name, body)
        assert body["reason"] == "InternalError"
        assert body["message"].startswith(f'Internal error occurred: failed calling webhook "{name}": '), body["message"]
        assert text in body["message"], (name, body["message"])
    claim = {"metadata": {"name": "c"}, "spec": {"accessModes": ["ReadWriteOnce"],
                                                 "resources": {"requests": {"storage": "1Gi"}}}}
    assert eventually(lambda: api.request("POST", ns + "/persistentvolumeclaims?dryRun=All", claim)[0] == 500)
    code, body, _ = api.request("POST", ns + "/persistentvolumeclaims", claim)
    assert code == 500 and 'admission webhook "patch.example.com" returned a patch that does not apply' in body["message"]
    # A patch may not move the object to a namespace the request was not authorized for.
    code, body, _ = api.request("POST", ns + "/resourcequotas", {"metadata": {"name": "q"}, "spec": {"hard": {}}})
    assert code == 500 and 'admission webhook "move.example.com" may not change metadata.namespace' in body["message"]
    assert api.request("GET", "/api/v1/namespaces/kube-system/resourcequotas/q")[0] == 404
    assert api.request("DELETE", VWC + "/failures")[0] == 200
    assert api.request("DELETE", MWC + "/bad-patch")[0] == 200


def test_malformed_configurations_are_invalid(api: APICluster, hooks: WebhookServer) -> None:
    good = webhook("ok.example.com", {"url": hooks.url("/validate")}, resources=["pods"], namespace="x")
    cases = [
        (dict(good, clientConfig={"url": "http://127.0.0.1:1/x"}),
         "webhooks[0].clientConfig.url: Invalid value: \"http://127.0.0.1:1/x\": 'https' is the only allowed URL scheme"),
        (dict(good, clientConfig={"url": hooks.url("/v"), "service": {"namespace": "a", "name": "b"}}),
         "webhooks[0].clientConfig: Required value: exactly one of url or service is required"),
        ({k: v for k, v in good.items() if k != "sideEffects"},
         "webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun"),
        (dict(good, sideEffects="Some"), 'webhooks[0].sideEffects: Unsupported value: "Some"'),
        (dict(good, timeoutSeconds=31),
         "webhooks[0].timeoutSeconds: Invalid value: 31: the timeout value must be between 1 and 30 seconds"),
        (dict(good, name="short.name"),
         'webhooks[0].name: Invalid value: "short.name": should be a domain with at least three segments'),
        (dict(good, failurePolicy="Sometimes"), 'webhooks[0].failurePolicy: Unsupported value: "Sometimes"'),
        (dict(good, rules=[{"operations": ["EXPLODE"], "apiGroups": [""], "apiVersions": ["v1"],
                            "resources": ["pods"]}]),
         'webhooks[0].rules[0].operations[0]: Unsupported value: "EXPLODE"'),
        (dict(good, clientConfig={"url": hooks.url("/v"), "caBundle": "not base64!"}),
         "webhooks[0].clientConfig.caBundle: Invalid value"),
        (dict(good, admissionReviewVersions=["v1beta1"]), "webhooks[0].admissionReviewVersions: Invalid value"),
        (dict(good, matchConditions=[{"name": "c", "expression": "true"}]),
         "webhooks[0].matchConditions: Forbidden: matchConditions (CEL) are not supported"),
    ]
    for hook, text in cases:
        code, body, _ = api.request("POST", VWC, {"metadata": {"name": "bad"}, "webhooks": [hook]})
        assert code == 422, (hook, body)
        assert body["reason"] == "Invalid" and text in body["message"], body["message"]
    code, body, _ = api.request("POST", VWC, {"metadata": {"name": "dup"}, "webhooks": [good, good]})
    assert code == 422 and 'webhooks[1].name: Duplicate value: "ok.example.com"' in body["message"]
    # A valid one is defaulted like upstream.
    code, body, _ = api.request("POST", VWC + "?dryRun=All", {"metadata": {"name": "fine"}, "webhooks": [
        {k: v for k, v in good.items() if k != "namespaceSelector"}]})
    assert code == 201, body
    hook = body["webhooks"][0]
    assert (hook["failurePolicy"], hook["matchPolicy"], hook["timeoutSeconds"], hook["namespaceSelector"],
            hook["objectSelector"], hook["rules"][0]["scope"]) == ("Fail", "Equivalent", 10, {}, {}, "*")


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
def test_kubectl_sees_webhook_configurations(api: APICluster, hooks: WebhookServer) -> None:
    manifest = f"""apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {{name: from-kubectl}}
webhooks:
- name: kubectl.example.com
  clientConfig: {{url: "{hooks.url('/validate')}", caBundle: {hooks.ca_bundle}}}
  rules: [{{operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [pods]}}]
  namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: nowhere}}}}
  sideEffects: None
  admissionReviewVersions: [v1]
"""
    api.kubectl("apply", "-f", "-", input=manifest)
    out = api.kubectl("get", "validatingwebhookconfigurations", "from-kubectl", "-o", "json").stdout
    assert json.loads(out)["webhooks"][0]["failurePolicy"] == "Fail"
    assert "from-kubectl" in api.kubectl("get", "validatingwebhookconfigurations").stdout
    api.kubectl("delete", "validatingwebhookconfiguration", "from-kubectl")
