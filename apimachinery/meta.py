"""Helpers for objects as plain JSON dicts: metadata access, owner references, time, identities.

Every component handles API objects as the decoded JSON (``dict``), not as generated classes,
so these helpers keep the access patterns (``labels(obj)``, ``is_controlled_by(rs, deploy)``) in
one place and free of ``KeyError`` edge cases: getters never mutate and tolerate missing or
``null`` metadata; setters create ``metadata`` (and the map inside it) as needed.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = [
    "now_rfc3339",
    "now_rfc3339_micro",
    "format_rfc3339",
    "format_rfc3339_micro",
    "parse_rfc3339",
    "new_uid",
    "deep_copy",
    "get_metadata",
    "ensure_metadata",
    "name",
    "namespace",
    "uid",
    "resource_version",
    "generation",
    "creation_timestamp",
    "deletion_timestamp",
    "labels",
    "annotations",
    "finalizers",
    "owner_references",
    "set_name",
    "set_namespace",
    "set_resource_version",
    "set_label",
    "remove_label",
    "set_annotation",
    "remove_annotation",
    "add_finalizer",
    "remove_finalizer",
    "controller_ref",
    "is_controlled_by",
    "new_controller_ref",
    "object_key",
    "split_object_key",
    "GroupVersion",
    "GroupVersionKind",
    "GroupVersionResource",
    "GroupResource",
    "GroupKind",
]


# ---------------------------------------------------------------------------------------------
# Time and identity


def format_rfc3339(dt: datetime) -> str:
    """``metav1.Time`` wire form: UTC, seconds precision, ``Z`` (``2025-01-01T00:00:00Z``)."""
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def format_rfc3339_micro(dt: datetime) -> str:
    """``metav1.MicroTime`` wire form (Lease ``renewTime``): six fractional digits, ``Z``."""
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_rfc3339() -> str:
    return format_rfc3339(datetime.now(UTC))


def now_rfc3339_micro() -> str:
    return format_rfc3339_micro(datetime.now(UTC))


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 timestamp (``Z`` or offset, optional fraction) into an aware UTC datetime."""
    if not isinstance(text, str) or len(text) < 20 or text[10] not in "Tt":
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    value = text[:-1] + "+00:00" if text[-1] in "Zz" else text
    head, dot, rest = value.partition(".")
    if dot:
        # fromisoformat before 3.11 only took 3 or 6 digits; normalise any length to 6.
        digits = rest[: len(rest) - len(rest.lstrip("0123456789"))]
        value = head + "." + (digits + "000000")[:6] + rest[len(digits):]
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"RFC 3339 timestamp without offset: {text!r}")
    return parsed.astimezone(UTC)


def new_uid() -> str:
    """A fresh ``metadata.uid`` (random UUID, the form the apiserver uses)."""
    return str(uuid.uuid4())


def deep_copy(obj: Any) -> Any:
    """Deep copy of JSON-compatible data, through orjson (several times faster than deepcopy).

    What orjson refuses (ints beyond 64 bits, non-string keys, other objects, nesting deeper
    than 255 levels) is copied by a loop that needs no recursion, so even absurdly deep input
    cannot raise ``RecursionError``. Tuples come back as lists, as they would from the wire.
    """
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    try:
        return orjson.loads(orjson.dumps(obj))
    except (TypeError, orjson.JSONEncodeError, orjson.JSONDecodeError):
        return _copy_iteratively(obj)


def _copy_iteratively(obj: Any) -> Any:
    def shell(value: Any) -> Any:
        if isinstance(value, dict):
            return {}
        if isinstance(value, list | tuple):
            return []
        if value is None or isinstance(value, str | int | float | bool):
            return value
        return copy.deepcopy(value)

    root = shell(obj)
    stack: list[tuple[Any, Any]] = [(obj, root)]
    while stack:
        source, target = stack.pop()
        items = source.items() if isinstance(source, dict) else enumerate(source)
        for key, value in items:
            copied = shell(value)
            if isinstance(target, dict):
                target[key] = copied
            else:
                target.append(copied)
            if isinstance(value, dict | list | tuple):
                stack.append((value, copied))
    return root


# ---------------------------------------------------------------------------------------------
# Metadata getters and setters


def get_metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def ensure_metadata(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
        obj["metadata"] = meta
    return meta


def _str_field(obj: Mapping[str, Any], key: str) -> str:
    value = get_metadata(obj).get(key)
    return value if isinstance(value, str) else ""


def name(obj: Mapping[str, Any]) -> str:
    return _str_field(obj, "name")


def namespace(obj: Mapping[str, Any]) -> str:
    return _str_field(obj, "namespace")


def uid(obj: Mapping[str, Any]) -> str:
    return _str_field(obj, "uid")


def resource_version(obj: Mapping[str, Any]) -> str:
    return _str_field(obj, "resourceVersion")


def creation_timestamp(obj: Mapping[str, Any]) -> str:
    return _str_field(obj, "creationTimestamp")


def deletion_timestamp(obj: Mapping[str, Any]) -> str:
    """The deletion timestamp, ``""`` when the object is not being deleted."""
    return _str_field(obj, "deletionTimestamp")


def generation(obj: Mapping[str, Any]) -> int:
    value = get_metadata(obj).get("generation")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    """The label map (read-only view semantics: do not mutate; use ``set_label``)."""
    value = get_metadata(obj).get("labels")
    return value if isinstance(value, Mapping) else {}


def annotations(obj: Mapping[str, Any]) -> Mapping[str, str]:
    value = get_metadata(obj).get("annotations")
    return value if isinstance(value, Mapping) else {}


def finalizers(obj: Mapping[str, Any]) -> list[str]:
    value = get_metadata(obj).get("finalizers")
    return [f for f in value if isinstance(f, str)] if isinstance(value, list) else []


def owner_references(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    value = get_metadata(obj).get("ownerReferences")
    return [r for r in value if isinstance(r, Mapping)] if isinstance(value, list) else []


def set_name(obj: dict[str, Any], value: str) -> None:
    ensure_metadata(obj)["name"] = value


def set_namespace(obj: dict[str, Any], value: str) -> None:
    ensure_metadata(obj)["namespace"] = value


def set_resource_version(obj: dict[str, Any], value: str | int) -> None:
    """resourceVersion is always a *string* on the wire (the Python client insists)."""
    ensure_metadata(obj)["resourceVersion"] = str(value)


def _ensure_map(obj: dict[str, Any], key: str) -> dict[str, Any]:
    meta = ensure_metadata(obj)
    value = meta.get(key)
    if not isinstance(value, dict):
        value = {}
        meta[key] = value
    return value


def set_label(obj: dict[str, Any], key: str, value: str) -> None:
    _ensure_map(obj, "labels")[key] = value


def remove_label(obj: dict[str, Any], key: str) -> bool:
    current = get_metadata(obj).get("labels")
    if isinstance(current, dict) and key in current:
        del current[key]
        return True
    return False


def set_annotation(obj: dict[str, Any], key: str, value: str) -> None:
    _ensure_map(obj, "annotations")[key] = value


def remove_annotation(obj: dict[str, Any], key: str) -> bool:
    current = get_metadata(obj).get("annotations")
    if isinstance(current, dict) and key in current:
        del current[key]
        return True
    return False


def add_finalizer(obj: dict[str, Any], value: str) -> bool:
    """Append ``value`` unless present; True if the object changed."""
    meta = ensure_metadata(obj)
    current = meta.get("finalizers")
    if not isinstance(current, list):
        current = []
        meta["finalizers"] = current
    if value in current:
        return False
    current.append(value)
    return True


def remove_finalizer(obj: dict[str, Any], value: str) -> bool:
    """Remove every occurrence of ``value``; True if the object changed."""
    meta = get_metadata(obj)
    current = meta.get("finalizers")
    if not isinstance(current, list) or value not in current:
        return False
    kept = [f for f in current if f != value]
    if kept:
        current[:] = kept
    else:
        del ensure_metadata(obj)["finalizers"]  # upstream omits an empty list
    return True


# ---------------------------------------------------------------------------------------------
# Owner references


def controller_ref(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The owner reference with ``controller: true``, if any (at most one is valid)."""
    for ref in owner_references(obj):
        if ref.get("controller") is True:
            return ref
    return None


def is_controlled_by(obj: Mapping[str, Any], owner: Mapping[str, Any]) -> bool:
    """True if ``obj``'s controller reference points at ``owner`` (matched by UID)."""
    ref = controller_ref(obj)
    owner_uid = uid(owner)
    return ref is not None and bool(owner_uid) and ref.get("uid") == owner_uid


def new_controller_ref(
    owner: Mapping[str, Any],
    *,
    api_version: str | None = None,
    kind: str | None = None,
    block_owner_deletion: bool = True,
) -> dict[str, Any]:
    """A controller owner reference to ``owner`` (``metav1.NewControllerRef``).

    ``api_version``/``kind`` default to the owner's own ``apiVersion``/``kind`` fields.
    All four identifying fields are always present: the Python client requires them.
    """
    return {
        "apiVersion": api_version if api_version is not None else str(owner.get("apiVersion") or ""),
        "kind": kind if kind is not None else str(owner.get("kind") or ""),
        "name": name(owner),
        "uid": uid(owner),
        "controller": True,
        "blockOwnerDeletion": block_owner_deletion,
    }


def object_key(obj: Mapping[str, Any]) -> str:
    """``namespace/name`` (or ``name`` for cluster-scoped objects): the work-queue key."""
    ns = namespace(obj)
    return f"{ns}/{name(obj)}" if ns else name(obj)


def split_object_key(key: str) -> tuple[str, str]:
    """Inverse of ``object_key``: ``(namespace, name)``, namespace ``""`` when absent."""
    ns, sep, rest = key.partition("/")
    if not sep:
        return "", key
    if "/" in rest:
        raise ValueError(f"unexpected key format: {key!r}")
    return ns, rest


# ---------------------------------------------------------------------------------------------
# Group / version / kind / resource identities (k8s.io/apimachinery/pkg/runtime/schema)


@dataclass(frozen=True, slots=True)
class GroupVersion:
    group: str
    version: str

    @classmethod
    def parse(cls, api_version: str) -> GroupVersion:
        """``v1`` → ("", "v1"); ``apps/v1`` → ("apps", "v1"); more slashes is an error."""
        if not api_version or api_version == "/":
            return cls("", "")
        count = api_version.count("/")
        if count == 0:
            return cls("", api_version)
        if count == 1:
            group, version = api_version.split("/")
            return cls(group, version)
        raise ValueError(f"unexpected GroupVersion string: {api_version}")

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def with_kind(self, kind: str) -> GroupVersionKind:
        return GroupVersionKind(self.group, self.version, kind)

    def with_resource(self, resource: str) -> GroupVersionResource:
        return GroupVersionResource(self.group, self.version, resource)

    def __str__(self) -> str:
        return self.api_version


@dataclass(frozen=True, slots=True)
class GroupKind:
    group: str
    kind: str

    def __str__(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind


@dataclass(frozen=True, slots=True)
class GroupResource:
    group: str
    resource: str

    @classmethod
    def parse(cls, text: str) -> GroupResource:
        """``deployments.apps`` → ("apps", "deployments"); ``pods`` → ("", "pods")."""
        resource, dot, group = text.partition(".")
        return cls(group if dot else "", resource)

    def __str__(self) -> str:
        return f"{self.resource}.{self.group}" if self.group else self.resource


@dataclass(frozen=True, slots=True)
class GroupVersionKind:
    group: str
    version: str
    kind: str

    @classmethod
    def from_api_version_and_kind(cls, api_version: str, kind: str) -> GroupVersionKind:
        """Like ``schema.FromAPIVersionAndKind``: an unparsable apiVersion yields empty group/version."""
        try:
            gv = GroupVersion.parse(api_version)
        except ValueError:
            return cls("", "", kind)
        return cls(gv.group, gv.version, kind)

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> GroupVersionKind:
        return cls.from_api_version_and_kind(str(obj.get("apiVersion") or ""), str(obj.get("kind") or ""))

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> GroupVersion:
        return GroupVersion(self.group, self.version)

    @property
    def group_kind(self) -> GroupKind:
        return GroupKind(self.group, self.kind)

    def __str__(self) -> str:
        return f"{self.group}/{self.version}, Kind={self.kind}"


@dataclass(frozen=True, slots=True)
class GroupVersionResource:
    group: str
    version: str
    resource: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> GroupVersion:
        return GroupVersion(self.group, self.version)

    @property
    def group_resource(self) -> GroupResource:
        return GroupResource(self.group, self.resource)

    def __str__(self) -> str:
        return f"{self.group}/{self.version}, Resource={self.resource}"
