"""OpenAPI v3: the root index and one document per group-version.

kubectl's ``apply -f``/``create -f`` look up the PATCH operation of the object's kind and check
that it takes the ``fieldValidation`` query parameter; when it does, kubectl leaves validation to
the server (``fieldValidation=Strict``). Each document therefore lists every kind's item path with
its GVK and that parameter. Schemas are open objects (``x-kubernetes-preserve-unknown-fields``);
the server validates.

Built-in kinds get real schemas (apiserver/schemas.py) so ``kubectl explain`` works; custom
resources get their CRD's ``openAPIV3Schema``.

OpenAPI v2 (``/openapi/v2``) is a Swagger 2.0 document with no paths and no definitions, in JSON or
in the protobuf form kubectl asks for. kubectl reads v2 in two places. It validates a ``kind: List``
file on the client (the List kind has no PATCH operation to carry ``fieldValidation``); with no
definition for an item's kind, it leaves that item to the server, which validates every item it
receives. Its client-side ``apply`` takes strategic-merge keys from v2 when a definition names the
kind, and from its compiled-in types otherwise. The v3 schemas carry no merge keys, so publishing them
as v2 definitions would turn merged lists (containers, ports, env) into replaced ones.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any, Callable

import orjson

from apimachinery.registry import Registry, ResourceType

from .schemas import PREFIX, model_name, schemas_for

_PARAMS = [{"name": name, "in": "query", "schema": {"type": "string"}, "uniqueItems": True}
           for name in ("dryRun", "fieldManager", "fieldValidation", "force", "pretty")]


def _gv_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def _item_path(rt: ResourceType) -> str:
    base = "/" + _gv_path(rt.group, rt.version)
    if rt.namespaced:
        return f"{base}/namespaces/{{namespace}}/{rt.plural}/{{name}}"
    return f"{base}/{rt.plural}/{{name}}"


def _schema_name(rt: ResourceType) -> str:
    group = rt.group or "core"
    return f"io.k8s.api.{group}.{rt.version}.{rt.kind}"


CustomSchema = Callable[[ResourceType], "dict[str, Any] | None"]


def group_version_document(registry: Registry, group: str, version: str,
                           custom_schema: CustomSchema | None = None) -> dict[str, Any] | None:
    types = tuple(rt for rt in registry.all() if rt.group == group and rt.version == version and not rt.virtual)
    if not types:
        return None
    custom = {rt: custom_schema(rt) for rt in types} if custom_schema else {}
    if not any(custom.values()):
        return _builtin_document(types)
    return _document(types, custom)


@functools.lru_cache(maxsize=64)
def _builtin_document(types: tuple[ResourceType, ...]) -> dict[str, Any]:
    return _document(types, {})


def _document(types: tuple[ResourceType, ...], custom: dict[ResourceType, dict[str, Any] | None]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for rt in types:
        gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
        model = model_name(rt)
        name = _schema_name(rt) if model is None else PREFIX + model
        ref = {"$ref": f"#/components/schemas/{name}"}
        ok = {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}}
        paths[_item_path(rt)] = {
            "get": {"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "get", "responses": ok},
            "put": {"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "put", "parameters": _PARAMS,
                    "responses": ok},
            "patch": {"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "patch",
                      "parameters": _PARAMS, "responses": ok},
        }
        crd_schema = custom.get(rt)
        if model is not None:
            schemas.update(schemas_for(model))
            schemas[name] = {**schemas[name], "x-kubernetes-group-version-kind": [gvk]}
        elif crd_schema:
            schemas[name] = {**crd_schema, "x-kubernetes-group-version-kind": [gvk]}
            schemas[name].setdefault("description", f"{rt.kind} ({rt.api_version})")
        else:
            schemas[name] = {
                "type": "object",
                "description": f"{rt.kind} ({rt.api_version})",
                "x-kubernetes-group-version-kind": [gvk],
                "x-kubernetes-preserve-unknown-fields": True,
                "properties": {
                    "apiVersion": {"type": "string"}, "kind": {"type": "string"},
                    "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                },
            }
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.32.0"},
            "paths": paths, "components": {"schemas": schemas}}


def document_hash(doc: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16].upper()


@functools.lru_cache(maxsize=64)
def _builtin_hash(types: tuple[ResourceType, ...]) -> str:
    return document_hash(_builtin_document(types))


def root_document(registry: Registry, custom_schema: CustomSchema | None = None) -> dict[str, Any]:
    paths = {}
    for group, versions in registry.groups().items():
        for version in versions:
            types = tuple(rt for rt in registry.all() if rt.group == group and rt.version == version and not rt.virtual)
            custom = [custom_schema(rt) for rt in types] if custom_schema else []
            if not types:
                continue
            if any(custom):
                digest = document_hash(group_version_document(registry, group, version, custom_schema) or {})
            else:
                digest = _builtin_hash(types)
            path = _gv_path(group, version)
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return {"paths": paths}


# kubectl asks for the "@v1.0" form; the answer carries the dotted form, as upstream's, because Go's
# MIME parser (client-go reads the response's Content-Type) refuses the "@".
SWAGGER_PROTOBUF_ACCEPT = "com.github.proto-openapi.spec.v2"
SWAGGER_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
_SWAGGER_INFO = {"title": "Kubernetes", "version": "v1.32.0"}


def swagger_document() -> dict[str, Any]:
    """The OpenAPI v2 document as JSON (see the module docstring for why it is empty)."""
    return {"swagger": "2.0", "info": dict(_SWAGGER_INFO), "paths": {}, "definitions": {}}


def _proto_field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2); field numbers and lengths here stay < 128."""
    assert number < 16 and len(payload) < 128
    return bytes([number << 3 | 2, len(payload)]) + payload


@functools.lru_cache(maxsize=1)
def swagger_protobuf() -> bytes:
    """``swagger_document()`` as gnostic's ``openapi.v2.Document`` message, which kubectl decodes.

    Document: swagger = 1, info = 2 (Info: title = 1, version = 2), paths = 8, definitions = 9.
    """
    info = (_proto_field(1, _SWAGGER_INFO["title"].encode()) + _proto_field(2, _SWAGGER_INFO["version"].encode()))
    return _proto_field(1, b"2.0") + _proto_field(2, info) + _proto_field(8, b"") + _proto_field(9, b"")
