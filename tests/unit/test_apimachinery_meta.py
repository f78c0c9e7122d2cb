"""Object-as-dict helpers, timestamps, UIDs and group/version/kind identities."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apimachinery import meta
from apimachinery.meta import GroupKind, GroupResource, GroupVersion, GroupVersionKind, GroupVersionResource


def test_timestamps() -> None:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta.now_rfc3339())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", meta.now_rfc3339_micro())
    dt = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    assert meta.format_rfc3339(dt) == "2025-01-02T03:04:05Z"
    assert meta.format_rfc3339_micro(dt) == "2025-01-02T03:04:05.678901Z"
    plus2 = dt.astimezone(timezone(timedelta(hours=2)))
    assert meta.format_rfc3339(plus2) == "2025-01-02T03:04:05Z"  # always UTC on the wire
    assert meta.format_rfc3339(datetime(2025, 1, 1)) == "2025-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-01T00:00:00Z", datetime(2025, 1, 1, tzinfo=UTC)),
        ("2025-01-01T00:00:00.123456Z", datetime(2025, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)),
        ("2025-01-01T00:00:00.123456789Z", datetime(2025, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)),
        ("2025-01-01T00:00:00.1Z", datetime(2025, 1, 1, 0, 0, 0, 100000, tzinfo=UTC)),
        ("2025-01-01T02:00:00+02:00", datetime(2025, 1, 1, tzinfo=UTC)),
        ("2025-01-01t00:00:00z", datetime(2025, 1, 1, tzinfo=UTC)),
    ],
)
def test_parse_rfc3339(text: str, expected: datetime) -> None:
    assert meta.parse_rfc3339(text) == expected


@pytest.mark.parametrize("text", ["", "garbage", "2025-01-01", "2025-01-01 00:00:00Z", "2025-01-01T00:00:00", None, 5])
def test_parse_rfc3339_rejects(text: object) -> None:
    with pytest.raises(ValueError):
        meta.parse_rfc3339(text)  # type: ignore[arg-type]


def test_round_trip_now() -> None:
    text = meta.now_rfc3339()
    assert meta.format_rfc3339(meta.parse_rfc3339(text)) == text


def test_new_uid() -> None:
    a, b = meta.new_uid(), meta.new_uid()
    assert a != b and uuid.UUID(a).version == 4


def test_deep_copy() -> None:
    obj = {"a": [1, {"b": "c"}], "n": None, "f": 1.5, "t": True}
    copied = meta.deep_copy(obj)
    assert copied == obj and copied is not obj and copied["a"][1] is not obj["a"][1]
    assert meta.deep_copy(None) is None and meta.deep_copy("s") == "s"
    big = {"n": 2**80, 1: "non-string key", "s": {1, 2}}  # not JSON: falls back to deepcopy
    assert meta.deep_copy(big) == big
    assert meta.deep_copy((1, 2)) == [1, 2]


def test_deep_copy_of_very_deep_data_does_not_recurse() -> None:
    root = node = {}
    for _ in range(20000):
        node["a"] = [{}]
        node = node["a"][0]
    copied = meta.deep_copy(root)
    depth = 0
    while copied:
        copied = copied["a"][0]
        depth += 1
    assert depth == 20000


def test_getters_tolerate_missing_and_null() -> None:
    for obj in ({}, {"metadata": None}, {"metadata": {"labels": None, "finalizers": "x", "ownerReferences": "y"}}):
        assert meta.name(obj) == "" and meta.namespace(obj) == "" and meta.uid(obj) == ""
        assert meta.resource_version(obj) == "" and meta.generation(obj) == 0
        assert meta.labels(obj) == {} and meta.annotations(obj) == {}
        assert meta.finalizers(obj) == [] and meta.owner_references(obj) == []
        assert meta.controller_ref(obj) is None
        assert meta.deletion_timestamp(obj) == "" and meta.creation_timestamp(obj) == ""
    assert meta.generation({"metadata": {"generation": True}}) == 0


def test_getters_and_setters() -> None:
    obj: dict = {"kind": "Pod"}
    meta.set_name(obj, "web")
    meta.set_namespace(obj, "default")
    meta.set_resource_version(obj, 42)
    meta.set_label(obj, "app", "web")
    meta.set_annotation(obj, "note", "x")
    assert obj["metadata"] == {
        "name": "web",
        "namespace": "default",
        "resourceVersion": "42",
        "labels": {"app": "web"},
        "annotations": {"note": "x"},
    }
    assert meta.name(obj) == "web" and meta.resource_version(obj) == "42"
    assert meta.labels(obj) == {"app": "web"} and meta.annotations(obj) == {"note": "x"}
    assert meta.remove_label(obj, "app") and not meta.remove_label(obj, "app")
    assert meta.remove_annotation(obj, "note") and not meta.remove_annotation(obj, "note")
    assert not meta.remove_label({}, "x")
    assert meta.object_key(obj) == "default/web"
    assert meta.object_key({"metadata": {"name": "node-1"}}) == "node-1"


def test_finalizers() -> None:
    obj: dict = {}
    assert meta.add_finalizer(obj, "a") and not meta.add_finalizer(obj, "a")
    assert meta.add_finalizer(obj, "b")
    assert meta.finalizers(obj) == ["a", "b"]
    assert meta.remove_finalizer(obj, "a") and meta.finalizers(obj) == ["b"]
    assert not meta.remove_finalizer(obj, "zzz")
    assert meta.remove_finalizer(obj, "b")
    assert "finalizers" not in obj["metadata"]
    assert not meta.remove_finalizer({}, "a")


def test_owner_references() -> None:
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "uid": "u-1"}}
    ref = meta.new_controller_ref(deploy)
    assert ref == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "web",
        "uid": "u-1",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    rs = {"metadata": {"name": "web-abc", "ownerReferences": [{"uid": "other", "controller": False}, ref]}}
    assert meta.controller_ref(rs) == ref
    assert meta.is_controlled_by(rs, deploy)
    assert not meta.is_controlled_by(rs, {"metadata": {"uid": "u-2"}})
    assert not meta.is_controlled_by(rs, {"metadata": {}})  # an owner without uid controls nothing
    assert not meta.is_controlled_by({"metadata": {"ownerReferences": [dict(ref, controller=False)]}}, deploy)
    explicit = meta.new_controller_ref({}, api_version="v1", kind="Node", block_owner_deletion=False)
    assert explicit["kind"] == "Node" and explicit["blockOwnerDeletion"] is False and explicit["uid"] == ""


def test_split_object_key() -> None:
    assert meta.split_object_key("default/web") == ("default", "web")
    assert meta.split_object_key("node-1") == ("", "node-1")
    with pytest.raises(ValueError):
        meta.split_object_key("a/b/c")


@pytest.mark.parametrize(
    ("api_version", "group", "version"),
    [("v1", "", "v1"), ("apps/v1", "apps", "v1"), ("rbac.authorization.k8s.io/v1", "rbac.authorization.k8s.io", "v1"),
     ("", "", ""), ("/", "", "")],
)
def test_group_version_parse(api_version: str, group: str, version: str) -> None:
    gv = GroupVersion.parse(api_version)
    assert (gv.group, gv.version) == (group, version)


def test_group_version_errors_and_strings() -> None:
    with pytest.raises(ValueError, match="unexpected GroupVersion string: a/b/c"):
        GroupVersion.parse("a/b/c")
    assert str(GroupVersion("apps", "v1")) == "apps/v1"
    assert GroupVersion("", "v1").api_version == "v1"
    gvk = GroupVersion("apps", "v1").with_kind("Deployment")
    assert str(gvk) == "apps/v1, Kind=Deployment"
    assert str(GroupVersionKind("", "v1", "Pod")) == "/v1, Kind=Pod"
    assert gvk.api_version == "apps/v1" and gvk.group_version == GroupVersion("apps", "v1")
    assert str(gvk.group_kind) == "Deployment.apps" and str(GroupKind("", "Pod")) == "Pod"
    gvr = GroupVersion("apps", "v1").with_resource("deployments")
    assert str(gvr) == "apps/v1, Resource=deployments"
    assert gvr.api_version == "apps/v1" and gvr.group_version.api_version == "apps/v1"
    assert str(gvr.group_resource) == "deployments.apps"
    assert GroupVersionResource("", "v1", "pods").api_version == "v1"
    assert GroupResource.parse("deployments.apps") == GroupResource("apps", "deployments")
    assert GroupResource.parse("leases.coordination.k8s.io") == GroupResource("coordination.k8s.io", "leases")
    assert GroupResource.parse("pods") == GroupResource("", "pods")
    assert str(GroupResource("", "pods")) == "pods"


def test_gvk_from_object() -> None:
    assert GroupVersionKind.from_object({"apiVersion": "batch/v1", "kind": "Job"}) == GroupVersionKind("batch", "v1", "Job")
    assert GroupVersionKind.from_object({}) == GroupVersionKind("", "", "")
    assert GroupVersionKind.from_api_version_and_kind("a/b/c", "X") == GroupVersionKind("", "", "X")
    # frozen, hashable: usable as registry keys
    assert len({GroupVersionKind("", "v1", "Pod"), GroupVersionKind("", "v1", "Pod")}) == 1


@settings(max_examples=60, deadline=None)
@given(st.from_regex(r"[a-z.]{0,12}", fullmatch=True), st.from_regex(r"v[0-9a-z]{1,6}", fullmatch=True))
def test_api_version_round_trip(group: str, version: str) -> None:
    gv = GroupVersion(group, version)
    assert GroupVersion.parse(gv.api_version) == gv
