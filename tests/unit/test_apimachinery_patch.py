"""JSON patch, JSON merge patch and strategic merge patch."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apimachinery.errors import StatusError
from apimachinery.patch import (
    METADATA_ONLY_SCHEMA,
    STRATEGIC_MERGE_KEYS,
    json_patch,
    merge_patch,
    strategic_merge_patch,
    strategic_merge_schema,
)

# A schema in the spirit of upstream's test struct.
SCHEMA = {
    "mergingList": {"patchMergeKey": "name", "patchStrategy": "merge"},
    "mergingIntList": {"patchStrategy": "merge"},
    "retainKeysMap": {"patchStrategy": "retainKeys"},
    "retainKeysMergingList": {"patchMergeKey": "name", "patchStrategy": "merge,retainKeys"},
    "replaceMap": {"patchStrategy": "replace"},
    "mergingList.nested": {"patchMergeKey": "name", "patchStrategy": "merge"},
}


def smp(doc: Any, patch: Any, schema: Any = SCHEMA) -> Any:
    before_doc, before_patch = copy.deepcopy(doc), copy.deepcopy(patch)
    result = strategic_merge_patch(doc, patch, schema)
    assert doc == before_doc and patch == before_patch  # inputs are never mutated
    return result


def smp_error(doc: Any, patch: Any, schema: Any = SCHEMA) -> StatusError:
    with pytest.raises(StatusError) as info:
        strategic_merge_patch(doc, patch, schema)
    return info.value


# --- JSON patch ----------------------------------------------------------------------------


def test_json_patch_operations() -> None:
    doc = {"metadata": {"annotations": {"a": "1"}}, "spec": {"replicas": 1, "list": [1, 2]}}
    ops = [
        {"op": "replace", "path": "/spec/replicas", "value": 3},
        {"op": "add", "path": "/metadata/annotations/b", "value": "2"},
        {"op": "remove", "path": "/metadata/annotations/a"},
        {"op": "add", "path": "/spec/list/-", "value": 3},
        {"op": "test", "path": "/spec/replicas", "value": 3},
        {"op": "copy", "from": "/spec/replicas", "path": "/spec/copied"},
        {"op": "move", "from": "/spec/copied", "path": "/spec/moved"},
    ]
    out = json_patch(doc, ops)
    assert out == {"metadata": {"annotations": {"b": "2"}}, "spec": {"replicas": 3, "list": [1, 2, 3], "moved": 3}}
    assert doc["spec"]["replicas"] == 1  # not mutated


@pytest.mark.parametrize(
    ("ops", "code"),
    [
        ([{"op": "replace", "path": "/missing", "value": 1}], 422),
        ([{"op": "remove", "path": "/missing"}], 422),
        ([{"op": "add", "path": "/a/b/c", "value": 1}], 422),
        ([{"op": "test", "path": "/spec", "value": "x"}], 422),
        ([{"op": "bogus", "path": "/a"}], 400),
        ([{"path": "/a"}], 400),
        (["not an op"], 400),
        ({"op": "add"}, 400),
        ([{"op": "add", "path": "no-slash", "value": 1}], 400),
    ],
)
def test_json_patch_errors(ops: Any, code: int) -> None:
    with pytest.raises(StatusError) as info:
        json_patch({"spec": {}}, ops)
    assert info.value.code == code
    assert info.value.reason == ("Invalid" if code == 422 else "BadRequest")


def test_json_patch_operation_limit() -> None:
    ops = [{"op": "test", "path": "/a", "value": 1}] * 10001
    with pytest.raises(StatusError) as info:
        json_patch({"a": 1}, ops)
    assert info.value.code == 413
    assert "The allowed maximum operations in a JSON patch is 10000, got 10001" in info.value.message
    assert json_patch({"a": 1}, []) == {"a": 1}


def test_kubectl_rollout_undo_style_patch() -> None:
    deploy = {"metadata": {"annotations": {"deployment.kubernetes.io/revision": "2"}}, "spec": {"template": {"a": 1}}}
    out = json_patch(
        deploy,
        [
            {"op": "replace", "path": "/spec/template", "value": {"metadata": {"creationTimestamp": None}}},
            {"op": "replace", "path": "/metadata/annotations", "value": {"deployment.kubernetes.io/revision": "1"}},
        ],
    )
    assert out["spec"]["template"] == {"metadata": {"creationTimestamp": None}}


# --- merge patch ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "patch", "expected"),
    [  # RFC 7386 appendix A
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_rfc7386(doc: Any, patch: Any, expected: Any) -> None:
    assert merge_patch(doc, patch) == expected


def test_merge_patch_kubectl_scale_and_label() -> None:
    deploy = {"metadata": {"labels": {"app": "web"}}, "spec": {"replicas": 1, "template": {"x": 1}}}
    out = merge_patch(deploy, {"spec": {"replicas": 4}})
    assert out["spec"] == {"replicas": 4, "template": {"x": 1}}
    out = merge_patch(out, {"metadata": {"labels": {"tier": "frontend"}}})
    assert out["metadata"]["labels"] == {"app": "web", "tier": "frontend"}
    assert deploy["spec"]["replicas"] == 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=3),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=2), children, max_size=3),
    max_leaves=10,
)
json_objects = st.dictionaries(st.text(max_size=2), json_values, max_size=4)


def _strip_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_nulls(v) for k, v in value.items() if v is not None}
    return value


@settings(max_examples=60, deadline=None)
@given(json_objects)
def test_merge_patch_identities(doc: dict) -> None:
    assert merge_patch(doc, {}) == doc
    # A patch without nulls, applied to anything, yields a document the same patch leaves unchanged.
    patch = _strip_nulls(doc)
    once = merge_patch({"unrelated": 1}, patch)
    assert merge_patch(once, patch) == once


@settings(max_examples=60, deadline=None)
@given(json_objects, json_objects)
def test_merge_patch_is_idempotent(doc: dict, patch: dict) -> None:
    once = merge_patch(doc, patch)
    assert merge_patch(once, patch) == once


@settings(max_examples=60, deadline=None)
@given(json_objects, json_objects)
def test_strategic_merge_without_schema_equals_merge_patch_for_maps(doc: dict, patch: dict) -> None:
    # With no list metadata and no directive keys, SMP degenerates to a JSON merge patch.
    def clean(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items() if not k.startswith("$")}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v

    doc, patch = clean(doc), clean(patch)
    assert strategic_merge_patch(doc, patch, {}) == merge_patch(doc, _drop_nested_nulls_in_lists(patch))


def _drop_nested_nulls_in_lists(value: Any) -> Any:
    """SMP stores patch values clean: nulls inside maps that sit inside lists are dropped too."""
    if isinstance(value, dict):
        return {k: _drop_nested_nulls_in_lists(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_nulls_deep(v) for v in value]
    return value


def _strip_nulls_deep(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_nulls_deep(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_nulls_deep(v) for v in value]
    return value


# --- strategic merge patch: upstream semantics ----------------------------------------------


def test_null_deletes_and_maps_merge() -> None:
    doc = {"a": 1, "b": {"c": 2, "d": 3}, "e": [1]}
    assert smp(doc, {"a": None, "b": {"c": None, "x": 1}, "missing": None}) == {"b": {"d": 3, "x": 1}, "e": [1]}


def test_unique_scalars_when_merging_lists() -> None:
    assert smp({"mergingIntList": [1, 2]}, {"mergingIntList": [2, 3]}) == {"mergingIntList": [1, 2, 3]}


def test_non_merging_lists_are_replaced() -> None:
    assert smp({"other": [1, 2], "objs": [{"name": "a"}]}, {"other": [3], "objs": [{"name": "b"}]}) == {
        "other": [3],
        "objs": [{"name": "b"}],
    }


def test_merge_by_key_and_patch_order() -> None:
    doc = {"mergingList": [{"name": 1}, {"name": 2, "value": "b"}, {"name": 3}]}
    patch = {"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}, {"name": 2, "other": "x"}]}
    assert smp(doc, patch) == {
        "mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}, {"name": 2, "value": "b", "other": "x"}]
    }
    patch = {"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}]}
    assert smp(doc, patch) == {
        "mergingList": [{"name": 2, "value": "b"}, {"name": 3, "value": "c"}, {"name": 1, "value": "a"}]
    }


def test_primitive_list_patch_order() -> None:
    assert smp({"mergingIntList": [1, 2, 3]}, {"mergingIntList": [3, 1, 2]}) == {"mergingIntList": [3, 1, 2]}
    assert smp({"mergingIntList": [1, 2, 3]}, {"mergingIntList": [3, 1]}) == {"mergingIntList": [2, 3, 1]}


def test_map_directives() -> None:
    assert smp({"simpleMap": {"key1": 1, "key2": 1}}, {"simpleMap": {"$patch": "delete"}}) == {"simpleMap": {}}
    assert smp({"name": 1, "value": 1}, {"$patch": "replace"}) == {}
    assert smp({"name": 1, "value": 1}, {"other": "a", "$patch": "replace"}) == {"other": "a"}
    assert smp({"m": {"a": 1, "b": 2}}, {"m": {"$patch": "replace", "c": 3, "d": None}}) == {"m": {"c": 3}}
    # A new key whose value deletes itself is not added; one that replaces is added clean.
    assert smp({}, {"m": {"$patch": "delete"}}) == {}
    assert smp({}, {"m": {"$patch": "replace", "a": 1}}) == {"m": {"a": 1}}
    assert smp_error({"m": {}}, {"m": {"$patch": "merge"}}).code == 400
    assert smp_error({"m": {}}, {"m": {"$patch": "bogus"}}).message.startswith("unknown patch type: bogus in map:")


def test_list_directives() -> None:
    doc = {"mergingList": [{"name": 1}, {"name": 1}, {"name": 2, "value": "a"}, {"name": 3}, {"name": 3}]}
    patch = {"mergingList": [{"name": 1, "$patch": "delete"}, {"name": 3, "$patch": "delete"}]}
    assert smp(doc, patch) == {"mergingList": [{"name": 2, "value": "a"}]}
    assert smp({"mergingList": [{"name": 1}, {"name": 2}]}, {"mergingList": [{"$patch": "replace"}]}) == {"mergingList": []}
    assert smp(
        {"mergingList": [{"name": 1, "a": 1}, {"name": 2}]},
        {"mergingList": [{"$patch": "replace"}, {"name": 3, "x": None, "y": 1}]},
    ) == {"mergingList": [{"name": 3, "y": 1}]}
    err = smp_error({"mergingList": [{"name": 1}]}, {"mergingList": [{"$patch": "merge"}]})
    assert err.code == 422 and "merging lists cannot yet be specified in the patch" in err.message
    err = smp_error({"mergingList": [{"name": 1}]}, {"mergingList": [{"$patch": "delete"}]})
    assert err.code == 422 and "does not contain declared merge key: name" in err.message
    assert smp_error({"mergingList": [{"name": 1}]}, {"mergingList": [{"name": 1, "$patch": "x"}]}).code == 400


def test_merge_empty_lists_and_null_original() -> None:
    assert smp({"mergingList": []}, {"mergingList": []}) == {"mergingList": []}
    assert smp({"mergingList": None}, {"mergingList": [{"name": 1}]}) == {"mergingList": [{"name": 1}]}
    assert smp({}, {"mergingList": [{"name": 1, "$patch": "delete"}, {"name": 2}]}) == {"mergingList": [{"name": 2}]}


def test_missing_merge_key_errors() -> None:
    err = smp_error({"mergingList": [{"name": 1, "value": "a"}]}, {"mergingList": [{"value": "b"}]})
    assert err.code == 422 and err.reason == "Invalid"
    assert "map: map[value:b] does not contain declared merge key: name" in err.message


def test_type_errors() -> None:
    assert "lists of lists are not supported" in smp_error({"mergingIntList": [[1]]}, {"mergingIntList": [[2]]}).message
    assert "list element types are not identical" in smp_error({"mergingIntList": [1]}, {"mergingIntList": ["a"]}).message
    err = smp_error({"mergingIntList": [{"a": 1}]}, {"mergingIntList": [{"b": 1}]})
    assert "cannot merge lists without merge key for mergingIntList" in err.message
    assert smp_error({}, ["not", "a", "map"]).message == "invalid JSON document"
    assert smp_error({}, ["x"]).code == 400
    # A type change simply replaces the value.
    assert smp({"mergingList": [{"name": 1}]}, {"mergingList": {"name": 1}}) == {"mergingList": {"name": 1}}
    assert smp({"a": {"b": 1}}, {"a": "s"}) == {"a": "s"}
    assert smp({"a": 1}, {"a": 1.5}) == {"a": 1.5}


def test_retain_keys() -> None:
    assert smp({"retainKeysMap": {"name": "foo"}}, {"retainKeysMap": {"value": "bar"}}) == {
        "retainKeysMap": {"name": "foo", "value": "bar"}
    }
    assert smp(
        {"retainKeysMap": {"name": "foo", "other": "a"}},
        {"retainKeysMap": {"$retainKeys": ["name", "value"], "value": "bar"}},
    ) == {"retainKeysMap": {"name": "foo", "value": "bar"}}
    assert smp(
        {"retainKeysMap": {"name": "type1", "value": "foo"}},
        {"retainKeysMap": {"$retainKeys": ["name", "other"], "name": "type2", "other": "bar"}},
    ) == {"retainKeysMap": {"name": "type2", "other": "bar"}}
    # nulls and directives need not be listed
    assert smp(
        {"retainKeysMap": {"name": "a", "gone": 1}},
        {"retainKeysMap": {"$retainKeys": ["name"], "gone": None}},
    ) == {"retainKeysMap": {"name": "a"}}
    assert smp_error({"retainKeysMap": {}}, {"retainKeysMap": {"$retainKeys": ["a"], "b": 1}}).message == (
        "invalid patch format of retainKeys"
    )
    assert smp_error({"retainKeysMap": {}}, {"retainKeysMap": {"$retainKeys": "a"}}).code == 400
    # retainKeys inside merging list elements
    assert smp(
        {"retainKeysMergingList": [{"name": "foo", "value": "a", "x": 1}]},
        {"retainKeysMergingList": [{"name": "foo", "$retainKeys": ["name", "value"], "value": "b"}]},
    ) == {"retainKeysMergingList": [{"name": "foo", "value": "b"}]}


def test_replace_strategy_map() -> None:
    assert smp({"replaceMap": {"a": 1}}, {"replaceMap": {"b": 2, "c": None}}) == {"replaceMap": {"b": 2}}


def test_delete_from_primitive_list() -> None:
    assert smp({"mergingIntList": [1, 2]}, {"$deleteFromPrimitiveList/mergingIntList": [3]}) == {"mergingIntList": [1, 2]}
    assert smp({"mergingIntList": None}, {"$deleteFromPrimitiveList/mergingIntList": [3]}) == {"mergingIntList": None}
    assert smp({"foo": ["bar"]}, {"$deleteFromPrimitiveList/mergingIntList": [3]}) == {"foo": ["bar"]}
    assert smp({"mergingIntList": [1, 2, 3]}, {"$deleteFromPrimitiveList/mergingIntList": [2]}) == {"mergingIntList": [1, 3]}
    assert smp({"nonMergingIntList": [1, 2, 3]}, {"$deleteFromPrimitiveList/nonMergingIntList": [2]}) == {
        "nonMergingIntList": [1, 3]
    }
    assert smp_error({"a": [1]}, {"$deleteFromPrimitiveListX/a": [1]}).message == "invalid patch format of primitive list"
    assert smp_error({"a": [1]}, {"$deleteFromPrimitiveList": [1]}).code == 400


def test_set_element_order() -> None:
    doc = {"mergingList": [{"name": 1}, {"name": 3}]}
    patch = {
        "$setElementOrder/mergingList": [{"name": 3}, {"name": 2}, {"name": 1}],
        "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}],
    }
    assert smp(doc, patch) == {"mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]}
    assert smp({"mergingIntList": [1, 3]}, {"$setElementOrder/mergingIntList": [3, 2, 1]}) == {"mergingIntList": [3, 1]}


def test_set_element_order_with_server_only_items() -> None:
    doc = {"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 2}, {"name": 7}, {"name": 9}, {"name": 8},
                           {"name": 3, "value": 3}, {"name": 4, "value": 4}]}
    patch = {"$setElementOrder/mergingList": [{"name": 2}, {"name": 1}, {"name": 4}, {"name": 3}]}
    assert [e["name"] for e in smp(doc, patch)["mergingList"]] == [2, 1, 7, 9, 8, 4, 3]
    doc = {"mergingList": [{"name": 1, "other": "a"}, {"name": 3}, {"name": 4}, {"name": 2}, {"name": 9}]}
    patch = {"$setElementOrder/mergingList": [{"name": 4}, {"name": 2}, {"name": 3}, {"name": 1}]}
    assert [e["name"] for e in smp(doc, patch)["mergingList"]] == [4, 2, 3, 1, 9]


def test_set_element_order_with_duplicates() -> None:
    doc = {"mergingList": [{"name": 1}, {"name": 2, "value": "dup1"}, {"name": 3}, {"name": 2, "value": "dup2"}, {"name": 4}]}
    order = [{"name": 2}, {"name": 1}, {"name": 4}, {"name": 3}, {"name": 2}]
    assert smp(doc, {"$setElementOrder/mergingList": order}) == {
        "mergingList": [{"name": 2, "value": "dup1"}, {"name": 2, "value": "dup2"}, {"name": 1}, {"name": 4}, {"name": 3}]
    }
    assert smp({"mergingIntList": [1, 2, 3, 2, 4]}, {"$setElementOrder/mergingIntList": [2, 1, 4, 3, 2]}) == {
        "mergingIntList": [2, 2, 1, 4, 3]
    }


def test_set_element_order_mismatch_is_rejected() -> None:
    err = smp_error(
        {"mergingList": [{"name": 1}, {"name": 3}, {"name": 2}]},
        {"$setElementOrder/mergingList": [{"name": 1}, {"name": 2}, {"name": 3}],
         "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]},
    )
    assert err.code == 422 and "doesn't match $setElementOrder list" in err.message
    err = smp_error({"mergingIntList": [1, 3, 2]}, {"$setElementOrder/mergingIntList": [1, 2, 3], "mergingIntList": [3, 1]})
    assert "doesn't match" in err.message
    assert smp_error({"a": []}, {"$setElementOrder/a": "x"}).message == "invalid patch format of setElementOrder list"
    assert smp_error({"a": []}, {"$setElementOrderX/a": []}).code == 400
    assert smp_error({"mergingList": [{"name": 1}]}, {"$setElementOrder/mergingList": [{"nope": 1}],
                                                      "mergingList": [{"name": 1}]}).code == 422


def test_set_element_order_edge_cases() -> None:
    # new list only in the patch: directives are processed, the order applied
    out = smp({}, {"$setElementOrder/mergingList": [{"name": "b"}, {"name": "a"}],
                   "mergingList": [{"name": "b", "gone": None}, {"name": "a"}, {"name": "c", "$patch": "delete"}]})
    assert out == {"mergingList": [{"name": "b"}, {"name": "a"}]}
    assert smp({"mergingList": []}, {"$setElementOrder/mergingList": [{"name": 1}]}) == {"mergingList": []}
    assert smp({}, {"$setElementOrder/mergingList": [{"name": 1}]}) == {}
    # a non-merge list with an order directive is replaced, then ordered
    assert smp({"plain": [1, 2]}, {"$setElementOrder/plain": [3, 2, 1], "plain": [3, 1]}) == {"plain": [3, 1]}


def test_nested_merge_lists() -> None:
    doc = {"mergingList": [{"name": "a", "nested": [{"name": "x", "v": 1}, {"name": "y"}]}]}
    patch = {"mergingList": [{"name": "a", "nested": [{"name": "x", "v": 2}, {"name": "z"}]}, {"name": "b"}]}
    # Patch items keep the patch's order; a server-only item goes after them unless it came
    # before one of them in the live list (upstream's mergeSortedSlice).
    assert smp(doc, patch) == {
        "mergingList": [
            {"name": "a", "nested": [{"name": "x", "v": 2}, {"name": "z"}, {"name": "y"}]},
            {"name": "b"},
        ]
    }


def test_new_items_go_with_the_patch_items() -> None:
    assert smp({"mergingIntList": ["x", "y"]}, {"mergingIntList": ["z"]}) == {"mergingIntList": ["z", "x", "y"]}
    assert smp({"mergingIntList": ["x", "y"]}, {"mergingIntList": ["y", "z"]}) == {"mergingIntList": ["x", "y", "z"]}


# --- strategic merge patch: what kubectl and the clients send ---------------------------------

DEPLOY_SCHEMA = STRATEGIC_MERGE_KEYS["Deployment.apps"]


def deployment() -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "annotations": {"a": "1"}, "finalizers": ["x"]},
        "spec": {
            "replicas": 2,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "a", "image": "nginx:1",
                         "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}],
                         "ports": [{"containerPort": 80}, {"containerPort": 443}],
                         "args": ["--a", "--b"]},
                        {"name": "b", "image": "busybox"},
                    ],
                    "volumes": [{"name": "v", "emptyDir": {}}],
                    "tolerations": [{"key": "k1", "operator": "Exists"}],
                },
            },
        },
    }


def test_kubectl_client_side_apply_patch() -> None:
    patch = {
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}\n"}},
        "spec": {
            "strategy": {"$retainKeys": ["type"], "rollingUpdate": None, "type": "Recreate"},
            "template": {"spec": {
                "$setElementOrder/containers": [{"name": "a"}],
                "containers": [
                    {"name": "a", "image": "nginx:2",
                     "$setElementOrder/env": [{"name": "Y"}],
                     "$setElementOrder/ports": [{"containerPort": 80}],
                     "env": [{"$patch": "delete", "name": "X"}],
                     "ports": [{"$patch": "delete", "containerPort": 443}]},
                    {"$patch": "delete", "name": "b"},
                ],
                "volumes": None,
            }},
        },
    }
    out = smp(deployment(), patch, DEPLOY_SCHEMA)
    assert out["spec"]["strategy"] == {"type": "Recreate"}
    assert out["spec"]["template"]["spec"]["containers"] == [
        {"name": "a", "image": "nginx:2", "env": [{"name": "Y", "value": "2"}], "ports": [{"containerPort": 80}],
         "args": ["--a", "--b"]}
    ]
    assert "volumes" not in out["spec"]["template"]["spec"]
    assert out["metadata"]["annotations"] == {"a": "1", "kubectl.kubernetes.io/last-applied-configuration": "{}\n"}


def test_kubectl_set_image_patch_keeps_other_containers() -> None:
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
        "containers": [{"image": "nginx:1.27", "name": "a"}],
    }}}}
    containers = smp(deployment(), patch, DEPLOY_SCHEMA)["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("a", "nginx:1.27"), ("b", "busybox")]
    assert containers[0]["env"][0] == {"name": "X", "value": "1"}


def test_rollout_restart_and_cordon() -> None:
    patch = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}}}}}
    out = smp(deployment(), patch, DEPLOY_SCHEMA)
    assert out["spec"]["template"]["metadata"] == {
        "labels": {"app": "web"},
        "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"},
    }
    node_schema = STRATEGIC_MERGE_KEYS["Node"]
    node = {"spec": {"podCIDRs": ["10.0.0.0/24"]}}
    cordoned = smp(node, {"spec": {"unschedulable": True}}, node_schema)
    assert cordoned == {"spec": {"podCIDRs": ["10.0.0.0/24"], "unschedulable": True}}
    assert smp(cordoned, {"spec": {"unschedulable": None}}, node_schema) == node
    assert smp(node, {"spec": {"podCIDRs": ["fd00::/64"]}}, node_schema)["spec"]["podCIDRs"] == ["fd00::/64", "10.0.0.0/24"]


def test_builtin_merge_keys() -> None:
    out = smp(
        deployment(),
        {"metadata": {"finalizers": ["y"]},
         "spec": {"template": {"spec": {
             "containers": [{"name": "a", "env": [{"name": "Z", "value": "3"}], "ports": [{"containerPort": 8080}],
                             "args": ["--c"]},
                            {"name": "c", "image": "new"}],
             "volumes": [{"name": "w", "configMap": {"name": "cm"}}],
             "tolerations": [{"key": "k2", "operator": "Exists"}],
         }}}},
        DEPLOY_SCHEMA,
    )
    spec = out["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["containers"]] == ["a", "c", "b"]
    assert [e["name"] for e in spec["containers"][0]["env"]] == ["Z", "X", "Y"]
    assert [p["containerPort"] for p in spec["containers"][0]["ports"]] == [8080, 80, 443]
    assert spec["containers"][0]["args"] == ["--c"]  # no merge key: replaced
    assert [v["name"] for v in spec["volumes"]] == ["w", "v"]
    assert spec["tolerations"] == [{"key": "k2", "operator": "Exists"}]  # atomic
    assert out["metadata"]["finalizers"] == ["y", "x"]  # set union


def test_status_conditions_merge_by_type() -> None:
    pod = {"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "PodScheduled", "status": "True"}],
                      "podIPs": [{"ip": "10.0.0.1"}]}}
    out = smp(pod, {"status": {"conditions": [{"type": "Ready", "status": "True"}], "podIPs": [{"ip": "fd00::1"}]}},
              STRATEGIC_MERGE_KEYS["Pod"])
    assert out["status"]["conditions"] == [{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}]
    assert out["status"]["podIPs"] == [{"ip": "fd00::1"}, {"ip": "10.0.0.1"}]


def test_service_ports_and_owner_references() -> None:
    svc = {"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}]},
           "spec": {"ports": [{"port": 80, "targetPort": 8080}]}}
    out = smp(svc, {"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}]},
                    "spec": {"ports": [{"port": 80, "targetPort": 9090}, {"port": 443}]}},
              STRATEGIC_MERGE_KEYS["Service"])
    assert out["spec"]["ports"] == [{"port": 80, "targetPort": 9090}, {"port": 443}]
    assert [r["uid"] for r in out["metadata"]["ownerReferences"]] == ["2", "1"]


def test_new_container_is_stored_without_directives() -> None:
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "n", "image": "i", "$setElementOrder/env": [{"name": "B"}, {"name": "A"}],
         "env": [{"name": "B", "value": None}, {"name": "A", "value": "1"}]},
    ]}}}}
    out = smp(deployment(), patch, DEPLOY_SCHEMA)
    new = out["spec"]["template"]["spec"]["containers"][0]  # new patch items come first
    assert new == {"name": "n", "image": "i", "env": [{"name": "B"}, {"name": "A", "value": "1"}]}


def test_cronjob_and_pdb_tables() -> None:
    cron = STRATEGIC_MERGE_KEYS["CronJob.batch"]
    assert cron["spec.jobTemplate.spec.template.spec.containers"] == {"patchMergeKey": "name", "patchStrategy": "merge"}
    assert cron["spec.jobTemplate.spec.template.spec.containers.env"]["patchMergeKey"] == "name"
    pdb = STRATEGIC_MERGE_KEYS["PodDisruptionBudget.policy"]
    out = smp({"spec": {"selector": {"matchLabels": {"a": "b"}}}}, {"spec": {"selector": {"matchExpressions": []}}}, pdb)
    assert out == {"spec": {"selector": {"matchExpressions": []}}}  # replace strategy on a map


def test_schema_lookup() -> None:
    assert strategic_merge_schema("Deployment", "apps") is DEPLOY_SCHEMA
    assert strategic_merge_schema("Pod") is STRATEGIC_MERGE_KEYS["Pod"]
    assert strategic_merge_schema("Widget", "example.com") is None
    assert METADATA_ONLY_SCHEMA == {
        "metadata.ownerReferences": {"patchMergeKey": "uid", "patchStrategy": "merge"},
        "metadata.finalizers": {"patchStrategy": "merge"},
    }
    for kind in ("Pod", "Deployment.apps", "ReplicaSet.apps", "StatefulSet.apps", "DaemonSet.apps", "Job.batch"):
        table = STRATEGIC_MERGE_KEYS[kind]
        prefix = "spec." if kind == "Pod" else "spec.template.spec."
        assert table[prefix + "containers"]["patchMergeKey"] == "name"
        assert table[prefix + "initContainers"]["patchMergeKey"] == "name"
        assert table[prefix + "ephemeralContainers"]["patchMergeKey"] == "name"
        assert table[prefix + "containers.ports"]["patchMergeKey"] == "containerPort"
        assert table[prefix + "containers.volumeMounts"]["patchMergeKey"] == "mountPath"
        assert table[prefix + "volumes"] == {"patchMergeKey": "name", "patchStrategy": "merge,retainKeys"}
        assert table[prefix + "imagePullSecrets"]["patchMergeKey"] == "name"
        assert table[prefix + "hostAliases"]["patchMergeKey"] == "ip"
        assert prefix + "tolerations" not in table
    with pytest.raises(TypeError):
        STRATEGIC_MERGE_KEYS["Pod"]["x"] = {}  # type: ignore[index]


def test_bad_schema_strategy_is_internal_error() -> None:
    with pytest.raises(StatusError) as info:
        strategic_merge_patch({"a": [1]}, {"a": [2]}, {"a": {"patchStrategy": "merge,replace"}})
    assert info.value.code == 500


@settings(max_examples=60, deadline=None)
@given(json_objects)
def test_smp_with_builtin_schema_never_crashes(patch: dict) -> None:
    try:
        strategic_merge_patch(deployment(), {"spec": {"template": {"spec": patch}}}, DEPLOY_SCHEMA)
    except StatusError as exc:
        assert exc.code in (400, 422)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from("abcdef"), unique=True, max_size=6), st.lists(st.sampled_from("abcdefgh"), max_size=6))
def test_primitive_merge_is_a_union(original: list[str], patch: list[str]) -> None:
    out = smp({"mergingIntList": original}, {"mergingIntList": patch})["mergingIntList"]
    assert set(out) == set(original) | set(patch)
    assert len(out) == len(set(out))
    # the patch's relative order is respected
    positions = [out.index(x) for x in dict.fromkeys(patch)]
    assert positions == sorted(positions)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from("abcdef"), unique=True, max_size=6), st.lists(st.sampled_from("abcdefgh"), unique=True, max_size=6))
def test_keyed_merge_contains_every_key_once(original: list[str], patch: list[str]) -> None:
    doc = {"mergingList": [{"name": n, "from": "doc"} for n in original]}
    out = smp(doc, {"mergingList": [{"name": n, "from": "patch"} for n in patch]})["mergingList"]
    assert sorted(e["name"] for e in out) == sorted(set(original) | set(patch))
    for e in out:
        assert e["from"] == ("patch" if e["name"] in patch else "doc")


def _deep(levels: int) -> dict:
    root = node = {}
    for _ in range(levels):
        node["a"] = {}
        node = node["a"]
    return root


@pytest.mark.parametrize("fn", [lambda p: merge_patch({}, p), lambda p: strategic_merge_patch({}, p, {}),
                                lambda p: json_patch(p, [{"op": "test", "path": "/a", "value": p["a"]}])])
def test_absurd_nesting_is_a_bad_request_not_a_crash(fn: Any) -> None:
    try:
        fn(_deep(5000))
    except StatusError as exc:
        assert exc.code == 400 and "nested too deeply" in exc.message


def test_a_failed_json_patch_test_names_its_path_as_upstream() -> None:
    ops = [{"op": "replace", "path": "/data/a", "value": "2"}, {"op": "test", "path": "/data/a", "value": "2"},
           {"op": "test", "path": "/data/b", "value": 5}]
    with pytest.raises(StatusError) as err:
        json_patch({"data": {"a": "1", "b": 1}}, ops)
    assert err.value.code == 422
    assert err.value.message.endswith("testing value /data/b failed: test failed")
    assert "class" not in err.value.message
