"""The three PATCH flavours: JSON patch (RFC 6902), JSON merge patch (RFC 7386), strategic merge patch.

Strategic merge patch (SMP) is what ``kubectl apply``/``set image``/``rollout restart`` and the
Python client send by default. It is a merge patch whose list handling depends on the field: lists
tagged ``patchStrategy: merge`` with a ``patchMergeKey`` are merged element by element (containers
by ``name``), primitive ``merge`` lists are unioned (finalizers), every other list is replaced. The
patch may carry directives: ``$patch: replace|delete|merge``, ``$retainKeys``,
``$deleteFromPrimitiveList/<field>`` and ``$setElementOrder/<field>``.

The semantics follow ``k8s.io/apimachinery/pkg/util/strategicpatch`` (server side: merge
parallel lists, ignore unmatched nulls). Instead of Go struct tags, the merge information is
data: a ``PatchSchema`` maps a dotted field path from the object root, with list elements
transparent (``spec.template.spec.containers.env``), to ``{"patchMergeKey", "patchStrategy"}``.
``STRATEGIC_MERGE_KEYS`` holds those tables for the built-in kinds, from upstream's struct tags.

Departures from upstream, all in the direction of keeping stored data clean: values taken
from the patch (new keys, new list elements, replaced lists) have their directives processed or
stripped and their nulls dropped, and failures upstream would report as 500 are 422 here.

All functions are pure: inputs are never mutated, results share no structure with them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

import jsonpatch
import jsonpointer

from .errors import StatusError, bad_request, generic_error, request_entity_too_large
from .gofmt import go_float
from .meta import deep_copy

__all__ = [
    "PatchMeta",
    "PatchSchema",
    "MAX_JSON_PATCH_OPERATIONS",
    "json_patch",
    "merge_patch",
    "strategic_merge_patch",
    "STRATEGIC_MERGE_KEYS",
    "METADATA_ONLY_SCHEMA",
    "strategic_merge_schema",
]

PatchMeta = Mapping[str, str]
PatchSchema = Mapping[str, PatchMeta]

MAX_JSON_PATCH_OPERATIONS: Final = 10000

_DIRECTIVE: Final = "$patch"
_RETAIN_KEYS: Final = "$retainKeys"
_DELETE_FROM_PRIMITIVE_LIST: Final = "$deleteFromPrimitiveList"
_SET_ELEMENT_ORDER: Final = "$setElementOrder"

# mergepatch error texts
_ERR_BAD_JSON_DOC: Final = "invalid JSON document"
_ERR_NO_LIST_OF_LISTS: Final = "lists of lists are not supported"
_ERR_PRIMITIVE_LIST: Final = "invalid patch format of primitive list"
_ERR_RETAIN_KEYS: Final = "invalid patch format of retainKeys"
_ERR_SET_ELEMENT_ORDER: Final = "invalid patch format of setElementOrder list"
_ERR_TOO_DEEP: Final = "the patch or the object is nested too deeply"


# ---------------------------------------------------------------------------------------------
# JSON patch and merge patch


def json_patch(doc: Any, ops: Any) -> Any:
    """Apply an RFC 6902 patch (a list of operations) and return the new document.

    A malformed patch is 400 BadRequest, more than 10000 operations 413, and an operation
    that cannot apply (missing path, failed ``test``) 422 Invalid -- as the apiserver answers.
    """
    if not isinstance(ops, list):
        raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    if len(ops) > MAX_JSON_PATCH_OPERATIONS:
        raise request_entity_too_large(
            f"The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {len(ops)}"
        )
    try:
        patch = jsonpatch.JsonPatch(ops)
        for op in ops:  # jsonpatch validates lazily; make bad operations a 400 up front
            if not isinstance(op, Mapping):
                raise jsonpatch.InvalidJsonPatch("Operation must be an object")
            patch._get_operation(op)
    except (jsonpatch.InvalidJsonPatch, jsonpointer.JsonPointerException, TypeError, KeyError) as exc:
        raise bad_request(f"invalid JSON patch: {exc}") from None
    try:
        return patch.apply(deep_copy(doc), in_place=True)
    except RecursionError:
        raise bad_request(_ERR_TOO_DEEP) from None
    except jsonpatch.JsonPatchTestFailed:
        # Name the failing test as upstream's json-patch does (the library's text shows Python types).
        failed = _first_failed_test(doc, ops)
        raise generic_error(422, f"testing value {failed} failed: test failed") from None
    except (
        jsonpatch.JsonPatchConflict,
        jsonpatch.InvalidJsonPatch,
        jsonpointer.JsonPointerException,
        TypeError,
        KeyError,
        IndexError,
        ValueError,
    ) as exc:
        raise generic_error(422, str(exc)) from None


def _first_failed_test(doc: Any, ops: list[Any]) -> str:
    """The path of the first ``test`` operation of ``ops`` that fails on ``doc``."""
    current = deep_copy(doc)
    for op in ops:
        try:
            current = jsonpatch.JsonPatch([op]).apply(current, in_place=True)
        except jsonpatch.JsonPatchTestFailed:
            return str(op.get("path", ""))
    return ""


def merge_patch(doc: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return deep_copy(patch)
    result = deep_copy(doc) if isinstance(doc, dict) else {}
    try:
        _merge_into(result, patch)
    except RecursionError:
        raise bad_request(_ERR_TOO_DEEP) from None
    return result


def _merge_into(target: dict[str, Any], patch: Mapping[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            current = target.get(key)
            if not isinstance(current, dict):
                current = {}
                target[key] = current
            _merge_into(current, value)
        else:
            target[key] = deep_copy(value)


# ---------------------------------------------------------------------------------------------
# Strategic merge patch


def strategic_merge_patch(
    doc: Mapping[str, Any], patch: Any, schema: PatchSchema | None = None
) -> dict[str, Any]:
    """Apply a strategic merge patch to ``doc`` using ``schema`` (see the module docstring).

    Raises ``StatusError``: 400 for a malformed patch or directive, 422 for a patch whose
    content does not fit the object (missing merge key, lists of lists, mixed element types).
    """
    if not isinstance(patch, dict):
        raise bad_request(_ERR_BAD_JSON_DOC)
    original = deep_copy(dict(doc)) if isinstance(doc, Mapping) else {}
    try:
        return _Merger(schema or {}).merge_map(original, deep_copy(patch), "")
    except RecursionError:
        raise bad_request(_ERR_TOO_DEEP) from None


def _invalid(detail: str) -> StatusError:
    return generic_error(422, detail)


def _kind(value: Any) -> str:
    """The Go type a decoded JSON value would have (numbers are all float64 there)."""
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "slice"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "nil"


_GO_TYPE_NAMES: Final = MappingProxyType({
    "map": "map[string]interface {}",
    "slice": "[]interface {}",
    "bool": "bool",
    "number": "float64",
    "string": "string",
    "nil": "<nil>",
})


def _go_v(value: Any) -> str:
    """Go's ``%v`` of a decoded JSON value (maps print sorted: ``map[a:1 b:x]``)."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go_v(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go_v(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return go_float(float(value))
    if value is None:
        return "<nil>"
    return str(value)


def _same(a: Any, b: Any) -> bool:
    """Go interface equality for scalars: same dynamic type and equal value."""
    return _kind(a) == _kind(b) and a == b


def _skey(value: Any) -> tuple[str, Any] | None:
    """A hashable identity for a scalar, or None if it cannot be hashed."""
    kind = _kind(value)
    if kind in ("map", "slice"):
        return None
    return (kind, value)


def _err_no_merge_key(item: Any, merge_key: str) -> StatusError:
    return _invalid(f"map: {_go_v(item)} does not contain declared merge key: {merge_key}")


def _err_bad_arg_type(expected: str, actual: Any) -> StatusError:
    return _invalid(f"expected a {_GO_TYPE_NAMES[expected]}, but received a {_GO_TYPE_NAMES[_kind(actual)]}")


def _extract_key(key: str, prefix: str) -> str:
    head, sep, rest = key.partition("/")
    if not sep or head != prefix:
        raise bad_request(_ERR_PRIMITIVE_LIST if prefix == _DELETE_FROM_PRIMITIVE_LIST else _ERR_SET_ELEMENT_ORDER)
    return rest


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _strategy(meta: PatchMeta | None) -> tuple[str, str]:
    """(merge key, list/map strategy without retainKeys) of a field."""
    if not meta:
        return "", ""
    strategies = [s for s in str(meta.get("patchStrategy") or "").split(",") if s]
    others = [s for s in strategies if s != "retainKeys"]
    if len(strategies) > 2 or len(others) > 1:
        raise generic_error(500, f"unexpected patch strategy: {strategies}")
    return str(meta.get("patchMergeKey") or ""), (others[0] if others else "")


def _positions(items: list[Any], merge_key: str, is_map: bool) -> Callable[[Any], int]:
    """``index()`` of upstream, with a hash table for the common (hashable) case."""

    def ident(item: Any) -> Any:
        if is_map:
            return item.get(merge_key) if isinstance(item, dict) else None
        return item

    table: dict[tuple[str, Any], int] = {}
    unhashable: list[tuple[int, Any]] = []
    for i, item in enumerate(items):
        value = ident(item)
        key = _skey(value)
        if key is None:
            unhashable.append((i, value))
        elif key not in table:
            table[key] = i

    def position(item: Any) -> int:
        value = ident(item)
        key = _skey(value)
        if key is not None:
            found = table.get(key, -1)
            return found
        for i, v in unhashable:
            if v == value:
                return i
        return -1

    return position


class _Merger:
    """The recursive merge; ``path`` is the dotted schema path of the map being merged."""

    def __init__(self, schema: PatchSchema) -> None:
        self.schema = schema

    def _clean(self, value: Any, path: str) -> Any:
        """A patch value stored without a counterpart: process its directives, drop its nulls.

        Returns None for a map that deletes itself (``$patch: delete``).
        """
        if isinstance(value, dict):
            if value.get(_DIRECTIVE) == "delete":
                return None
            return self.merge_map({}, value, path)
        if isinstance(value, list):
            out = []
            for item in value:
                if isinstance(item, dict) and _DIRECTIVE in item:
                    if item[_DIRECTIVE] not in ("delete", "replace", "merge"):
                        raise bad_request(f"unknown patch type: {_go_v(item[_DIRECTIVE])} in map: {_go_v(item)}")
                    continue
                out.append(self._clean(item, path))
            return out
        return value

    def merge_map(self, original: dict[str, Any], patch: dict[str, Any], path: str) -> dict[str, Any]:
        if _DIRECTIVE in patch:
            directive = patch.pop(_DIRECTIVE)
            if directive == "replace":
                return self.merge_map({}, patch, path)  # the patch's content, clean
            if directive == "delete":
                return {}
            raise bad_request(f"unknown patch type: {_go_v(directive)} in map: {_go_v(patch | {_DIRECTIVE: directive})}")
        self._apply_retain_keys(original, patch)
        self._merge_set_element_order(original, patch, path)
        for key, patch_value in list(patch.items()):
            is_delete_list = False
            if key.startswith(_DELETE_FROM_PRIMITIVE_LIST):
                key = _extract_key(key, _DELETE_FROM_PRIMITIVE_LIST)
                is_delete_list = True
            if patch_value is None:
                original.pop(key, None)
                continue
            child = _child(path, key)
            if key not in original or _kind(original[key]) != _kind(patch_value):
                if not is_delete_list:
                    cleaned = self._clean(patch_value, child)
                    if cleaned is None and isinstance(patch_value, dict):
                        original.pop(key, None)  # the value deleted itself
                    else:
                        original[key] = cleaned
                continue
            current = original[key]
            merge_key, strategy = _strategy(self.schema.get(child))
            if isinstance(current, dict):
                if strategy == "replace":
                    replaced = self._clean(patch_value, child)
                    if replaced is None:
                        original.pop(key, None)
                    else:
                        original[key] = replaced
                else:
                    original[key] = self.merge_map(current, patch_value, child)
            elif isinstance(current, list):
                original[key] = self._merge_list_field(current, patch_value, child, strategy, merge_key, is_delete_list)
            else:
                original[key] = patch_value
        return original

    def _apply_retain_keys(self, original: dict[str, Any], patch: dict[str, Any]) -> None:
        if _RETAIN_KEYS not in patch:
            return
        retain = patch.pop(_RETAIN_KEYS)
        if not isinstance(retain, list):
            raise bad_request(_ERR_RETAIN_KEYS)
        for k, v in patch.items():
            if v is None or k.startswith(_DELETE_FROM_PRIMITIVE_LIST) or k.startswith(_SET_ELEMENT_ORDER):
                continue
            if k not in retain:
                raise bad_request(_ERR_RETAIN_KEYS)
        for k in [k for k in original if k not in retain]:
            del original[k]

    def _merge_list_field(
        self,
        original: list[Any],
        patch: list[Any],
        path: str,
        strategy: str,
        merge_key: str,
        is_delete_list: bool,
    ) -> list[Any]:
        if strategy == "merge" or is_delete_list:
            return self.merge_list(original, patch, path, merge_key, is_delete_list)
        return self._clean(patch, path)

    def _element_kind(self, *lists: list[Any]) -> str:
        kind = ""
        for items in lists:
            for v in items:
                k = _kind(v)
                if not kind:
                    kind = k
                    if k == "slice":
                        raise _invalid(_ERR_NO_LIST_OF_LISTS)
                elif k != kind:
                    raise _invalid(f"list element types are not identical: {_go_v(list(lists))}")
        if not kind:
            raise _invalid("no elements in any of the given slices")
        return kind

    def merge_list(
        self, original: list[Any], patch: list[Any], path: str, merge_key: str, is_delete_list: bool
    ) -> list[Any]:
        if not original and not patch:
            return original
        kind = self._element_kind(original, patch)
        if kind != "map":
            if is_delete_list:
                drop = {_skey(v) for v in patch}
                return [v for v in original if _skey(v) not in drop]
            merged: list[Any] = []
            seen: set[Any] = set()
            for v in original + patch:
                if _skey(v) not in seen:
                    seen.add(_skey(v))
                    merged.append(v)
        else:
            if not merge_key:
                raise _invalid(f"cannot merge lists without merge key for {path}")
            original, patch = self._apply_list_directives(original, patch, merge_key, path)
            merged = self._merge_by_key(original, patch, merge_key, path)
        patch_items, server_only = self._partition(merged, patch, merge_key)
        return self._normalize_order(patch_items, server_only, patch, original, merge_key, kind == "map")

    def _apply_list_directives(
        self, original: list[Any], patch: list[Any], merge_key: str, path: str
    ) -> tuple[list[Any], list[Any]]:
        """Handle elements carrying ``$patch``: delete by key, or replace the whole list."""
        plain: list[Any] = []
        replace = False
        for item in patch:
            if _DIRECTIVE not in item:
                plain.append(item)
                continue
            directive = item[_DIRECTIVE]
            if directive == "delete":
                if merge_key not in item:
                    raise _err_no_merge_key(item, merge_key)
                value = item[merge_key]
                original = [
                    o for o in original if not (isinstance(o, dict) and merge_key in o and _same(o[merge_key], value))
                ]
            elif directive == "replace":
                replace = True
            elif directive == "merge":
                raise _invalid("merging lists cannot yet be specified in the patch")
            else:
                raise bad_request(f"unknown patch type: {_go_v(directive)} in map: {_go_v(item)}")
        if replace:
            return [self.merge_map({}, item, path) for item in plain], []
        return original, plain

    def _merge_by_key(self, original: list[Any], patch: list[Any], merge_key: str, path: str) -> list[Any]:
        position = _positions(original, merge_key, is_map=True)
        appended: list[Any] = []
        for item in patch:
            if merge_key not in item:
                raise _err_no_merge_key(item, merge_key)
            i = position(item)
            if i < 0:
                # Not in the original: maybe added earlier by this same patch.
                j = next((n for n, a in enumerate(appended) if _same(a.get(merge_key), item[merge_key])), -1)
                if j < 0:
                    appended.append(self.merge_map({}, item, path))
                else:
                    appended[j] = self.merge_map(appended[j], item, path)
            else:
                original[i] = self.merge_map(original[i], item, path)
        return original + appended

    def _partition(self, merged: list[Any], by: list[Any], merge_key: str) -> tuple[list[Any], list[Any]]:
        """Split into (items present in ``by``, the rest); maps match on the merge key."""
        position = _positions(by, merge_key, is_map=bool(merge_key))
        present: list[Any] = []
        rest: list[Any] = []
        for item in merged:
            if merge_key:
                if not isinstance(item, dict):
                    raise _err_bad_arg_type("map", item)
                if merge_key not in item:
                    raise _err_no_merge_key(item, merge_key)
            (present if position(item) >= 0 else rest).append(item)
        return present, rest

    def _normalize_order(
        self,
        patch_items: list[Any],
        server_only: list[Any],
        patch_order: list[Any],
        server_order: list[Any],
        merge_key: str,
        is_map: bool,
    ) -> list[Any]:
        """Patch items in patch order, server-only items in live order, interleaved by live order."""
        if is_map:
            for item in patch_order + server_order:
                if not isinstance(item, dict):
                    raise _err_bad_arg_type("map", item)
                if merge_key not in item:
                    raise _err_no_merge_key(item, merge_key)
        by_patch = _positions(patch_order, merge_key, is_map)
        by_server = _positions(server_order, merge_key, is_map)

        def order_key(pos: Callable[[Any], int], size: int) -> Callable[[Any], int]:
            return lambda item: p if (p := pos(item)) >= 0 else size

        right = sorted(patch_items, key=order_key(by_patch, len(patch_order)))
        left = sorted(server_only, key=order_key(by_server, len(server_order)))
        out: list[Any] = []
        i = j = 0
        while i < len(left) or j < len(right):
            if i >= len(left):
                out.append(right[j])
                j += 1
            elif j >= len(right):
                out.append(left[i])
                i += 1
            else:
                li, ri = by_server(left[i]), by_server(right[j])
                if li >= 0 and ri >= 0 and li < ri:
                    out.append(left[i])
                    i += 1
                else:
                    out.append(right[j])
                    j += 1
        return out

    def _merge_set_element_order(self, original: dict[str, Any], patch: dict[str, Any], path: str) -> None:
        for key in [k for k in patch if k.startswith(_SET_ELEMENT_ORDER)]:
            order = patch.pop(key)
            field = _extract_key(key, _SET_ELEMENT_ORDER)
            if not isinstance(order, list):
                raise bad_request(_ERR_SET_ELEMENT_ORDER)
            child = _child(path, field)
            found_original = field in original
            found_patch = field in patch
            current = original.get(field)
            patch_list = patch.get(field)
            if found_original and not isinstance(current, list):
                raise _err_bad_arg_type("slice", current)
            if found_patch and not isinstance(patch_list, list):
                raise _err_bad_arg_type("slice", patch_list)
            merge_key, strategy = _strategy(self.schema.get(child))
            self._validate_set_order(patch_list or [], order, merge_key)
            if found_original and not found_patch:
                merged = current
            elif found_patch and not found_original:
                merged = self._clean(patch_list, child)
            elif found_original and found_patch:
                merged = self._merge_list_field(current, patch_list, child, strategy, merge_key, False)
            else:
                continue
            patch.pop(field, None)
            if not merged:
                original[field] = merged
                continue
            is_map = bool(merge_key)
            if is_map:
                self._element_kind(merged)  # lists of lists / mixed types are errors here too
            patch_items, server_only = self._partition(merged, order, merge_key)
            original[field] = self._normalize_order(
                patch_items, server_only, order, current or [], merge_key, is_map
            )

    def _validate_set_order(self, patch_list: list[Any], order: list[Any], merge_key: str) -> None:
        """Every non-deleted patch item appears in ``$setElementOrder`` in the same relative order."""
        if not order or not patch_list:
            return
        items = patch_list
        if merge_key:
            for item in patch_list:
                if not isinstance(item, dict):
                    raise _err_bad_arg_type("map", item)
            items = [i for i in patch_list if i.get(_DIRECTIVE) != "delete"]

        def equal(a: Any, b: Any) -> bool:
            if not merge_key:
                return _same(a, b)
            if not isinstance(a, dict):
                raise _err_bad_arg_type("map", a)
            if not isinstance(b, dict):
                raise _err_bad_arg_type("map", b)
            if merge_key not in a:
                raise _err_no_merge_key(a, merge_key)
            if merge_key not in b:
                raise _err_no_merge_key(b, merge_key)
            return _same(a[merge_key], b[merge_key])

        p = o = 0
        while p < len(items) and o < len(order):
            if isinstance(items[p], dict) and _DIRECTIVE in items[p]:
                p += 1
                continue
            if equal(items[p], order[o]):
                p += 1
            o += 1
        if p < len(items) and o >= len(order):
            raise _invalid(
                f"The order in patch list:\n{_go_v(patch_list)}\n doesn't match {_SET_ELEMENT_ORDER} list:\n{_go_v(order)}\n"
            )


# ---------------------------------------------------------------------------------------------
# Merge keys of the built-in kinds, from the patchStrategy/patchMergeKey struct tags of
# k8s.io/api (core/v1, apps/v1, batch/v1, policy/v1, autoscaling/v2) and metav1.ObjectMeta.


def _meta(key: str = "", strategy: str = "merge") -> PatchMeta:
    data = {"patchStrategy": strategy}
    if key:
        data["patchMergeKey"] = key
    return MappingProxyType(data)


def _nest(prefix: str, table: Mapping[str, PatchMeta]) -> dict[str, PatchMeta]:
    return {f"{prefix}.{k}": v for k, v in table.items()}


def _freeze(*tables: Mapping[str, PatchMeta]) -> PatchSchema:
    merged: dict[str, PatchMeta] = {}
    for t in tables:
        merged.update(t)
    return MappingProxyType(merged)


def _build_tables() -> Mapping[str, PatchSchema]:
    object_meta = {"ownerReferences": _meta("uid"), "finalizers": _meta()}
    container = {
        "ports": _meta("containerPort"),
        "env": _meta("name"),
        "volumeMounts": _meta("mountPath"),
        "volumeDevices": _meta("devicePath"),
    }
    pod_spec = {
        "volumes": _meta("name", "merge,retainKeys"),
        "initContainers": _meta("name"),
        "containers": _meta("name"),
        "ephemeralContainers": _meta("name"),
        "imagePullSecrets": _meta("name"),
        "hostAliases": _meta("ip"),
        "topologySpreadConstraints": _meta("topologyKey"),
        "schedulingGates": _meta("name"),
        "resourceClaims": _meta("name", "merge,retainKeys"),
        **_nest("containers", container),
        **_nest("initContainers", container),
        **_nest("ephemeralContainers", container),
    }
    container_status = {"volumeMounts": _meta("mountPath"), "allocatedResourcesStatus": _meta("name")}
    pod_status = {
        "conditions": _meta("type"),
        "hostIPs": _meta("ip"),
        "podIPs": _meta("ip"),
        "resourceClaimStatuses": _meta("name", "merge,retainKeys"),
        **_nest("containerStatuses", container_status),
        **_nest("initContainerStatuses", container_status),
        **_nest("ephemeralContainerStatuses", container_status),
    }
    pod_template = {**_nest("metadata", object_meta), **_nest("spec", pod_spec)}
    metadata = _nest("metadata", object_meta)
    conditions = {"status.conditions": _meta("type")}
    workload = {**metadata, **_nest("spec.template", pod_template), **conditions}
    return MappingProxyType(
        {
            # core/v1
            "Pod": _freeze(metadata, _nest("spec", pod_spec), _nest("status", pod_status)),
            "PodTemplate": _freeze(metadata, _nest("template", pod_template)),
            "ReplicationController": _freeze(workload),
            "Service": _freeze(metadata, {"spec.ports": _meta("port")}, conditions),
            "Node": _freeze(
                metadata,
                {"spec.podCIDRs": _meta(), "status.addresses": _meta("type")},
                conditions,
            ),
            "Namespace": _freeze(metadata, conditions),
            "ServiceAccount": _freeze(metadata, {"secrets": _meta("name")}),
            "PersistentVolumeClaim": _freeze(metadata, conditions),
            "ComponentStatus": _freeze(metadata, {"conditions": _meta("type")}),
            **{
                kind: _freeze(metadata)
                for kind in (
                    "ConfigMap",
                    "Secret",
                    "Endpoints",
                    "Event",
                    "PersistentVolume",
                    "LimitRange",
                    "ResourceQuota",
                    "Binding",
                )
            },
            # apps/v1
            "Deployment.apps": _freeze(workload, {"spec.strategy": _meta(strategy="retainKeys")}),
            "ReplicaSet.apps": _freeze(workload),
            "StatefulSet.apps": _freeze(workload),
            "DaemonSet.apps": _freeze(workload),
            "ControllerRevision.apps": _freeze(metadata),
            # batch/v1
            "Job.batch": _freeze(workload),
            "CronJob.batch": _freeze(
                metadata,
                _nest("spec.jobTemplate.metadata", object_meta),
                _nest("spec.jobTemplate.spec.template", pod_template),
            ),
            # policy/v1, autoscaling/v2
            "PodDisruptionBudget.policy": _freeze(
                metadata, {"spec.selector": _meta(strategy="replace")}, conditions
            ),
            "HorizontalPodAutoscaler.autoscaling": _freeze(metadata, conditions),
        }
    )


STRATEGIC_MERGE_KEYS: Final[Mapping[str, PatchSchema]] = _build_tables()
"""Patch schema per built-in kind, keyed like ``GroupKind.String()``: ``Pod``, ``Deployment.apps``."""

METADATA_ONLY_SCHEMA: Final[PatchSchema] = STRATEGIC_MERGE_KEYS["ConfigMap"]
"""For built-in kinds without list merge tags of their own (Lease, Role, Ingress, ...)."""


def strategic_merge_schema(kind: str, group: str = "") -> PatchSchema | None:
    """The patch schema of a built-in kind, or None (custom resources do not support SMP)."""
    return STRATEGIC_MERGE_KEYS.get(f"{kind}.{group}" if group else kind)
