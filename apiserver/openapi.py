"""OpenAPI v3: the root index and one document per group-version.

kubectl's ``apply -f``/``create -f`` look up the PATCH operation of the object's kind and check
that it takes the ``fieldValidation`` query parameter; when it does, kubectl leaves validation to
the server (``fieldValidation=Strict``). Each document therefore lists every kind's item path with
its GVK and that parameter. Schemas are open objects (``x-kubernetes-preserve-unknown-fields``);
the server validates.

Built-in kinds get real schemas (apiserver/schemas.py) so ``kubectl explain`` works; custom
resources get their CRD's ``openAPIV3Schema``.
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
