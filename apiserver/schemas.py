"""Schemas of the built-in kinds, derived from the official Kubernetes Python client's models.

The ``kubernetes`` package carries every API type as a model with its fields' JSON names, types,
``required`` flags and descriptions (generated from upstream's OpenAPI). Walking those models
gives real OpenAPI v3 schemas — enough for ``kubectl explain`` — and lets ``fieldValidation=Strict``
find unknown fields at any depth, not only at the top level.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from apimachinery.registry import ResourceType

_LIST = re.compile(r"^List\[(.+)\]$")
_DICT = re.compile(r"^Dict\[str, (.+)\]$")
PREFIX = "io.k8s.pilothouse."
_PRIMITIVES = {"str", "int", "bool", "float", "datetime", "date", "object"}

_SPECIAL_MODELS = {("", "Event"): "CoreV1Event", ("events.k8s.io", "Event"): "EventsV1Event"}


def _client() -> Any:
    import kubernetes.client as client

    return client


def model_name(rt: ResourceType) -> str | None:
    name = _SPECIAL_MODELS.get((rt.group, rt.kind)) or f"{rt.version[:1].upper()}{rt.version[1:]}{rt.kind}"
    return name if hasattr(_client(), name) else None


def _prop(type_name: str, description: str = "") -> dict[str, Any]:
    out: dict[str, Any]
    if m := _LIST.match(type_name):
        out = {"type": "array", "items": _prop(m.group(1))}
    elif m := _DICT.match(type_name):
        out = {"type": "object", "additionalProperties": _prop(m.group(1))}
    elif type_name == "str":
        out = {"type": "string"}
    elif type_name == "int":
        out = {"type": "integer", "format": "int64"}
    elif type_name == "bool":
        out = {"type": "boolean"}
    elif type_name == "float":
        out = {"type": "number", "format": "double"}
    elif type_name in ("datetime", "date"):
        out = {"type": "string", "format": "date-time"}
    elif type_name == "object":
        out = {"x-kubernetes-preserve-unknown-fields": True}
    else:
        out = {"allOf": [{"$ref": f"#/components/schemas/{PREFIX}{type_name}"}]}
    if description:
        out["description"] = description
    return out


@functools.lru_cache(maxsize=None)
def model_schema(name: str) -> dict[str, Any] | None:
    cls = getattr(_client(), name, None)
    if cls is None or not hasattr(cls, "openapi_types"):
        return None
    fields = getattr(cls, "model_fields", {})
    props: dict[str, Any] = {}
    required: list[str] = []
    for attr, type_name in cls.openapi_types.items():
        json_name = cls.attribute_map.get(attr, attr)
        info = fields.get(attr)
        props[json_name] = _prop(type_name, getattr(info, "description", "") or "")
        if info is not None and info.is_required():
            required.append(json_name)
    schema: dict[str, Any] = {"type": "object", "properties": props}
    doc = (cls.__doc__ or "").strip()
    if doc and "NOTE: This class is auto generated" not in doc:
        schema["description"] = doc.split("\n\n")[0]
    if required:
        schema["required"] = required
    return schema


def schemas_for(root: str) -> dict[str, dict[str, Any]]:
    """The schema of ``root`` and of every model it references, keyed by component name."""
    out: dict[str, dict[str, Any]] = {}
    pending = [root]
    while pending:
        name = pending.pop()
        if PREFIX + name in out:
            continue
        schema = model_schema(name)
        if schema is None:
            continue
        out[PREFIX + name] = schema
        cls = getattr(_client(), name)
        for type_name in cls.openapi_types.values():
            inner = type_name
            while (m := _LIST.match(inner) or _DICT.match(inner)) is not None:
                inner = m.group(1)
            if inner not in _PRIMITIVES and hasattr(_client(), inner):
                pending.append(inner)
    return out


def unknown_fields(rt: ResourceType, obj: dict[str, Any]) -> list[str] | None:
    """Paths of fields the kind does not have (None: no schema known for this kind)."""
    name = model_name(rt)
    if name is None:
        return None
    found: list[str] = []
    _walk(model_schema(name), obj, "", found, depth=0)
    return found


def _resolve(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    while schema is not None and "allOf" in schema and "properties" not in schema:
        ref = schema["allOf"][0].get("$ref", "")
        schema = model_schema(ref.rsplit(".", 1)[-1] if ref.startswith("#/components/schemas/" + PREFIX)
                              else "") if ref else None
    return schema


def _walk(schema: dict[str, Any] | None, value: Any, path: str, found: list[str], *, depth: int) -> None:
    schema = _resolve(schema)
    if schema is None or depth > 40 or schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    if isinstance(value, dict) and schema.get("type") == "object":
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            child = f"{path}.{key}" if path else key
            if props is not None and key in props:
                _walk(props[key], item, child, found, depth=depth + 1)
            elif isinstance(extra, dict):
                _walk(extra, item, child, found, depth=depth + 1)
            elif props is not None:
                found.append(child)
    elif isinstance(value, list) and schema.get("type") == "array":
        for i, item in enumerate(value):
            _walk(schema.get("items"), item, f"{path}[{i}]", found, depth=depth + 1)
