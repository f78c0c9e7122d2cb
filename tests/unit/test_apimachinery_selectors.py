"""Label and field selectors: the labels.Parse grammar, its error messages, matching, printing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apimachinery.errors import StatusError
from apimachinery.selectors import (
    FieldRequirement,
    FieldSelector,
    LabelSelector,
    Operator,
    Requirement,
    escape_field_value,
    field_getter,
    unescape_field_value,
    validate_label_selector,
)


def parse_error(text: str) -> str:
    with pytest.raises(StatusError) as info:
        LabelSelector.parse(text)
    assert info.value.code == 400 and info.value.reason == "BadRequest"
    return info.value.message


# --- parsing --------------------------------------------------------------------------------


def test_full_grammar_from_the_brief() -> None:
    sel = LabelSelector.parse("a=b,c==d,e!=f,g in (x,y),h notin (z),i,!j, k>1, k<5")
    assert [(r.key, r.operator, r.values) for r in sel.requirements] == [
        ("a", Operator.EQUALS, ("b",)),
        ("c", Operator.DOUBLE_EQUALS, ("d",)),
        ("e", Operator.NOT_EQUALS, ("f",)),
        ("g", Operator.IN, ("x", "y")),
        ("h", Operator.NOT_IN, ("z",)),
        ("i", Operator.EXISTS, ()),
        ("j", Operator.DOES_NOT_EXIST, ()),
        ("k", Operator.GREATER_THAN, ("1",)),
        ("k", Operator.LESS_THAN, ("5",)),
    ]
    assert sel.to_string() == "a=b,c==d,e!=f,g in (x,y),h notin (z),i,!j,k>1,k<5"


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("", ""),
        ("   ", ""),
        ("x in (foo,,baz),y,z notin ()", "x in (,baz,foo),y,z notin ()"),
        ("b=1,a=2", "a=2,b=1"),  # sorted by key, as upstream
        ("env in (prod, dev)", "env in (dev,prod)"),
        ("a=", "a="),  # empty value
        ("a==,b!=", "a==,b!="),
        ("x in (a,)", "x in (,a)"),
        ("x in (,a)", "x in (,a)"),
        ("x in (in,notin)", "x in (in,notin)"),  # keywords are values inside parentheses
        ("a=in", "a=in"),
        ("example.com/tier=front", "example.com/tier=front"),
        ("a\t=\tb", "a=b"),
        ("!a,b", "!a,b"),
        ("a notin(b)", "a notin (b)"),
    ],
)
def test_accepted_forms(text: str, canonical: str) -> None:
    assert LabelSelector.parse(text).to_string() == canonical


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        ("a=b,", "found '', expected: identifier after ','"),
        ("a,,b", "found ',', expected: identifier after ','"),
        ("a in x", "unable to parse requirement: found 'x' expected: '('"),
        ("!a=b", "found '=', expected: ',' or 'end of string'"),
        ("a in (b c)", "unable to parse requirement: found 'c', expected: ',' or ')'"),
        ("a in (b", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("a in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier"),
        ("a=(", "unable to parse requirement: found '(', expected: identifier"),
        ("a===b", "unable to parse requirement: found '=', expected: identifier"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        (",a", "found ',', expected: !, identifier, or 'end of string'"),
        ("=a", "found '=', expected: !, identifier, or 'end of string'"),
        ("!", "unable to parse requirement: found '', expected: identifier"),
        ("k>x", "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' operators, the value must be an integer"),
    ],
)
def test_rejected_forms(text: str, message: str) -> None:
    assert parse_error(text) == message


def test_invalid_key_and_value_messages() -> None:
    assert parse_error("A@=b").startswith(
        'unable to parse requirement: <nil>: Invalid value: "A@": name part must consist of alphanumeric characters'
    )
    assert parse_error("a=b@").startswith(
        'unable to parse requirement: values[0][a]: Invalid value: "b@": a valid label must be an empty string'
    )
    assert "must be no more than 63 characters" in parse_error("a=" + "x" * 64)
    # Gt with a negative number: numeric, but "-1" is not a valid label value.
    assert parse_error("k>-1").startswith('unable to parse requirement: values[0][k]: Invalid value: "-1"')


# --- matching -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("", {}, True),
        ("a=b", {"a": "b"}, True),
        ("a=b", {"a": "c"}, False),
        ("a=b", {}, False),
        ("a==b", {"a": "b"}, True),
        ("a!=b", {}, True),  # a missing key satisfies !=
        ("a!=b", {"a": "b"}, False),
        ("a in (x,y)", {"a": "y"}, True),
        ("a in (x,y)", {}, False),
        ("a notin (x)", {}, True),
        ("a notin (x)", {"a": "x"}, False),
        ("a", {"a": ""}, True),
        ("a", {}, False),
        ("!a", {}, True),
        ("!a", {"a": "1"}, False),
        ("k>1", {"k": "2"}, True),
        ("k>1", {"k": "1"}, False),
        ("k>1", {"k": "abc"}, False),
        ("k>1", {}, False),
        ("k<5", {"k": "-3"}, True),
        ("k<5", {"k": "99999999999999999999"}, False),  # beyond int64: not a number
        ("a=", {"a": ""}, True),
        ("a=", {}, False),
        ("a=b,c", {"a": "b"}, False),
        ("a=b,c", {"a": "b", "c": "x"}, True),
    ],
)
def test_matches(text: str, labels: dict[str, str], expected: bool) -> None:
    assert LabelSelector.parse(text).matches(labels) is expected


def test_everything_nothing_and_exact_match() -> None:
    assert LabelSelector.everything().matches({"x": "y"}) and LabelSelector.everything().empty
    assert not LabelSelector.nothing().matches({}) and not LabelSelector.nothing().empty
    assert LabelSelector.nothing().to_string() == ""
    sel = LabelSelector.parse("app=web,tier in (front),x!=y")
    assert sel.requires_exact_match("app") == "web"
    assert sel.requires_exact_match("tier") == "front"
    assert sel.requires_exact_match("x") is None
    assert LabelSelector().matches(None)


def test_from_set_and_add() -> None:
    sel = LabelSelector.from_set({"b": "2", "a": "1"})
    assert sel.to_string() == "a=1,b=2"
    assert sel.matches({"a": "1", "b": "2", "c": "3"}) and not sel.matches({"a": "1"})
    more = sel.add(Requirement.new("c", Operator.EXISTS))
    assert str(more) == "a=1,b=2,c"
    assert LabelSelector.from_set({}).empty


def test_requirement_new_validation() -> None:
    with pytest.raises(StatusError, match="values set can't be empty"):
        Requirement.new("a", Operator.IN, [])
    with pytest.raises(StatusError, match="exact-match compatibility requires one single value"):
        Requirement.new("a", "=", ["x", "y"])
    with pytest.raises(StatusError, match="values set must be empty for exists"):
        Requirement.new("a", "exists", ["x"])
    with pytest.raises(StatusError, match="exactly one value is required"):
        Requirement.new("a", "gt", [])
    with pytest.raises(StatusError) as info:
        Requirement.new("a", "bogus", [])
    assert info.value.message == (
        'operator: Unsupported value: "bogus": supported values: "in", "notin", "=", "==", "!=", "gt", "lt", "exists", "!"'
    )
    with pytest.raises(StatusError) as info:
        Requirement.new("A@", "in", ["b@"])
    assert info.value.message.startswith('[key: Invalid value: "A@"')
    assert "values[0][A@]: Invalid value: \"b@\"" in info.value.message
    assert Requirement.new("a", "in", ["y", "x"]).to_string() == "a in (x,y)"


# --- structured selectors -------------------------------------------------------------------


def test_structured_selector() -> None:
    sel = LabelSelector.from_structured(
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["front", "back"]},
                {"key": "env", "operator": "NotIn", "values": ["dev"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "team", "operator": "Exists"},
            ],
        }
    )
    assert sel.to_string() == "app=web,!canary,env notin (dev),team,tier in (back,front)"
    assert sel.matches({"app": "web", "tier": "front", "team": "a"})
    assert not sel.matches({"app": "web", "tier": "front", "team": "a", "canary": "1"})
    assert LabelSelector.from_structured(None).matches({}) is False  # nil selects nothing
    assert LabelSelector.from_structured({}).matches({"a": "b"}) is True  # empty selects everything
    assert LabelSelector.from_structured({"matchLabels": {}, "matchExpressions": []}).empty


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]},
         '"Gt" is not a valid label selector operator'),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
         "values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty"),
        ({"matchLabels": {"a": "b c"}}, 'values[0][a]: Invalid value: "b c"'),
        ({"matchLabels": []}, "invalid label selector"),
        ({"matchExpressions": ["x"]}, "matchExpressions entries must be objects"),
    ],
)
def test_structured_selector_errors(selector: dict, message: str) -> None:
    with pytest.raises(StatusError) as info:
        LabelSelector.from_structured(selector)
    assert info.value.code == 400
    assert message in info.value.message


def test_validate_label_selector_field_errors() -> None:
    assert validate_label_selector(None) == []
    assert validate_label_selector({"matchLabels": {"app": "web"}}) == []
    errs = validate_label_selector(
        {
            "matchLabels": {"app": "b c"},
            "matchExpressions": [
                {"key": "a", "operator": "In"},
                {"key": "b", "operator": "Exists", "values": ["x"]},
                {"key": "-c", "operator": "Near"},
                "junk",
            ],
        }
    )
    assert [str(e).split(":")[0] for e in errs] == [
        "spec.selector.matchLabels",
        "spec.selector.matchExpressions[0].values",
        "spec.selector.matchExpressions[1].values",
        "spec.selector.matchExpressions[2].operator",
        "spec.selector.matchExpressions[2].key",
        "spec.selector.matchExpressions[3]",
    ]
    assert str(errs[1]) == (
        "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"
    )
    assert validate_label_selector({"matchLabels": "x", "matchExpressions": "y"}, "spec.sel")[0].field == "spec.sel.matchLabels"


# --- field selectors ------------------------------------------------------------------------


def test_field_selector_parse_and_print() -> None:
    sel = FieldSelector.parse("spec.nodeName=node-1,status.phase!=Failed,metadata.name==web")
    assert sel.requirements == (
        FieldRequirement("metadata.name", "web"),
        FieldRequirement("spec.nodeName", "node-1"),
        FieldRequirement("status.phase", "Failed", negated=True),
    )
    assert sel.to_string() == "metadata.name=web,spec.nodeName=node-1,status.phase!=Failed"
    assert sel.fields == {"metadata.name", "spec.nodeName", "status.phase"}
    assert sel.requires_exact_match("metadata.name") == "web"
    assert sel.requires_exact_match("status.phase") is None
    assert FieldSelector.parse("").empty
    assert FieldSelector.parse(",,").empty
    assert FieldSelector.parse("=").empty  # empty field and value: dropped like upstream


def test_field_selector_escaping() -> None:
    sel = FieldSelector.parse(r"metadata.name=a\,b\=c\\d")
    assert sel.requirements[0].value == "a,b=c\\d"
    assert sel.to_string() == r"metadata.name=a\,b\=c\\d"
    assert escape_field_value("a,b=c\\") == r"a\,b\=c\\"
    assert unescape_field_value("plain") == "plain"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
        ("a=b,c", "invalid selector: 'a=b,c'; can't understand 'c'"),
        ("a=b=c", "invalid field selector: unescaped character in value: 61"),
        (r"a=b\x", r"invalid field selector: invalid escape sequence: \x"),
        ("a=b\\", "invalid field selector: invalid escape sequence: \\"),
    ],
)
def test_field_selector_errors(text: str, message: str) -> None:
    with pytest.raises(StatusError) as info:
        FieldSelector.parse(text)
    assert info.value.code == 400 and info.value.message == message


def test_field_selector_matching() -> None:
    pod = {"metadata": {"name": "web", "namespace": "default"}, "spec": {"nodeName": "n1"},
           "status": {"phase": "Running"}, "spec2": {"flag": True, "n": 3, "m": {"x": 1}}}
    get = field_getter(pod)
    assert FieldSelector.parse("spec.nodeName=n1,status.phase=Running").matches(get)
    assert not FieldSelector.parse("spec.nodeName=n2").matches(get)
    assert FieldSelector.parse("status.phase!=Failed").matches(get)
    assert FieldSelector.parse("spec.missing=").matches(get)  # a missing field reads as ""
    assert not FieldSelector.parse("spec.missing!=").matches(get)
    assert get("spec2.flag") == "true" and get("spec2.n") == "3" and get("spec2.m") is None
    assert get("metadata.name.x") is None
    assert FieldSelector().matches(get)
    assert FieldSelector.from_set({"a": "1"}).matches_fields({"a": "1"})


def test_field_selector_supported_fields() -> None:
    sel = FieldSelector.parse("metadata.name=x,spec.bogus=y")
    with pytest.raises(StatusError) as info:
        sel.check_fields({"metadata.name", "metadata.namespace"})
    assert info.value.code == 400 and info.value.message == "field label not supported: spec.bogus"
    FieldSelector.parse("metadata.name=x").check_fields({"metadata.name"})


# --- property tests ---------------------------------------------------------------------------

_names = st.from_regex(r"[a-z0-9]([-a-z0-9_.]{0,10}[a-z0-9])?", fullmatch=True)
_keys = st.one_of(_names, st.builds(lambda p, n: f"{p}.io/{n}", st.from_regex(r"[a-z]{1,8}", fullmatch=True), _names))
_values = st.one_of(st.just(""), _names).filter(lambda v: v not in ("in", "notin"))
_requirement = st.one_of(
    st.builds(lambda k, op, v: Requirement(k, op, (v,)), _keys,
              st.sampled_from([Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.NOT_EQUALS]), _values),
    st.builds(lambda k, op, vs: Requirement(k, op, tuple(sorted(set(vs)))), _keys,
              st.sampled_from([Operator.IN, Operator.NOT_IN]), st.lists(_values, min_size=1, max_size=4)),
    st.builds(lambda k, op: Requirement(k, op, ()), _keys, st.sampled_from([Operator.EXISTS, Operator.DOES_NOT_EXIST])),
    st.builds(lambda k, op, n: Requirement(k, op, (str(n),)), _keys,
              st.sampled_from([Operator.GREATER_THAN, Operator.LESS_THAN]), st.integers(0, 10**6)),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_requirement, max_size=6))
def test_label_selector_string_round_trip(reqs: list[Requirement]) -> None:
    sel = LabelSelector(tuple(sorted(reqs, key=lambda r: r.key)))
    text = sel.to_string()
    again = LabelSelector.parse(text)
    assert again.to_string() == text
    assert again == sel


@settings(max_examples=60, deadline=None)
@given(st.lists(_requirement, max_size=4), st.dictionaries(_keys, _values, max_size=5))
def test_round_trip_preserves_matching(reqs: list[Requirement], labels: dict[str, str]) -> None:
    sel = LabelSelector(tuple(reqs))
    assert LabelSelector.parse(sel.to_string()).matches(labels) == sel.matches(labels)


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=40))
def test_garbage_never_crashes(text: str) -> None:
    try:
        LabelSelector.parse(text)
    except StatusError as exc:
        assert exc.code == 400
    try:
        FieldSelector.parse(text)
    except StatusError as exc:
        assert exc.code == 400


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-z.]{1,10}", fullmatch=True), st.text(max_size=10), max_size=4))
def test_field_selector_round_trip(fields: dict[str, str]) -> None:
    sel = FieldSelector.from_set(fields)
    again = FieldSelector.parse(sel.to_string())
    assert again.matches_fields(fields)
    assert dict((r.field, r.value) for r in again.requirements) == {k: v for k, v in fields.items()}
