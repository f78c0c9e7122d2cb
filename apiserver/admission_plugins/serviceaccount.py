"""ServiceAccount admission: every pod runs as a service account and gets its API token mounted.

On pod create (as upstream's ``plugin/pkg/admission/serviceaccount``):

* ``spec.serviceAccountName`` defaults to ``default`` (the deprecated ``spec.serviceAccount``
  mirrors it, as the v1 API shows it);
* the named account must exist, else 403 ``error looking up service account ns/name:
  serviceaccount "name" not found``;
* the pod inherits the account's ``imagePullSecrets`` when it names none;
* unless ``automountServiceAccountToken`` is false (the pod's setting wins over the account's),
  a projected volume ``kube-api-access-<5 random>`` (a bound token valid 3607 s, the cluster CA
  from ConfigMap ``kube-root-ca.crt``, the namespace from the downward API) is added and mounted
  read-only at ``/var/run/secrets/kubernetes.io/serviceaccount`` in every container that does not
  already mount something there.

Upstream, the ServiceAccount controller creates ``default`` in every namespace and admission only
reads. Pilothouse has no such controller yet, so when a pod asks for ``default`` and it does not
exist, this plugin creates it on demand (a racing create on another replica is fine: 409 means it
exists). Any other missing account is an error, as upstream. Dry-run requests never create it.
"""

from __future__ import annotations

import random
from typing import Any, Callable

from apimachinery.errors import StatusError
from apimachinery.registry import ResourceType

from ..handlers import _NAME_CHARS, Operation
from ..strategy import Strategy
from .common import Lookups, containers, forbidden, is_pod

DEFAULT_NAME = "default"
VOLUME_PREFIX = "kube-api-access-"
MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_EXPIRATION_SECONDS = 3607  # upstream's "warn after 1h" expiry: 1h plus 7s
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


def token_volume(name: str) -> dict[str, Any]:
    """The projected volume upstream adds (with the API's defaults already filled in)."""
    return {"name": name, "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}}


def should_automount(sa: dict[str, Any] | None, spec: dict[str, Any]) -> bool:
    pod_setting = spec.get("automountServiceAccountToken")
    if isinstance(pod_setting, bool):
        return pod_setting
    sa_setting = (sa or {}).get("automountServiceAccountToken")
    if isinstance(sa_setting, bool):
        return sa_setting
    return True


def mount_token(spec: dict[str, Any]) -> None:
    """Add the token volume and its mounts, reusing a ``kube-api-access-*`` volume already there."""
    volumes = spec.get("volumes")
    if not isinstance(volumes, list):
        volumes = []
    existing = next((v.get("name") for v in volumes
                     if isinstance(v, dict) and str(v.get("name", "")).startswith(VOLUME_PREFIX)), None)
    name = existing or VOLUME_PREFIX + "".join(random.choice(_NAME_CHARS) for _ in range(5))
    needed = False
    for c in containers(spec):
        mounts = c.get("volumeMounts")
        if not isinstance(mounts, list):
            mounts = []
        if any(isinstance(m, dict) and m.get("mountPath") == MOUNT_PATH for m in mounts):
            continue  # an explicit mount at the token path wins
        mounts.append({"name": name, "readOnly": True, "mountPath": MOUNT_PATH})
        c["volumeMounts"] = mounts
        needed = True
    if needed and existing is None:
        volumes.append(token_volume(name))
        spec["volumes"] = volumes


class ServiceAccountAdmission:
    def __init__(self, *, lookups: Lookups, strategies: Callable[[ResourceType], Strategy]) -> None:
        self.lookups = lookups
        self.strategies = strategies
        self.sa_type = lookups.type("", "v1", "serviceaccounts")

    async def admit(self, op: Operation) -> None:
        rt = op.info.rt
        if not is_pod(rt) or op.verb != "create" or op.info.subresource or not isinstance(op.obj, dict):
            return
        pod = op.obj
        spec = pod.get("spec")
        if not isinstance(spec, dict):
            return  # validation answers 422
        annotations = (pod.get("metadata") or {}).get("annotations") or {}
        if MIRROR_ANNOTATION in annotations:
            # Static pods mirrored by a kubelet may not use the API's identities.
            if spec.get("serviceAccountName") or spec.get("serviceAccount"):
                raise forbidden(op, "a mirror pod may not reference service accounts")
            return
        name = spec.get("serviceAccountName") or spec.get("serviceAccount") or DEFAULT_NAME
        if not isinstance(name, str):
            return  # validation answers 422
        spec["serviceAccountName"] = name
        spec["serviceAccount"] = name
        namespace = op.info.namespace
        sa = await self.lookups.get(self.sa_type, namespace, name)
        if sa is None and name == DEFAULT_NAME:
            sa = await self._create_default(namespace, dry_run=op.dry_run)
        if sa is None:
            raise forbidden(op, f"error looking up service account {namespace}/{name}: "
                                f"serviceaccount \"{name}\" not found")
        if not spec.get("imagePullSecrets") and isinstance(sa.get("imagePullSecrets"), list) and sa["imagePullSecrets"]:
            spec["imagePullSecrets"] = [{"name": s.get("name", "")} for s in sa["imagePullSecrets"]
                                        if isinstance(s, dict)]
        if should_automount(sa, spec):
            mount_token(spec)

    async def _create_default(self, namespace: str, *, dry_run: bool) -> dict[str, Any] | None:
        """Create ``default`` in ``namespace`` (see the module docstring for why)."""
        obj: dict[str, Any] = {"apiVersion": "v1", "kind": "ServiceAccount",
                               "metadata": {"name": DEFAULT_NAME, "namespace": namespace}}
        if dry_run:
            return obj  # behave as if it existed; a real create would make it
        self.strategies(self.sa_type).prepare_create(obj)
        try:
            return await self.lookups.storage.create(self.sa_type, obj)
        except StatusError as err:
            if err.code == 409:  # another request (or replica) created it first
                return await self.lookups.get(self.sa_type, namespace, DEFAULT_NAME)
            raise
