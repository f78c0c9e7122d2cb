"""``pilot up --demo``: a sample web app (Deployment ×3 + Service + Ingress) and the URL that answers.

The pods run on the process runtime: each is a small Python HTTP server on its pod IP that says
which pod answered, so repeated requests through the ingress show the load balancing.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from typing import Any

import yaml

from .local import Layout

SERVER = (
    "import http.server, os\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        body = ('hello from ' + os.environ['POD_NAME'] + '\\n').encode()\n"
    "        self.send_response(200)\n"
    "        self.send_header('Content-Type', 'text/plain')\n"
    "        self.send_header('Content-Length', str(len(body)))\n"
    "        self.end_headers()\n"
    "        self.wfile.write(body)\n"
    "    def log_message(self, *args):\n"
    "        pass\n"
    "http.server.ThreadingHTTPServer((os.environ['POD_IP'], 8080), H).serve_forever()\n"
)

MANIFESTS: list[dict[str, Any]] = [
    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "demo", "namespace": "default"},
     "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "demo"}},
              "template": {"metadata": {"labels": {"app": "demo"}}, "spec": {"containers": [{
                  "name": "web", "image": "python:3.11-slim", "command": ["python3", "-c", SERVER],
                  "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                  "ports": [{"containerPort": 8080}],
                  "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}}]}}}},
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "demo", "namespace": "default"},
     "spec": {"selector": {"app": "demo"}, "ports": [{"port": 80, "targetPort": 8080}]}},
    {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "demo", "namespace": "default"},
     "spec": {"ingressClassName": "pilot", "rules": [{"http": {"paths": [
         {"path": "/", "pathType": "Prefix",
          "backend": {"service": {"name": "demo", "port": {"number": 80}}}}]}}]}},
]

_PATHS = {
    "Deployment": "/apis/apps/v1/namespaces/default/deployments/demo",
    "Service": "/api/v1/namespaces/default/services/demo",
    "Ingress": "/apis/networking.k8s.io/v1/namespaces/default/ingresses/demo",
}


def _request(layout: Layout, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    config = yaml.safe_load((layout.state_dir / "kubeconfig").read_text())
    token = config["users"][0]["user"]["token"]
    req = urllib.request.Request(layout.api_url + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/apply-patch+yaml"})
    ctx = ssl.create_default_context(cafile=str(layout.state_dir / "pki" / "ca.crt"))
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def deploy(layout: Layout, *, timeout: float = 120.0) -> str:
    """Apply the demo (server-side apply, so repeating is harmless) and return the URL once it answers."""
    for manifest in MANIFESTS:
        code, body = _request(layout, "PATCH", _PATHS[manifest["kind"]] + "?fieldManager=pilot-demo&force=true",
                              manifest)
        if code not in (200, 201):
            raise RuntimeError(f"applying the demo {manifest['kind']} failed ({code}): {body}")
    url = f"http://127.0.0.1:{layout.ingress_port}/"
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=3) as resp:
                if resp.status == 200 and resp.read().startswith(b"hello from demo-"):
                    return url
        except (OSError, urllib.error.URLError) as exc:
            last = repr(exc)
        time.sleep(0.5)
    raise RuntimeError(f"the demo did not answer on {url} within {timeout:.0f}s ({last})")
