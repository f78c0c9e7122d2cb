"""The kubelet's configuration: flags parsed into typed values (pure; no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from apimachinery.quantity import Quantity

TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
DEFAULT_CAPACITY = {"cpu": "4", "memory": "8Gi", "pods": "110"}


class ConfigError(ValueError):
    pass


def parse_pairs(text: str, what: str) -> dict[str, str]:
    """``k=v,k2=v2`` → dict (empty text → {})."""
    out: dict[str, str] = {}
    for item in (p.strip() for p in (text or "").split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{what}: {item!r} is not key=value")
        out[key.strip()] = value.strip()
    return out


def parse_capacity(text: str) -> dict[str, str]:
    """``cpu=4,memory=8Gi,pods=110`` → canonical quantities, defaults for what is missing."""
    raw = {**DEFAULT_CAPACITY, **parse_pairs(text, "--capacity")}
    out: dict[str, str] = {}
    for key, value in raw.items():
        try:
            out[key] = Quantity(value).to_string()
        except ValueError as exc:
            raise ConfigError(f"--capacity: {key}={value!r} is not a quantity") from exc
    return out


def parse_taints(text: str) -> list[dict[str, str]]:
    """``k=v:Effect,k2:Effect`` → Taint objects."""
    taints: list[dict[str, str]] = []
    for item in (p.strip() for p in (text or "").split(",")):
        if not item:
            continue
        kv, sep, effect = item.rpartition(":")
        if not sep or effect not in TAINT_EFFECTS:
            raise ConfigError(f"--taints: {item!r} must be key[=value]:{'|'.join(TAINT_EFFECTS)}")
        key, _, value = kv.partition("=")
        if not key:
            raise ConfigError(f"--taints: {item!r} has no key")
        taint = {"key": key, "effect": effect}
        if value:
            taint["value"] = value
        taints.append(taint)
    return taints


@dataclass
class KubeletConfig:
    node_name: str
    runtime: str = "process"
    kubeconfig: str | None = None
    capacity: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_CAPACITY))
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict[str, str]] = field(default_factory=list)
    fake_nodes: int = 0
    root_dir: Path = Path(".pilot/kubelet")
    bind: str = "127.0.0.1:10250"
    node_ip: str = ""
    cluster_dns: str = ""  # HOST:PORT of the cluster DNS, handed to process pods as PILOT_DNS
    cluster_domain: str = "cluster.local"
    pod_cidr: str = ""
    data_dir: Path | None = None  # local PersistentVolumes
    lease_interval: float = 10.0
    lease_duration: int = 40
    status_report_interval: float = 300.0
    node_status_check_interval: float = 10.0
    fake_start_delay: float = 0.0
    restart_backoff_base: float = 10.0
    restart_backoff_max: float = 300.0
    backoff_reset_after: float = 600.0
    status_concurrency: int = 32
    local_provisioner: bool | None = None
    cgroups: bool = True
    log_max_bytes: int = 10 * 1024 * 1024
    log_max_files: int = 5
    docker_host: str = ""
    docker_network: str = ""

    @property
    def bind_host(self) -> str:
        return self.bind.rpartition(":")[0] or "127.0.0.1"

    @property
    def bind_port(self) -> int:
        return int(self.bind.rpartition(":")[2])

    @property
    def internal_ip(self) -> str:
        host = self.node_ip or self.bind_host
        return "127.0.0.1" if host in ("0.0.0.0", "") else host

    @property
    def provisioner_enabled(self) -> bool:
        if self.local_provisioner is not None:
            return self.local_provisioner
        return self.runtime != "fake"

    def node_names(self) -> list[str]:
        if self.fake_nodes and self.fake_nodes > 0:
            return [f"{self.node_name}-{i}" for i in range(self.fake_nodes)]
        return [self.node_name]

    def validate(self) -> None:
        if self.runtime not in ("process", "docker", "fake"):
            raise ConfigError(f"--runtime must be process, docker or fake, not {self.runtime!r}")
        if self.fake_nodes and self.runtime != "fake":
            raise ConfigError("--fake-nodes needs --runtime fake")
        if not self.node_name:
            raise ConfigError("--node-name is required")
