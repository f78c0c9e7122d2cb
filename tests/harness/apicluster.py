"""A store plus API server replicas as real processes, with HTTPS, a token and a kubeconfig."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apiserver.encryption import new_config as new_encryption_config
from apiserver.serviceaccounts import generate_private_key_pem
from pilot.certs import ensure_certificates, new_token, write_kubeconfig, write_token_file
from tests.harness.kvcluster import REPO, KVCluster, free_ports

KUBECTL = shutil.which("kubectl")


@dataclass
class APICluster:
    root: Path
    store_size: int = 1
    replicas: int = 1
    extra_args: tuple[str, ...] = ()
    users: dict[str, list[str]] = field(default_factory=dict)  # extra token users: name -> groups
    store: KVCluster = field(init=False)
    ports: list[int] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes] | None] = field(default_factory=list)
    token: str = ""

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.store = KVCluster(self.root / "store", self.store_size)
        self.ports = free_ports(self.replicas)
        self.procs = [None] * self.replicas
        self.certs = ensure_certificates(self.root / "pki", hosts=["127.0.0.1"])
        self.token = new_token()
        self.token_file = self.root / "tokens.csv"
        self.tokens = {name: new_token() for name in self.users}
        write_token_file(self.token_file, [(self.token, "admin", "admin-uid", ["system:masters"])] +
                         [(self.tokens[n], n, f"{n}-uid", groups) for n, groups in self.users.items()])
        self.sa_key = self.root / "pki" / "sa.key"
        self.sa_key.write_bytes(generate_private_key_pem())
        self.encryption_config = self.root / "encryption.yaml"
        self.encryption_config.write_text(new_encryption_config())
        self.kubeconfig = self.root / "kubeconfig"
        write_kubeconfig(self.kubeconfig, server=self.url(0), ca_cert=self.certs.ca_cert, token=self.token)

    def url(self, i: int = 0) -> str:
        return f"https://127.0.0.1:{self.ports[i]}"

    def start(self) -> None:
        self.store.start()
        self.store.wait_ready()
        for i in range(self.replicas):
            self.start_replica(i)
        for i in range(self.replicas):
            self.wait_ready(i)

    def start_or_close(self) -> None:
        """``start()`` for a fixture: when it times out, print the logs and close what did start."""
        try:
            self.start()
        except TimeoutError:
            print(self.logs())
            self.close()
            raise

    def start_replica(self, i: int) -> None:
        log = open(self.root / f"apiserver-{i}.log", "ab")
        self.procs[i] = subprocess.Popen(
            [sys.executable, "-m", "apiserver", "--etcd-servers", ",".join(self.store.endpoints),
             "--bind", f"127.0.0.1:{self.ports[i]}", "--tls-cert-file", str(self.certs.server_cert),
             "--tls-private-key-file", str(self.certs.server_key), "--token-auth-file", str(self.token_file),
             "--service-account-signing-key-file", str(self.sa_key),
             "--encryption-provider-config", str(self.encryption_config),
             "--audit-log-path", str(self.root / f"audit-{i}.log"),
             *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        log.close()

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.certs.ca_cert))

    def wait_ready(self, i: int = 0, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url(i) + "/readyz", context=self.ssl_context(), timeout=2) as r:
                    if r.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.1)
        raise TimeoutError(f"API server {i} not ready:\n{self.logs()}")

    def kill(self, i: int) -> None:
        proc = self.procs[i]
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)

    def kubectl(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        if KUBECTL is None:
            raise RuntimeError("kubectl is not installed")
        cmd = [KUBECTL, "--kubeconfig", str(self.kubeconfig), "--cache-dir", str(self.root / "kube-cache"), *args]
        result = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout,
                                env={**os.environ, **(env or {})})
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def request(self, method: str, path: str, body: Any = None, *, token: str | None = None,
                content_type: str = "application/json", headers: dict[str, str] | None = None,
                i: int = 0) -> tuple[int, Any, dict[str, str]]:
        import json

        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(self.url(i) + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", content_type)
        tok = self.token if token is None else token
        if tok:
            req.add_header("Authorization", f"Bearer {tok}")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, context=self.ssl_context(), timeout=30) as resp:
                raw = resp.read()
                return resp.status, (json.loads(raw) if raw and resp.headers.get_content_subtype() == "json" else raw), dict(resp.headers)
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw), dict(exc.headers)
            except ValueError:
                return exc.code, raw, dict(exc.headers)

    def logs(self) -> str:
        out = []
        for i in range(self.replicas):
            p = self.root / f"apiserver-{i}.log"
            if p.exists():
                out.append(f"==== apiserver-{i} ====\n" + p.read_text(errors="replace")[-5000:])
        return "\n".join(out) + "\n" + self.store.logs()

    def close(self) -> None:
        for i in range(self.replicas):
            self.kill(i)
        self.store.close()
