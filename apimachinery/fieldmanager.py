"""Field ownership for server-side apply: ``metadata.managedFields``, conflicts, and removal of dropped fields.

A reduced form of upstream's structured-merge-diff, enough for ``kubectl apply --server-side`` and
controllers that apply:

* Every field of an object belongs to zero or more *managers* (``fieldManager``), each entry keyed by
  (manager, operation ``Apply``/``Update``, subresource). Sets are stored in the ``FieldsV1`` format:
  ``{"f:spec": {"f:replicas": {}}, "f:containers": {"k:{\\"name\\":\\"web\\"}": {".": {}, "f:image": {}}}}``.
* Paths are built from the patch schema of the kind (``apimachinery.patch``): a list with a merge key
  is a map of items (``k:{"name":"web"}``), a primitive list with the ``merge`` strategy is a set
  (``v:"x"``), every other list is atomic (owned as a whole).
* **Apply** by M: a field M applies that another manager owns with a *different* value is a conflict
  (409, one cause per field) unless ``force``, which takes the field away from them. The applied
  configuration is merged into the live object; fields M applied before but no longer does, and that
  nobody else owns, are removed. M then owns exactly what it applied.
* **Update** (create, PUT, PATCH) by U: U takes every field whose value it changed; other managers
  lose those fields. Fields that no longer exist leave every set. Managers left with nothing are
  dropped.

Not reproduced: per-version field paths (one set per entry, tagged with the request's apiVersion),
``listType=map`` with several keys (the merge key is the key), and status reset rules beyond "the
main resource's apply ignores ``status``; the status subresource's apply touches only ``status``".
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import StatusCause, StatusDetails, StatusError
from .meta import deep_copy
from .patch import strategic_merge_schema

Path = tuple[str, ...]
FieldSet = set[Path]

# Never owned: identity and system fields (upstream strips the same before computing sets).
_IGNORED_META = frozenset({"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
                           "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields", "selfLink",
                           "generateName"})
_MISSING = object()


@dataclass(frozen=True)
class ListKind:
    """How a list field is addressed: by item key (``map``), by value (``set``) or as a whole (``atomic``)."""

    kind: str
    key: str = ""


class Schema:
    """List shapes by dotted path from the object root (list elements transparent), from a patch schema."""

    def __init__(self, patch_schema: Mapping[str, Any] | None) -> None:
        self._lists: dict[str, ListKind] = {}
        for path, meta in (patch_schema or {}).items():
            key = meta.get("patchMergeKey") if isinstance(meta, Mapping) else getattr(meta, "patchMergeKey", None)
            strategy = meta.get("patchStrategy") if isinstance(meta, Mapping) else getattr(meta, "patchStrategy", "")
            if key:
                self._lists[path] = ListKind("map", key)
            elif "merge" in str(strategy or ""):
                self._lists[path] = ListKind("set")

    def list_kind(self, dotted: str) -> ListKind:
        return self._lists.get(dotted, ListKind("atomic"))


@functools.lru_cache(maxsize=None)
def schema_for(kind: str, group: str) -> Schema:
    """The list shapes of a built-in kind (custom resources: every list atomic)."""
    return Schema(strategic_merge_schema(kind, group))


def _item_key(item: Any, key: str) -> str | None:
    if not isinstance(item, dict) or key not in item:
        return None
    return "k:" + json.dumps({key: item[key]}, separators=(",", ":"), sort_keys=True)


def _value_key(value: Any) -> str:
    return "v:" + json.dumps(value, separators=(",", ":"), sort_keys=True)


def field_set(obj: Mapping[str, Any], schema: Schema, *, scope: str = "main") -> FieldSet:
    """The paths of every field set in ``obj``: leaves, list items and set members.

    ``scope`` "main" leaves ``status`` out, "status" keeps only ``status``; "all" keeps both.
    """
    out: FieldSet = set()
    for key, value in obj.items():
        if key in ("apiVersion", "kind") or (scope == "main" and key == "status") or \
                (scope == "status" and key != "status"):
            continue
        if key == "metadata" and isinstance(value, dict):
            for mkey, mvalue in value.items():
                if mkey not in _IGNORED_META:
                    _walk(mvalue, ("f:metadata", f"f:{mkey}"), f"metadata.{mkey}", schema, out)
            continue
        _walk(value, (f"f:{key}",), key, schema, out)
    return out


def _walk(value: Any, path: Path, dotted: str, schema: Schema, out: FieldSet) -> None:
    if isinstance(value, dict) and value:
        for key, sub in value.items():
            _walk(sub, (*path, f"f:{key}"), f"{dotted}.{key}", schema, out)
        return
    if isinstance(value, list) and value:
        kind = schema.list_kind(dotted)
        if kind.kind == "map":
            for item in value:
                element = _item_key(item, kind.key)
                if element is None:  # an item without its key: the list cannot be addressed by item
                    out.add(path)
                    return
            for item in value:
                item_path = (*path, _item_key(item, kind.key) or "")
                out.add(item_path)
                for key, sub in item.items():
                    _walk(sub, (*item_path, f"f:{key}"), f"{dotted}.{key}", schema, out)
            return
        if kind.kind == "set" and all(not isinstance(v, (dict, list)) for v in value):
            for v in value:
                out.add((*path, _value_key(v)))
            return
    out.add(path)


def value_at(obj: Any, path: Path) -> Any:
    """The value a path addresses in ``obj`` (``_MISSING`` when absent)."""
    current = obj
    for element in path:
        kind, _, rest = element.partition(":")
        if kind == "f":
            if not isinstance(current, dict) or rest not in current:
                return _MISSING
            current = current[rest]
        elif kind == "k":
            if not isinstance(current, list):
                return _MISSING
            want = json.loads(rest)
            current = next((i for i in current if isinstance(i, dict) and all(i.get(k) == v for k, v in want.items())),
                           _MISSING)
            if current is _MISSING:
                return _MISSING
        elif kind == "v":
            if not isinstance(current, list) or json.loads(rest) not in current:
                return _MISSING
            current = json.loads(rest)
        else:
            return _MISSING
    return current


def _delete_at(obj: Any, path: Path) -> None:
    parent = value_at(obj, path[:-1])
    kind, _, rest = path[-1].partition(":")
    if kind == "f" and isinstance(parent, dict):
        parent.pop(rest, None)
    elif kind == "k" and isinstance(parent, list):
        want = json.loads(rest)
        parent[:] = [i for i in parent if not (isinstance(i, dict) and all(i.get(k) == v for k, v in want.items()))]
    elif kind == "v" and isinstance(parent, list):
        value = json.loads(rest)
        parent[:] = [v for v in parent if v != value]


# ---------------------------------------------------------------------- FieldsV1 encoding

def encode(fields: Iterable[Path]) -> dict[str, Any]:
    """A field set as FieldsV1: nested ``{}``; a node owned itself and through its children gets ``"."`` first."""
    members = set(fields)
    prefixes = {p[:i] for p in members for i in range(1, len(p))}

    def build(prefix: Path, children: list[Path]) -> dict[str, Any]:
        node: dict[str, Any] = {".": {}} if prefix in members and prefix in prefixes else {}
        groups: dict[str, list[Path]] = {}
        for path in children:
            groups.setdefault(path[len(prefix)], []).append(path)
        for element in sorted(groups):
            deeper = [p for p in groups[element] if len(p) > len(prefix) + 1]
            node[element] = build((*prefix, element), deeper) if deeper else {}
        return node

    return build((), sorted(members))


def decode(tree: Any, prefix: Path = ()) -> FieldSet:
    out: FieldSet = set()
    if not isinstance(tree, dict):
        return out
    for key, sub in tree.items():
        if key == ".":
            out.add(prefix)
        elif isinstance(sub, dict) and sub:
            out |= decode(sub, (*prefix, key))
        else:
            out.add((*prefix, key))
    return out


def render_path(path: Path) -> str:
    """``.spec.template.spec.containers[name="web"].image`` as kubectl prints conflicts."""
    out = ""
    for element in path:
        kind, _, rest = element.partition(":")
        if kind == "f":
            out += f".{rest}"
        elif kind == "k":
            out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in json.loads(rest).items()) + "]"
        elif kind == "v":
            out += f"[={rest}]"
    return out


# ---------------------------------------------------------------------- managers

@dataclass
class _Entry:
    manager: str
    operation: str
    subresource: str
    api_version: str
    time: str
    fields: FieldSet


def _entries(obj: Mapping[str, Any]) -> list[_Entry]:
    out = []
    for e in (obj.get("metadata") or {}).get("managedFields") or []:
        if not isinstance(e, dict) or not e.get("manager"):
            continue
        out.append(_Entry(str(e["manager"]), str(e.get("operation") or "Update"), str(e.get("subresource") or ""),
                          str(e.get("apiVersion") or ""), str(e.get("time") or ""), decode(e.get("fieldsV1"))))
    return out


def _store(obj: dict[str, Any], entries: list[_Entry]) -> None:
    rendered = []
    for e in entries:
        if not e.fields:
            continue
        entry: dict[str, Any] = {"manager": e.manager, "operation": e.operation, "apiVersion": e.api_version,
                                 "time": e.time, "fieldsType": "FieldsV1", "fieldsV1": encode(e.fields)}
        if e.subresource:
            entry["subresource"] = e.subresource
        rendered.append(entry)
    meta = obj.setdefault("metadata", {})
    if rendered:
        meta["managedFields"] = rendered
    else:
        meta.pop("managedFields", None)


def _covers(owned: FieldSet, path: Path) -> bool:
    """Whether ``owned`` holds ``path`` or anything below it."""
    n = len(path)
    return any(p[:n] == path for p in owned)


def _in_scope(path: Path, scope: str) -> bool:
    """Whether a path of a scope-"all" field set belongs to ``scope`` (what ``field_set`` would keep)."""
    return (path[0] == "f:status") == (scope == "status")


def _scope(subresource: str) -> str:
    return "status" if subresource == "status" else "main"


def record_update(old: Mapping[str, Any] | None, new: dict[str, Any], *, manager: str, api_version: str,
                  now: str, schema: Schema, subresource: str = "") -> None:
    """Update ``new``'s managedFields for a create/PUT/PATCH by ``manager`` (``old`` is None on create)."""
    scope = _scope(subresource)
    entries = _entries(old) if old is not None else []  # on create, managedFields sent by the client are not taken
    every = field_set(new, schema, scope="all")
    new_fields = {p for p in every if _in_scope(p, scope)}
    if old is None:
        changed = new_fields
    else:
        old_fields = field_set(old, schema, scope=scope)
        changed = {p for p in new_fields | old_fields if value_at(old, p) != value_at(new, p)
                   or (p in new_fields) != (p in old_fields)}
    mine = next((e for e in entries if (e.manager, e.operation, e.subresource) == (manager, "Update", subresource)),
                None)
    for e in entries:
        if e is not mine:
            e.fields -= changed
        e.fields &= every
    if manager:
        if mine is None:
            mine = _Entry(manager, "Update", subresource, api_version, now, set())
            entries.append(mine)
        if changed & new_fields:
            mine.time, mine.api_version = now, api_version
        mine.fields = (mine.fields | (changed & new_fields)) & every
    _store(new, entries)


def conflict_error(conflicts: list[tuple[str, str, str, Path]], *, kind: str, group: str, name: str) -> StatusError:
    """409 as upstream words it: ``Apply failed with 1 conflict: conflict with "m" using apps/v1: .spec.replicas``
    (``conflict with "m" with subresource "scale" using ...`` when "m" set it through a subresource)."""
    causes = tuple(StatusCause(
        type="FieldManagerConflict",
        message=f'conflict with "{mgr}"' + (f' with subresource "{sub}"' if sub else "") + f" using {version}",
        field=render_path(path)) for mgr, sub, version, path in conflicts)
    n = len(causes)
    if n == 1:
        message = f"Apply failed with 1 conflict: {causes[0].message}: {causes[0].field}"
    else:
        message = f"Apply failed with {n} conflicts: " + "\n".join(f"{c.message}: {c.field}" for c in causes)
    return StatusError(code=409, reason="Conflict", message=message,
                       details=StatusDetails(name=name, group=group, kind=kind, causes=causes))


def apply(live: Mapping[str, Any] | None, applied: Mapping[str, Any], merged: dict[str, Any], *, manager: str,
          api_version: str, now: str, schema: Schema, force: bool, subresource: str = "",
          kind: str = "", group: str = "", name: str = "") -> dict[str, Any]:
    """Finish a server-side apply: ``merged`` is ``applied`` merged into ``live`` (None on create).

    Raises the 409 conflict error unless ``force``; removes the fields ``manager`` stopped applying that
    nobody else owns; returns ``merged`` with its managedFields updated.
    """
    scope = _scope(subresource)
    applied_fields = field_set(applied, schema, scope=scope)
    entries = _entries(live) if live is not None else []
    key = (manager, "Apply", subresource)
    mine = next((e for e in entries if (e.manager, e.operation, e.subresource) == key), None)
    conflicts: list[tuple[str, str, str, Path]] = []
    taken: dict[int, FieldSet] = {}
    for i, e in enumerate(entries):
        if e is mine:
            continue
        for path in sorted(e.fields & applied_fields):
            if path[-1].startswith(("k:", "v:")):  # list items and set members are shared, never conflicting
                continue
            if live is not None and value_at(live, path) != value_at(applied, path):
                conflicts.append((e.manager, e.subresource, e.api_version, path))
                taken.setdefault(i, set()).add(path)
    if conflicts and not force:
        raise conflict_error(conflicts, kind=kind, group=group, name=name)
    for i, paths in taken.items():
        entries[i].fields -= paths
    previous = mine.fields if mine is not None else set()
    others = [e.fields for e in entries if e is not mine]
    removed: list[Path] = []
    for path in sorted(previous - applied_fields, key=len):  # an item before its fields: they go with it
        if any(path[:len(r)] == r for r in removed) or any(_covers(f, path) for f in others):
            continue
        if value_at(merged, path) is not _MISSING:
            _delete_at(merged, path)
            removed.append(path)
    if mine is None:
        mine = _Entry(manager, "Apply", subresource, api_version, now, set())
        entries.append(mine)
    mine.fields, mine.time, mine.api_version = set(applied_fields), now, api_version
    every = field_set(merged, schema, scope="all")
    for e in entries:
        e.fields &= every
    _store(merged, entries)
    return merged


def strip_for_scope(applied: Mapping[str, Any], subresource: str) -> dict[str, Any]:
    """The part of an applied configuration the endpoint takes: no ``status`` on the main resource,
    only ``status`` (plus identity) on ``/status``."""
    out = deep_copy(dict(applied))
    if subresource == "status":
        return {k: v for k, v in out.items() if k in ("apiVersion", "kind", "metadata", "status")}
    out.pop("status", None)
    return out
