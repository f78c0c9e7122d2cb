"""Structural OpenAPI v3 schemas of CustomResourceDefinitions: validation, defaulting, pruning.

The subset Kubernetes allows in ``openAPIV3Schema``: type, properties, additionalProperties, items,
required, enum, nullable, format (int32/int64 ranges), minimum/maximum (+exclusive), minLength/
maxLength, pattern, minItems/maxItems, uniqueItems, minProperties/maxProperties, default,
x-kubernetes-preserve-unknown-fields, x-kubernetes-int-or-string, x-kubernetes-embedded-resource,
allOf/anyOf/oneOf/not (validation only). Unknown fields are pruned unless preserved, as upstream.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from .validation import FieldError, Path

_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool}


def _type_ok(schema: dict[str, Any], value: Any) -> bool:
    t = schema.get("type")
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(value, (int, str)) and not isinstance(value, bool)
    if t is None:
        return True
    if t == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    expected = _TYPES.get(t)
    return expected is None or isinstance(value, expected)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def validate(schema: dict[str, Any] | None, value: Any, path: Path | None = None) -> list[FieldError]:
    """Field errors for ``value`` against ``schema`` (upstream's messages, roughly)."""
    if not schema:
        return []
    path = path or Path.of()
    errs: list[FieldError] = []
    if value is None:
        if schema.get("nullable"):
            return []
        if "type" in schema:
            return [FieldError.invalid(path, None, f'{path} in body must be of type {schema["type"]}: "null"')]
        return []
    if not _type_ok(schema, value):
        return [FieldError.invalid(path, value, f'{path} in body must be of type {schema.get("type")}: '
                                                f'"{_json_type(value)}"')]
    if "enum" in schema and value not in schema["enum"]:
        errs.append(FieldError.not_supported(path, value, [str(v) for v in schema["enum"]]))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        fmt = schema.get("format")
        if fmt == "int32" and not -(2**31) <= value < 2**31:
            errs.append(FieldError.invalid(path, value, "must be a 32-bit integer"))
        if "minimum" in schema:
            low = schema["minimum"]
            if value < low or (schema.get("exclusiveMinimum") and value == low):
                errs.append(FieldError.invalid(path, value, f"{path} in body should be greater than or equal to {low}"))
        if "maximum" in schema:
            high = schema["maximum"]
            if value > high or (schema.get("exclusiveMaximum") and value == high):
                errs.append(FieldError.invalid(path, value, f"{path} in body should be less than or equal to {high}"))
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            errs.append(FieldError.invalid(path, value, f"{path} in body should be at least {schema['minLength']} chars long"))
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errs.append(FieldError.too_long(path, schema["maxLength"]))
        if "pattern" in schema:
            try:
                if re.search(schema["pattern"], value) is None:
                    errs.append(FieldError.invalid(path, value, f'{path} in body should match \'{schema["pattern"]}\''))
            except re.error:
                pass
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            errs.append(FieldError.invalid(path, value, f"{path} in body should have at least {schema['minItems']} items"))
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errs.append(FieldError.too_many(path, len(value), schema["maxItems"]))
        if schema.get("uniqueItems") and len({repr(v) for v in value}) != len(value):
            errs.append(FieldError.duplicate(path, value))
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                errs.extend(validate(items, item, path.index(i)))
    if isinstance(value, dict):
        for name in schema.get("required") or []:
            if name not in value:
                errs.append(FieldError.required(path.child(name), ""))
        props = schema.get("properties") or {}
        for key, item in value.items():
            if key in props:
                errs.extend(validate(props[key], item, path.child(key)))
            elif isinstance(schema.get("additionalProperties"), dict):
                errs.extend(validate(schema["additionalProperties"], item, path.key(key)))
        if "minProperties" in schema and len(value) < schema["minProperties"]:
            errs.append(FieldError.invalid(path, value, f"should have at least {schema['minProperties']} properties"))
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            errs.append(FieldError.too_many(path, len(value), schema["maxProperties"]))
    for sub in schema.get("allOf") or []:
        errs.extend(validate(sub, value, path))
    if schema.get("anyOf") and not any(not validate(s, value, path) for s in schema["anyOf"]):
        errs.append(FieldError.invalid(path, value, "must validate at least one schema (anyOf)"))
    if schema.get("oneOf") and sum(1 for s in schema["oneOf"] if not validate(s, value, path)) != 1:
        errs.append(FieldError.invalid(path, value, "must validate one and only one schema (oneOf)"))
    if isinstance(schema.get("not"), dict) and not validate(schema["not"], value, path):
        errs.append(FieldError.invalid(path, value, "must not validate the schema (not)"))
    return errs


def apply_defaults(schema: dict[str, Any] | None, value: Any) -> Any:
    """Fill ``default``s of absent properties, recursively (mutates and returns ``value``)."""
    if not schema:
        return value
    if isinstance(value, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                apply_defaults(sub, value[key])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key in list(value):
                if key not in (schema.get("properties") or {}):
                    apply_defaults(extra, value[key])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            apply_defaults(schema["items"], item)
    return value


def prune(schema: dict[str, Any] | None, value: Any, *, root: bool = True) -> list[str]:
    """Drop fields the schema does not specify (unless preserved); returns the pruned paths."""
    if not schema or schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    pruned: list[str] = []
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key in list(value):
            if root and key in ("apiVersion", "kind", "metadata"):
                continue
            if key in props:
                pruned += [f"{key}.{p}" for p in prune(props[key], value[key], root=False)]
            elif isinstance(extra, dict):
                pruned += [f"{key}.{p}" for p in prune(extra, value[key], root=False)]
            elif extra is True:
                continue
            else:
                del value[key]
                pruned.append(key)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            pruned += prune(schema["items"], item, root=False)
    return pruned
