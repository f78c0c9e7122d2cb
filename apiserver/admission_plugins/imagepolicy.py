"""Image policy: OpenShift-style "image requirements" per namespace, set by namespace annotations.

    images.pilothouse.io/allowed-registries: "docker.io/library, registry.example.com/team"
        Images must come from one of these registries or registry/repository prefixes (matched
        on whole path segments). Image names are normalized like Docker does: ``nginx`` and
        ``library/nginx`` are ``docker.io/library/nginx`` (an entry ``docker.io/nginx`` also
        matches it), ``bitnami/redis`` is ``docker.io/bitnami/redis``, ``index.docker.io`` is
        ``docker.io``; a first segment with a dot, a colon or ``localhost`` is a registry.
    images.pilothouse.io/forbid-latest: "true"
        Rejects ``:latest`` and untagged images (which mean ``:latest``), unless pinned by digest
        (``name@sha256:...``).
    images.pilothouse.io/forbid-root: "true"
        Rejects containers that may run as root: effective ``runAsUser`` 0, or neither
        ``runAsNonRoot: true`` nor a non-zero ``runAsUser`` at pod or container level.

The rules apply to Pods (create; updates that change images or security contexts) and to the pod
templates of workloads (Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs, CronJobs,
ReplicationControllers, PodTemplates), which are rejected outright so a bad rollout fails at
``kubectl apply`` rather than in a controller. A rejection is 403 Forbidden naming every offending
container, image and rule, e.g.::

    pods "web" is forbidden: image policy of namespace "team-a": container "app" image "quay.io/x/y:1"
    is not from an allowed registry (images.pilothouse.io/allowed-registries: docker.io/library)

Malformed annotation values are rejected (422) when the namespace is created or updated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from apimachinery import errors
from apimachinery.defaults import image_tag
from apimachinery.validation import FieldError, Path

from ..handlers import Operation
from .common import Lookups, containers, forbidden, pod_template, security_context

ALLOWED_REGISTRIES = "images.pilothouse.io/allowed-registries"
FORBID_LATEST = "images.pilothouse.io/forbid-latest"
FORBID_ROOT = "images.pilothouse.io/forbid-root"
DOCKER_HUB = "docker.io"
_HUB_ALIASES = {"index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
_ENTRY_RE = re.compile(r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9]([a-z0-9._-]*[a-z0-9])?)*$")


@dataclass(frozen=True)
class ImageRef:
    registry: str
    repository: str
    tag: str | None  # None when the reference names no tag
    digest: str | None

    @property
    def names(self) -> tuple[str, ...]:
        """The full name(s) prefixes are matched against (official images also in short form)."""
        full = f"{self.registry}/{self.repository}"
        if self.registry == DOCKER_HUB and self.repository.startswith("library/"):
            return full, f"{DOCKER_HUB}/{self.repository[len('library/'):]}"
        return (full,)


def parse_image(image: Any) -> ImageRef | None:
    """Split a reference like Docker's ``ParseNormalizedNamed``; None if it is not one."""
    if not isinstance(image, str) or image_tag(image) is None:
        return None
    name, _, digest = image.partition("@")
    tag = None
    slash, colon = name.rfind("/"), name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first.lower(), rest
    else:
        registry, repository = DOCKER_HUB, name
    if registry in _HUB_ALIASES:
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in repository:
        repository = "library/" + repository
    return ImageRef(registry, repository, tag, digest or None)


def normalize_entry(entry: str) -> str:
    entry = entry.strip().rstrip("/")
    registry, sep, rest = entry.partition("/")
    registry = registry.lower()
    if registry in _HUB_ALIASES:
        registry = DOCKER_HUB
    return registry + (sep + rest if sep else "")


def parse_allowed(value: str) -> list[str]:
    return [normalize_entry(e) for e in value.split(",") if e.strip()]


def allowed(ref: ImageRef, entries: list[str]) -> bool:
    return any(name == e or name.startswith(e + "/") for name in ref.names for e in entries)


def _truthy(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower() == "true"


@dataclass(frozen=True)
class ImagePolicyRules:
    allowed_registries: list[str] | None
    forbid_latest: bool
    forbid_root: bool

    @property
    def active(self) -> bool:
        return self.allowed_registries is not None or self.forbid_latest or self.forbid_root


def rules_of(namespace: dict[str, Any] | None) -> ImagePolicyRules:
    annotations = ((namespace or {}).get("metadata") or {}).get("annotations") or {}
    registries = annotations.get(ALLOWED_REGISTRIES)
    return ImagePolicyRules(parse_allowed(registries) if isinstance(registries, str) else None,
                            _truthy(annotations.get(FORBID_LATEST)), _truthy(annotations.get(FORBID_ROOT)))


def annotation_errors(annotations: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    path = Path.of("metadata", "annotations")
    for key in (FORBID_LATEST, FORBID_ROOT):
        value = annotations.get(key)
        if value is not None and (not isinstance(value, str) or value.strip().lower() not in ("true", "false")):
            errs.append(FieldError.invalid(path.key(key), value, 'must be "true" or "false"'))
    value = annotations.get(ALLOWED_REGISTRIES)
    if value is not None:
        entries = parse_allowed(value) if isinstance(value, str) else []
        bad = [e for e in entries if not _ENTRY_RE.match(e)]
        if not isinstance(value, str) or not entries:
            errs.append(FieldError.invalid(path.key(ALLOWED_REGISTRIES), value,
                                           "must be a comma-separated list of registries or registry/repository "
                                           "prefixes, e.g. \"docker.io/library, registry.example.com\""))
        elif bad:
            errs.append(FieldError.invalid(path.key(ALLOWED_REGISTRIES), value,
                                           f"not a registry or registry/repository prefix: {', '.join(bad)}"))
    return errs


def violations(rules: ImagePolicyRules, spec: dict[str, Any]) -> list[str]:
    """One message per offending container and rule."""
    out: list[str] = []
    pod_sc = security_context(spec)
    for c in containers(spec):
        name = str(c.get("name", ""))
        image = c.get("image")
        ref = parse_image(image)
        where = f'container "{name}" image "{image}"'
        if ref is None:
            if rules.allowed_registries is not None or rules.forbid_latest:
                out.append(f"{where} is not a valid image reference")
        else:
            if rules.allowed_registries is not None and not allowed(ref, rules.allowed_registries):
                out.append(f"{where} is not from an allowed registry ({ALLOWED_REGISTRIES}: "
                           f"{', '.join(rules.allowed_registries)})")
            if rules.forbid_latest and ref.digest is None and (ref.tag is None or ref.tag == "latest"):
                what = "uses the :latest tag" if ref.tag == "latest" else "has no tag (which means :latest)"
                out.append(f"{where} {what}; use a version tag or pin a digest ({FORBID_LATEST})")
        if rules.forbid_root:
            sc = security_context(c)
            uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
            non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
            if isinstance(uid, int) and not isinstance(uid, bool) and uid == 0:
                out.append(f'container "{name}" runs as root (runAsUser=0) ({FORBID_ROOT})')
            elif non_root is not True and not (isinstance(uid, int) and not isinstance(uid, bool) and uid > 0):
                out.append(f'container "{name}" may run as root: set securityContext.runAsNonRoot=true or a '
                           f'non-zero runAsUser ({FORBID_ROOT})')
    return out


def _relevant(spec: dict[str, Any]) -> Any:
    return ([(c.get("image"), c.get("securityContext")) for c in containers(spec)], spec.get("securityContext"))


class ImagePolicy:
    def __init__(self, *, lookups: Lookups) -> None:
        self.lookups = lookups

    async def admit(self, op: Operation) -> None:
        rt = op.info.rt
        if op.verb not in ("create", "update") or op.info.subresource or not isinstance(op.obj, dict):
            return
        if rt.group == "" and rt.plural == "namespaces":
            errs = annotation_errors(((op.obj.get("metadata") or {}).get("annotations")) or {})
            if errs:
                raise errors.invalid(kind="Namespace", name=(op.obj.get("metadata") or {}).get("name", ""), causes=errs)
            return
        template = pod_template(rt, op.obj)
        if template is None:
            return
        if op.verb == "update":
            old = pod_template(rt, op.old)
            if old is not None and _relevant(old[1]) == _relevant(template[1]):
                return  # nothing the policy looks at changed (status writes, scaling, labels)
        namespace = await self.lookups.namespace(op)
        rules = rules_of(namespace)
        if not rules.active:
            return
        problems = violations(rules, template[1])
        if problems:
            raise forbidden(op, f'image policy of namespace "{op.info.namespace}": ' + "; ".join(problems))
