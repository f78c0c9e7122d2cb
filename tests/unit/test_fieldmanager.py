"""apimachinery.fieldmanager: field sets, FieldsV1, ownership on update and apply."""

from __future__ import annotations

import copy

import pytest

from apimachinery import fieldmanager as fm
from apimachinery.errors import StatusError
from apimachinery.patch import strategic_merge_patch, strategic_merge_schema

SCHEMA = fm.schema_for("Deployment", "apps")


def dep(replicas: int = 1, image: str = "a:1", finalizers: list[str] | None = None) -> dict:
    meta: dict = {"name": "d", "namespace": "n", "resourceVersion": "5", "uid": "u"}
    if finalizers:
        meta["finalizers"] = finalizers
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "c", "image": image}]}}},
            "status": {"replicas": 1}}


def test_field_set_skips_identity_and_status_and_addresses_list_items() -> None:
    paths = {fm.render_path(p) for p in fm.field_set(dep(finalizers=["x"]), SCHEMA)}
    assert paths == {".metadata.finalizers[=\"x\"]", ".spec.replicas", '.spec.template.spec.containers[name="c"]',
                     '.spec.template.spec.containers[name="c"].image', '.spec.template.spec.containers[name="c"].name'}
    assert {fm.render_path(p) for p in fm.field_set(dep(), SCHEMA, scope="status")} == {".status.replicas"}


def test_fieldsv1_round_trip_with_dot_markers() -> None:
    fields = fm.field_set(dep(), SCHEMA)
    encoded = fm.encode(fields)
    item = encoded["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"c"}']
    assert list(item) == [".", "f:image", "f:name"]
    assert fm.decode(encoded) == fields


def test_update_takes_changed_fields_from_other_managers() -> None:
    old = dep()
    fm.record_update(None, old, manager="creator", api_version="apps/v1", now="t0", schema=SCHEMA)
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 3
    fm.record_update(old, new, manager="scaler", api_version="apps/v1", now="t1", schema=SCHEMA)
    owners = {e["manager"]: fm.decode(e["fieldsV1"]) for e in new["metadata"]["managedFields"]}
    assert owners["scaler"] == {("f:spec", "f:replicas")}
    assert ("f:spec", "f:replicas") not in owners["creator"]
    # a no-op update leaves managedFields as they were
    same = copy.deepcopy(new)
    fm.record_update(new, same, manager="other", api_version="apps/v1", now="t2", schema=SCHEMA)
    assert same["metadata"]["managedFields"] == new["metadata"]["managedFields"]


def apply(live: dict | None, applied: dict, manager: str, force: bool = False) -> dict:
    merged = strategic_merge_patch(live or {}, applied, strategic_merge_schema("Deployment", "apps"))
    return fm.apply(live, applied, merged, manager=manager, api_version="apps/v1", now="t", schema=SCHEMA,
                    force=force, kind="Deployment", group="apps", name="d")


def test_apply_conflicts_forces_and_removes_what_it_dropped() -> None:
    live = apply(None, dep(replicas=1, finalizers=["x", "y"]), "one")
    with pytest.raises(StatusError) as err:
        apply(live, dep(replicas=2), "two")
    assert err.value.code == 409
    assert err.value.message == 'Apply failed with 1 conflict: conflict with "one" using apps/v1: .spec.replicas'
    forced = apply(live, dep(replicas=2), "two", force=True)
    assert forced["spec"]["replicas"] == 2
    # "one" stops applying the finalizer y: it goes (nobody else owns it); x stays
    again = apply(forced, dep(replicas=1, finalizers=["x"]) | {"spec": {"template": dep()["spec"]["template"]}}, "one")
    assert again["metadata"]["finalizers"] == ["x"]
    assert again["spec"]["replicas"] == 2  # owned by "two" now
