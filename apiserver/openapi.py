"""OpenAPI v3: the root index and one document per group-version.

kubectl's ``apply -f``/``create -f`` look up the PATCH operation of the object's kind and check
that it takes the ``fieldValidation`` query parameter; when it does, kubectl leaves validation to
the server (``fieldValidation=Strict``). Each document therefore lists every kind's item path with
its GVK and that parameter. Schemas are open objects (``x-kubernetes-preserve-unknown-fields``);
the server validates.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from apimachinery.registry import Registry, ResourceType

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


def group_version_document(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    types = [rt for rt in registry.all() if rt.group == group and rt.version == version and not rt.virtual]
    if not types:
        return None
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for rt in types:
        gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
        ref = {"$ref": f"#/components/schemas/{_schema_name(rt)}"}
        ok = {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}}
        paths[_item_path(rt)] = {
            "get": {"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "get", "responses": ok},
            "put": {"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "put", "parameters": _PARAMS,
                    "responses": ok},
            "patch": {"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "patch",
                      "parameters": _PARAMS, "responses": ok},
        }
        schemas[_schema_name(rt)] = {
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


def root_document(registry: Registry) -> dict[str, Any]:
    paths = {}
    for group, versions in registry.groups().items():
        for version in versions:
            doc = group_version_document(registry, group, version)
            if doc is None:
                continue
            path = _gv_path(group, version)
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={document_hash(doc)}"}
    return {"paths": paths}
