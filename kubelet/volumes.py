"""Pod volumes as directories under the pod's directory, and how containers see them.

Every volume of a pod is ``<root>/pods/<uid>/volumes/<name>``:

* ``emptyDir`` — a directory (``medium: Memory``: a directory under /dev/shm, linked here);
  ``sizeLimit`` is not enforced;
* ``hostPath`` — a symlink to the host path (``type`` checked; ``DirectoryOrCreate``/``FileOrCreate`` create);
* ``configMap``, ``secret``, ``downwardAPI``, ``projected`` — files written the way the kubelet's
  AtomicWriter does (a timestamped ``..<ts>`` directory, a ``..data`` symlink swapped atomically,
  one symlink per top-level entry), with ``items``, ``defaultMode``/``mode`` and ``optional``;
  rewritten when the object (or the pod's labels/annotations, or a token's age) changes;
* ``projected.serviceAccountToken`` — a token from ``POST serviceaccounts/<sa>/token`` bound to the
  pod (``boundObjectRef``), refreshed after 80 % of its lifetime; ``configMap: kube-root-ca.crt``
  falls back to the cluster CA from the kubelet's kubeconfig while no controller has published it;
* ``persistentVolumeClaim`` — a symlink to the bound PersistentVolume's ``hostPath``/``local`` path
  (claims of the ``local`` StorageClass are provisioned on this node first, see ``provisioner``).

How a container sees them (``process`` runtime; no mount namespaces, so no root needed): each
container has a root directory ``<pod dir>/containers/<name>/root`` — exported as ``$PILOT_ROOT`` and
the default working directory — in which every ``volumeMount`` is a symlink at its ``mountPath``
(``subPath`` included) pointing at the volume. A pod that mounts a claim at ``/data`` writes
``$PILOT_ROOT/data/x`` (or ``data/x`` from its working directory); the service-account token is at
``$PILOT_ROOT/var/run/secrets/kubernetes.io/serviceaccount/token``. A ``workingDir`` inside a mount
maps into the root; one that exists on the host is used as is; any other is created under the root.
The ``docker`` runtime bind-mounts the same directories at the real mount paths.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import shutil
import stat
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from apiclient.rest import RESTClient, resource
from apimachinery import meta as m
from apimachinery.errors import StatusError

from .envvars import EnvError, field_ref, resource_field_ref
from .runtime.base import Mount

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Lookup = Callable[[str, str, str], Obj | None]
SERVICE_ACCOUNTS = resource("serviceaccounts")
DEFAULT_MODE = 0o644
KUBE_ROOT_CA = "kube-root-ca.crt"


class VolumeError(Exception):
    """A volume cannot be set up yet (``FailedMount``); the pod worker retries."""


# ---------------------------------------------------------------------- atomic writer

def write_atomic(target: Path, files: dict[str, tuple[bytes, int]]) -> bool:
    """Make ``target`` hold exactly ``files`` (relative path → (content, mode)); False if nothing changed."""
    target.mkdir(parents=True, exist_ok=True)
    data_link = target / "..data"
    current = None
    if data_link.is_symlink():
        current = target / os.readlink(data_link)
        if _same(current, files):
            return False
    stamp = datetime.now(timezone.utc).strftime("..%Y_%m_%d_%H_%M_%S.%f") + f"{time.time_ns() % 1000:03d}"
    new_dir = target / stamp
    new_dir.mkdir()
    for rel, (content, mode) in files.items():
        path = new_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        os.chmod(path, mode)
    tmp_link = target / "..data_tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp_link.unlink()
    os.symlink(stamp, tmp_link)
    os.replace(tmp_link, data_link)
    wanted = {rel.split("/", 1)[0] for rel in files}
    for entry in target.iterdir():
        if entry.name.startswith(".."):
            continue
        if entry.name not in wanted:
            if entry.is_symlink():
                entry.unlink()
    for top in wanted:
        link = target / top
        if not link.is_symlink():
            if link.exists():
                shutil.rmtree(link, ignore_errors=True) if link.is_dir() else link.unlink()
            os.symlink(f"..data/{top}", link)
    if current is not None and current.name.startswith("..") and current != new_dir:
        shutil.rmtree(current, ignore_errors=True)
    return True


def _same(current: Path, files: dict[str, tuple[bytes, int]]) -> bool:
    try:
        existing = {str(p.relative_to(current)) for p in current.rglob("*") if p.is_file()}
        if existing != set(files):
            return False
        for rel, (content, mode) in files.items():
            path = current / rel
            if path.read_bytes() != content or stat.S_IMODE(path.stat().st_mode) != mode:
                return False
    except OSError:
        return False
    return True


def object_files(obj: Obj | None, kind: str, source: Obj, *, what: str) -> dict[str, tuple[bytes, int]]:
    """configMap/secret volume (or projection) contents: items, modes, optional."""
    name = source.get("name") or source.get("secretName") or ""
    optional = bool(source.get("optional"))
    default_mode = source.get("defaultMode")
    mode_default = int(default_mode) if isinstance(default_mode, int) else DEFAULT_MODE
    if obj is None:
        if optional:
            return {}
        raise VolumeError(f'{what} "{name}" not found')
    data: dict[str, bytes] = {}
    if kind == "secrets":
        for k, v in (obj.get("data") or {}).items():
            with contextlib.suppress(ValueError, TypeError):
                data[k] = base64.b64decode(v or "")
    else:
        for k, v in (obj.get("data") or {}).items():
            data[k] = str(v).encode()
        for k, v in (obj.get("binaryData") or {}).items():
            with contextlib.suppress(ValueError, TypeError):
                data[k] = base64.b64decode(v or "")
    items = source.get("items")
    files: dict[str, tuple[bytes, int]] = {}
    if items:
        for item in items:
            key = item.get("key")
            if key not in data:
                if optional:
                    continue
                raise VolumeError(f"configmap references non-existent config key: {key}" if kind == "configmaps"
                                  else f"references non-existent secret key: {key}")
            mode = item.get("mode")
            files[str(item.get("path") or key).lstrip("/")] = (data[key], int(mode) if isinstance(mode, int) else mode_default)
    else:
        for key, content in data.items():
            files[key] = (content, mode_default)
    return files


def downward_files(pod: Obj, source: Obj, *, pod_ip: str, host_ip: str, node_name: str,
                   allocatable: dict[str, str]) -> dict[str, tuple[bytes, int]]:
    default_mode = source.get("defaultMode")
    mode_default = int(default_mode) if isinstance(default_mode, int) else DEFAULT_MODE
    files: dict[str, tuple[bytes, int]] = {}
    containers = {c.get("name"): c for c in (pod.get("spec") or {}).get("containers") or []}
    for item in source.get("items") or []:
        path = str(item.get("path") or "").lstrip("/")
        if not path:
            continue
        mode = item.get("mode")
        try:
            if item.get("fieldRef"):
                value = field_ref(pod, item["fieldRef"].get("fieldPath", ""), pod_ip=pod_ip, host_ip=host_ip,
                                  node_name=node_name)
            elif item.get("resourceFieldRef"):
                ref = item["resourceFieldRef"]
                container = containers.get(ref.get("containerName")) or next(iter(containers.values()), {})
                value = resource_field_ref(container, ref, allocatable)
            else:
                continue
        except EnvError as exc:
            raise VolumeError(str(exc)) from exc
        files[path] = (value.encode(), int(mode) if isinstance(mode, int) else mode_default)
    return files


# ---------------------------------------------------------------------- manager

@dataclass
class _Token:
    token: str
    expires: float
    refresh_at: float


@dataclass
class PodVolumes:
    pod_dir: Path
    paths: dict[str, Path] = field(default_factory=dict)  # volume name → directory (or link)
    tokens: dict[str, _Token] = field(default_factory=dict)  # "<volume>/<path>" → token


def termination_message_path(container: Obj) -> str:
    return str(container.get("terminationMessagePath") or "/dev/termination-log")


class VolumeManager:
    def __init__(self, *, root: Path, client: RESTClient, lookup: Lookup, node_name: str, host_ip: str,
                 allocatable: dict[str, str], ca_data: bytes | None,
                 provision: Callable[[Obj, str], Awaitable[Obj | None]] | None = None,
                 get_object: Callable[[str, str, str], Awaitable[Obj | None]] | None = None) -> None:
        self.root = Path(root)
        self.client = client
        self.lookup = lookup
        self.node_name = node_name
        self.host_ip = host_ip
        self.allocatable = allocatable
        self.ca_data = ca_data
        self.provision = provision
        self.get_object = get_object
        self.pods: dict[str, PodVolumes] = {}

    def pod_dir(self, uid: str) -> Path:
        return self.root / "pods" / uid

    # ------------------------------------------------------------------ setup

    async def setup(self, pod: Obj, *, pod_ip: str) -> PodVolumes:
        uid = m.uid(pod)
        pv = self.pods.get(uid)
        if pv is None:
            pv = PodVolumes(self.pod_dir(uid))
            self.pods[uid] = pv
        vol_root = pv.pod_dir / "volumes"
        vol_root.mkdir(parents=True, exist_ok=True)
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            name = volume.get("name")
            if not name:
                continue
            path = vol_root / name
            await self._setup_one(pod, volume, path, pv, pod_ip=pod_ip)
            pv.paths[name] = path
        return pv

    async def _setup_one(self, pod: Obj, volume: Obj, path: Path, pv: PodVolumes, *, pod_ip: str) -> None:
        ns = m.namespace(pod)
        if volume.get("emptyDir") is not None:
            if (volume["emptyDir"] or {}).get("medium") == "Memory" and Path("/dev/shm").is_dir():
                target = Path("/dev/shm") / "pilothouse" / m.uid(pod) / volume["name"]
                target.mkdir(parents=True, exist_ok=True)
                self._link(path, target)
            elif not path.exists():
                path.mkdir(parents=True, exist_ok=True)
                os.chmod(path, 0o777)
        elif volume.get("hostPath") is not None:
            self._link(path, self._host_path(volume["hostPath"]))
        elif volume.get("configMap") is not None:
            src = volume["configMap"]
            files = self._configmap_files(ns, src)
            write_atomic(path, files)
        elif volume.get("secret") is not None:
            src = volume["secret"]
            obj = self.lookup("secrets", ns, src.get("secretName", ""))
            write_atomic(path, object_files(obj, "secrets", src, what="secret"))
        elif volume.get("downwardAPI") is not None:
            write_atomic(path, downward_files(pod, volume["downwardAPI"], pod_ip=pod_ip, host_ip=self.host_ip,
                                              node_name=self.node_name, allocatable=self.allocatable))
        elif volume.get("projected") is not None:
            write_atomic(path, await self._projected_files(pod, volume, pv, pod_ip=pod_ip))
        elif volume.get("persistentVolumeClaim") is not None:
            self._link(path, await self._claim_path(pod, volume["persistentVolumeClaim"]))
        elif volume.get("ephemeral") is not None:
            claim = {"claimName": f"{m.name(pod)}-{volume['name']}"}
            self._link(path, await self._claim_path(pod, claim))
        else:
            kinds = [k for k in volume if k != "name"]
            raise VolumeError(f"volume {volume.get('name')!r}: unsupported volume type {kinds}")

    @staticmethod
    def _link(path: Path, target: Path) -> None:
        if path.is_symlink():
            if os.readlink(path) == str(target):
                return
            path.unlink()
        elif path.exists():
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(str(target), path)

    @staticmethod
    def _host_path(src: Obj) -> Path:
        target = Path(src.get("path") or "/")
        kind = src.get("type") or ""
        if kind == "DirectoryOrCreate":
            target.mkdir(parents=True, exist_ok=True)
        elif kind == "FileOrCreate":
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch(exist_ok=True)
        elif kind == "Directory" and not target.is_dir():
            raise VolumeError(f"hostPath type check failed: {target} is not a directory")
        elif kind == "File" and not target.is_file():
            raise VolumeError(f"hostPath type check failed: {target} is not a file")
        elif kind == "Socket" and not (target.exists() and stat.S_ISSOCK(target.stat().st_mode)):
            raise VolumeError(f"hostPath type check failed: {target} is not a socket file")
        elif kind == "CharDevice" and not (target.exists() and stat.S_ISCHR(target.stat().st_mode)):
            raise VolumeError(f"hostPath type check failed: {target} is not a character device")
        elif kind == "BlockDevice" and not (target.exists() and stat.S_ISBLK(target.stat().st_mode)):
            raise VolumeError(f"hostPath type check failed: {target} is not a block device")
        return target

    def _configmap_files(self, ns: str, src: Obj) -> dict[str, tuple[bytes, int]]:
        name = src.get("name", "")
        obj = self.lookup("configmaps", ns, name)
        if obj is None and name == KUBE_ROOT_CA and self.ca_data:
            obj = {"data": {"ca.crt": self.ca_data.decode()}}
        return object_files(obj, "configmaps", src, what="configmap")

    async def _projected_files(self, pod: Obj, volume: Obj, pv: PodVolumes, *, pod_ip: str) -> dict[str, tuple[bytes, int]]:
        ns = m.namespace(pod)
        proj = volume["projected"] or {}
        default_mode = proj.get("defaultMode")
        files: dict[str, tuple[bytes, int]] = {}
        for source in proj.get("sources") or []:
            if source.get("serviceAccountToken") is not None:
                spec = source["serviceAccountToken"]
                key = f"{volume['name']}/{spec.get('path', 'token')}"
                token = await self._token(pod, spec, pv.tokens.get(key))
                pv.tokens[key] = token
                mode = int(default_mode) if isinstance(default_mode, int) else DEFAULT_MODE
                files[str(spec.get("path") or "token")] = (token.token.encode(), mode)
            elif source.get("configMap") is not None:
                src = dict(source["configMap"])
                if isinstance(default_mode, int):
                    src.setdefault("defaultMode", default_mode)
                files.update(self._configmap_files(ns, src))
            elif source.get("secret") is not None:
                src = dict(source["secret"])
                if isinstance(default_mode, int):
                    src.setdefault("defaultMode", default_mode)
                obj = self.lookup("secrets", ns, src.get("name", ""))
                files.update(object_files(obj, "secrets", src, what="secret"))
            elif source.get("downwardAPI") is not None:
                src = dict(source["downwardAPI"])
                if isinstance(default_mode, int):
                    src.setdefault("defaultMode", default_mode)
                files.update(downward_files(pod, src, pod_ip=pod_ip, host_ip=self.host_ip, node_name=self.node_name,
                                            allocatable=self.allocatable))
        return files

    async def _token(self, pod: Obj, spec: Obj, current: _Token | None) -> _Token:
        now = time.time()
        if current is not None and now < current.refresh_at:
            return current
        sa = (pod.get("spec") or {}).get("serviceAccountName") or "default"
        expiration = int(spec.get("expirationSeconds") or 3600)
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"audiences": [spec["audience"]] if spec.get("audience") else [],
                         "expirationSeconds": expiration,
                         "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": m.name(pod), "uid": m.uid(pod)}}}
        try:
            out = await self.client.create(SERVICE_ACCOUNTS, body, namespace=m.namespace(pod), name=sa,
                                           subresource="token")
        except StatusError as err:
            if current is not None and now < current.expires:
                return current
            raise VolumeError(f"failed to fetch token: {err.message}") from err
        status = out.get("status") or {}
        token = status.get("token") or ""
        if not token:
            raise VolumeError("failed to fetch token: empty TokenRequest status")
        expires = now + expiration
        with contextlib.suppress(ValueError, TypeError):
            expires = m.parse_rfc3339(status["expirationTimestamp"]).timestamp()
        lifetime = max(1.0, expires - now)
        return _Token(token, expires, now + min(0.8 * lifetime, 24 * 3600))

    async def _claim_path(self, pod: Obj, src: Obj) -> Path:
        ns = m.namespace(pod)
        claim_name = src.get("claimName", "")
        pvc = await self._get("persistentvolumeclaims", ns, claim_name)
        if pvc is None:
            raise VolumeError(f'persistentvolumeclaim "{claim_name}" not found')
        if m.deletion_timestamp(pvc):
            raise VolumeError(f'persistentvolumeclaim "{claim_name}" is being deleted')
        volume_name = (pvc.get("spec") or {}).get("volumeName")
        pv = await self._get("persistentvolumes", "", volume_name) if volume_name else None
        if pv is None and self.provision is not None:
            pv = await self.provision(pvc, self.node_name)
        if pv is None:
            raise VolumeError(f'pod has unbound immediate PersistentVolumeClaims: "{claim_name}" is not bound')
        spec = pv.get("spec") or {}
        path = (spec.get("hostPath") or {}).get("path") or (spec.get("local") or {}).get("path")
        if not path:
            raise VolumeError(f"persistentvolume {m.name(pv)!r}: only hostPath and local volumes can be used here")
        target = Path(path)
        if (spec.get("hostPath") or {}).get("type") in ("DirectoryOrCreate", None, ""):
            target.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            raise VolumeError(f"persistentvolume {m.name(pv)!r}: path {path} does not exist on this node")
        return target

    async def _get(self, kind: str, ns: str, name: str) -> Obj | None:
        if self.get_object is not None:
            return await self.get_object(kind, ns, name)
        return None

    # ------------------------------------------------------------------ refresh and teardown

    async def refresh(self, pod: Obj, *, pod_ip: str) -> bool:
        """Rewrite configMap/secret/downwardAPI/projected volumes whose content changed; True if any did."""
        uid = m.uid(pod)
        pv = self.pods.get(uid)
        if pv is None:
            return False
        changed = False
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            name = volume.get("name")
            if name not in pv.paths:
                continue
            path = pv.paths[name]
            try:
                if volume.get("configMap") is not None:
                    changed |= write_atomic(path, self._configmap_files(m.namespace(pod), volume["configMap"]))
                elif volume.get("secret") is not None:
                    src = volume["secret"]
                    obj = self.lookup("secrets", m.namespace(pod), src.get("secretName", ""))
                    changed |= write_atomic(path, object_files(obj, "secrets", src, what="secret"))
                elif volume.get("downwardAPI") is not None:
                    changed |= write_atomic(path, downward_files(
                        pod, volume["downwardAPI"], pod_ip=pod_ip, host_ip=self.host_ip, node_name=self.node_name,
                        allocatable=self.allocatable))
                elif volume.get("projected") is not None:
                    changed |= write_atomic(path, await self._projected_files(pod, volume, pv, pod_ip=pod_ip))
            except (VolumeError, OSError) as exc:
                log.warning("refresh of volume %s of %s/%s failed: %s", name, m.namespace(pod), m.name(pod), exc)
        return changed

    def references(self, pod: Obj, kind: str, name: str) -> bool:
        """Whether the pod uses ConfigMap/Secret ``name`` in a volume."""
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            if kind == "configmaps" and (volume.get("configMap") or {}).get("name") == name:
                return True
            if kind == "secrets" and (volume.get("secret") or {}).get("secretName") == name:
                return True
            for source in ((volume.get("projected") or {}).get("sources") or []):
                if kind == "configmaps" and (source.get("configMap") or {}).get("name") == name:
                    return True
                if kind == "secrets" and (source.get("secret") or {}).get("name") == name:
                    return True
        return False

    def container_mounts(self, pod: Obj, container: Obj) -> list[Mount]:
        pv = self.pods.get(m.uid(pod))
        out: list[Mount] = []
        for vm in container.get("volumeMounts") or []:
            name = vm.get("name")
            if pv is None or name not in pv.paths or not vm.get("mountPath"):
                continue
            out.append(Mount(str(pv.paths[name]), vm["mountPath"], bool(vm.get("readOnly")),
                             str(vm.get("subPath") or "")))
        return out

    def termination_log(self, uid: str, container_name: str, attempt: int) -> Path:
        """The host file one container instance's termination message is written to."""
        return self.pod_dir(uid) / "containers" / container_name / f"{attempt}.termination-log"

    def new_termination_log(self, pod: Obj, container: Obj, attempt: int, *, root: Path | None = None) -> Path:
        """Create the instance's (empty, world-writable) termination log; with ``root`` (process
        runtime) also link it at ``<root>/<terminationMessagePath>``, where the container finds it."""
        path = self.termination_log(m.uid(pod), str(container.get("name")), attempt)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        path.chmod(0o666)  # the container may run as any user
        if root is not None:
            self._link(root / termination_message_path(container).lstrip("/"), path)
        return path

    def container_root(self, pod: Obj, container: Obj) -> tuple[Path, str]:
        """(root dir with the container's mounts as symlinks, working directory) for the process runtime."""
        root = self.pod_dir(m.uid(pod)) / "containers" / str(container.get("name")) / "root"
        root.mkdir(parents=True, exist_ok=True)
        mounts = self.container_mounts(pod, container)
        for mount in mounts:
            link = root / mount.container_path.lstrip("/")
            source = Path(mount.host_path)
            if mount.sub_path:
                source = source / mount.sub_path
                if not source.exists():
                    source.mkdir(parents=True, exist_ok=True)
            link.parent.mkdir(parents=True, exist_ok=True)
            self._link(link, source)
        workdir = str(container.get("workingDir") or "")
        if not workdir:
            return root, str(root)
        for mount in sorted(mounts, key=lambda mt: -len(mt.container_path)):
            prefix = mount.container_path.rstrip("/")
            if workdir == prefix or workdir.startswith(prefix + "/"):
                return root, str(root / workdir.lstrip("/"))
        if Path(workdir).is_dir():
            return root, workdir
        inner = root / workdir.lstrip("/")
        inner.mkdir(parents=True, exist_ok=True)
        return root, str(inner)

    def teardown(self, uid: str) -> None:
        """Remove the pod's directory: emptyDirs and written volumes go, hostPath and claim data stay."""
        self.pods.pop(uid, None)
        pod_dir = self.pod_dir(uid)
        volumes = pod_dir / "volumes"
        if volumes.is_dir():
            for entry in volumes.iterdir():
                if entry.is_symlink():
                    entry.unlink()  # never follow into hostPath or claim data
        containers = pod_dir / "containers"
        if containers.is_dir():
            for link in containers.rglob("*"):
                if link.is_symlink():
                    link.unlink()
        shutil.rmtree(pod_dir, ignore_errors=True)
        shutil.rmtree(Path("/dev/shm") / "pilothouse" / uid, ignore_errors=True)

    def known_pod_dirs(self) -> list[str]:
        base = self.root / "pods"
        return [p.name for p in base.iterdir()] if base.is_dir() else []

