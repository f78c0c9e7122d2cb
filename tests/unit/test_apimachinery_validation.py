"""Name/label/annotation validation messages and field errors, worded like Kubernetes 1.32."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apimachinery import errors, validation
from apimachinery.validation import OMIT_VALUE, ErrorType, FieldError, Path

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
    "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
QNAME_NAME_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
    "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
    "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


@pytest.mark.parametrize("value", ["a", "abc", "a-b", "0", "a.b.c", "my-app.example.com", "a" * 253])
def test_dns1123_subdomain_accepts(value: str) -> None:
    assert validation.is_dns1123_subdomain(value) == []


@pytest.mark.parametrize("value", ["", "A", "X_Y", "-a", "a-", "a..b", ".a", "a.", "a b", "a\n", "é"])
def test_dns1123_subdomain_rejects(value: str) -> None:
    assert validation.is_dns1123_subdomain(value) == [SUBDOMAIN_MSG]


def test_dns1123_subdomain_length() -> None:
    assert validation.is_dns1123_subdomain("a" * 254) == ["must be no more than 253 characters"]


def test_dns1123_label() -> None:
    assert validation.is_dns1123_label("my-name") == []
    assert validation.is_dns1123_label("a" * 63) == []
    assert validation.is_dns1123_label("a" * 64) == ["must be no more than 63 characters"]
    assert validation.is_dns1123_label("a.b") == ["must not contain dots"]
    assert validation.is_dns1123_label("Upper") == [LABEL_MSG]
    assert validation.is_dns1123_label("") == [LABEL_MSG]


def test_dns1035_label() -> None:
    assert validation.is_dns1035_label("web") == []
    assert validation.is_dns1035_label("1web") == [DNS1035_MSG]
    assert validation.is_dns1035_label("a" * 64) == ["must be no more than 63 characters"]


def test_qualified_name() -> None:
    assert validation.is_qualified_name("app") == []
    assert validation.is_qualified_name("kubernetes.io/metadata.name") == []
    assert validation.is_qualified_name("My_Name.1") == []
    assert validation.is_qualified_name("a" * 63) == []
    assert validation.is_qualified_name("a" * 64) == ["name part must be no more than 63 characters"]
    assert validation.is_qualified_name("-a") == [QNAME_NAME_MSG]
    assert validation.is_qualified_name("") == ["name part must be non-empty", QNAME_NAME_MSG]
    assert validation.is_qualified_name("/a") == ["prefix part must be non-empty"]
    assert validation.is_qualified_name("Bad_Prefix/a") == ["prefix part " + SUBDOMAIN_MSG]
    assert validation.is_qualified_name("a/b/c") == [
        "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and "
        "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
        "for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain "
        "prefix and '/' (e.g. 'example.com/MyName')"
    ]
    assert validation.is_label_key is validation.is_qualified_name


def test_label_value() -> None:
    assert validation.is_valid_label_value("") == []
    assert validation.is_valid_label_value("v1.2_3-x") == []
    assert validation.is_valid_label_value("a b") == [LABEL_VALUE_MSG]
    assert validation.is_valid_label_value("a" * 64) == ["must be no more than 63 characters"]
    # Lengths are bytes, as in Go: 32 two-byte characters are 64 bytes.
    assert "must be no more than 63 characters" in validation.is_valid_label_value("é" * 32)


def test_ports_and_misc_formats() -> None:
    assert validation.is_valid_port_num(80) == []
    assert validation.is_valid_port_num(0) == ["must be between 1 and 65535, inclusive"]
    assert validation.is_valid_port_name("http") == []
    assert validation.is_valid_port_name("-a--") == [
        "must not contain consecutive hyphens",
        "must not begin or end with a hyphen",
    ]
    assert validation.is_valid_port_name("123") == ["must contain at least one letter (a-z)"]
    assert validation.is_valid_port_name("a" * 16) == ["must be no more than 15 characters"]
    assert validation.is_valid_port_name("A") == [
        "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
        "must contain at least one letter (a-z)",
    ]
    assert validation.is_config_map_key("app.conf") == []
    assert validation.is_config_map_key("..data") == ["must not start with '..'"]
    assert validation.is_config_map_key(".") == ["must not be '.'"]
    assert validation.is_config_map_key("a/b")[0].startswith("a valid config key must consist")
    assert validation.is_env_var_name("MY_VAR") == []
    assert validation.is_env_var_name("1X")[0].startswith("a valid environment variable name")
    assert validation.is_valid_path_segment_name("..") == ["may not be '..'"]
    assert validation.is_valid_path_segment_name("a/b%c") == ["may not contain '/'", "may not contain '%'"]
    assert validation.is_valid_path_segment_name("..", prefix=True) == []


def test_generate_name_prefixes_mask_the_trailing_dash() -> None:
    assert validation.mask_trailing_dash("web-") == "wea"
    assert validation.mask_trailing_dash("-") == "-"
    assert validation.name_is_dns_subdomain("web-", True) == []
    assert validation.name_is_dns_subdomain("web-", False) == [SUBDOMAIN_MSG]
    assert validation.name_is_dns_label("ns-", True) == []
    assert validation.name_is_dns1035_label("svc-", True) == []


# --- FieldError ----------------------------------------------------------------------------


def test_field_error_rendering() -> None:
    assert str(FieldError.invalid("metadata.name", "X_Y", "bad")) == 'metadata.name: Invalid value: "X_Y": bad'
    assert str(FieldError.required("spec.selector")) == "spec.selector: Required value"
    assert str(FieldError.required("metadata.name", "name or generateName is required")) == (
        "metadata.name: Required value: name or generateName is required"
    )
    assert str(FieldError.forbidden("metadata.namespace", "not allowed on this type")) == (
        "metadata.namespace: Forbidden: not allowed on this type"
    )
    assert str(FieldError.duplicate("spec.ports[1].port", 80)) == "spec.ports[1].port: Duplicate value: 80"
    assert str(FieldError.not_found("spec.x", "y")) == 'spec.x: Not found: "y"'
    assert str(FieldError.not_supported("spec.restartPolicy", "Sometimes", ["Always", "OnFailure", "Never"])) == (
        'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"'
    )
    assert str(FieldError.too_long("metadata.annotations", 262144)) == (
        "metadata.annotations: Too long: may not be more than 262144 bytes"
    )
    assert str(FieldError.too_long("x", -1)) == "x: Too long: value is too long"
    assert str(FieldError.too_many("spec.items", 5, 3)) == "spec.items: Too many: 5: must have at most 3 items"
    assert str(FieldError.too_many("spec.items", -1, -1)) == "spec.items: Too many: has too many items"
    assert str(FieldError.internal("spec", "boom")) == "spec: Internal error: boom"
    assert str(FieldError.invalid("spec.replicas", -1, "must be greater than or equal to 0")) == (
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0"
    )
    assert str(FieldError.invalid("spec.paused", True)) == "spec.paused: Invalid value: true"
    assert str(FieldError.invalid("x", None)) == "x: Invalid value: null"
    assert str(FieldError.invalid("x", ["a", 1])) == 'x: Invalid value: ["a",1]'
    assert str(FieldError.invalid("x", 1.5)) == "x: Invalid value: 1.5"
    assert str(FieldError(ErrorType.INVALID, "x", OMIT_VALUE, "d")) == "x: Invalid value: d"
    assert str(FieldError.type_invalid("x", "1", "must be an integer")) == 'x: Invalid value: "1": must be an integer'


def test_field_error_to_cause() -> None:
    cause = FieldError.invalid("metadata.name", "X_Y", SUBDOMAIN_MSG).to_cause()
    assert cause.to_dict() == {
        "reason": "FieldValueInvalid",
        "message": 'Invalid value: "X_Y": ' + SUBDOMAIN_MSG,
        "field": "metadata.name",
    }


def test_invalid_status_from_validation_matches_the_brief() -> None:
    errs = [FieldError.invalid("metadata.name", "X_Y", m) for m in validation.is_dns1123_subdomain("X_Y")]
    err = errors.invalid(kind="Pod", name="X_Y", causes=errs)
    assert err.message == 'Pod "X_Y" is invalid: metadata.name: Invalid value: "X_Y": ' + SUBDOMAIN_MSG


def test_error_type_labels() -> None:
    assert ErrorType.REQUIRED.value == "FieldValueRequired"
    assert ErrorType.TOO_MANY.label == "Too many"
    assert {t.label for t in ErrorType} >= {"Invalid value", "Duplicate value", "Unsupported value"}


def test_path() -> None:
    p = Path.of("spec").child("containers").index(0).child("env").key("X")
    assert str(p) == "spec.containers[0].env[X]"
    assert str(Path.of("metadata", "labels")) == "metadata.labels"
    assert str(Path()) == ""
    assert str(FieldError.required(Path.of("spec", "selector"))) == "spec.selector: Required value"


# --- ObjectMeta validation -------------------------------------------------------------------


def test_validate_labels() -> None:
    assert validation.validate_labels({"app": "web", "example.com/tier": ""}) == []
    errs = validation.validate_labels({"bad key!": "v", "ok": "bad value!"})
    assert [str(e) for e in errs] == [
        'metadata.labels: Invalid value: "bad key!": ' + QNAME_NAME_MSG,
        'metadata.labels: Invalid value: "bad value!": ' + LABEL_VALUE_MSG,
    ]
    errs = validation.validate_labels({"a": 1})
    assert errs[0].type is ErrorType.TYPE_INVALID and errs[0].field == "metadata.labels[a]"


def test_validate_annotations_size_and_keys() -> None:
    assert validation.validate_annotations({"Example.COM/Key": "x" * 1000}) == []  # case-insensitive keys
    big = {"a": "x" * (256 * 1024)}
    errs = validation.validate_annotations(big)
    assert [str(e) for e in errs] == ["metadata.annotations: Too long: may not be more than 262144 bytes"]
    exactly = {"a": "x" * (256 * 1024 - 1)}
    assert validation.annotations_size(exactly) == 256 * 1024
    assert validation.validate_annotations(exactly) == []
    assert validation.validate_annotations({"bad key": "v"})[0].bad_value == "bad key"
    assert validation.validate_annotations({"k": 3})[0].type is ErrorType.TYPE_INVALID


def test_validate_finalizers() -> None:
    assert validation.validate_finalizers(["kubernetes", "example.com/cleanup"]) == []
    errs = validation.validate_finalizers(["orphan", "foregroundDeletion"])
    assert str(errs[-1]) == (
        'metadata.finalizers: Invalid value: ["orphan","foregroundDeletion"]: '
        "finalizer orphan and foregroundDeletion cannot be both set"
    )
    assert validation.validate_finalizers(["bad finalizer"])[0].field == "metadata.finalizers"


def test_validate_owner_references() -> None:
    good = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u", "controller": True}
    assert validation.validate_owner_references([good]) == []
    errs = validation.validate_owner_references([{"apiVersion": "apps/", "kind": "", "name": "", "uid": ""}])
    assert [str(e) for e in errs] == [
        'metadata.ownerReferences.apiVersion: Invalid value: "apps/": version must not be empty',
        'metadata.ownerReferences.kind: Invalid value: "": kind must not be empty',
        'metadata.ownerReferences.name: Invalid value: "": name must not be empty',
        'metadata.ownerReferences.uid: Invalid value: "": uid must not be empty',
    ]
    two = [good, dict(good, name="rs2", uid="u2")]
    msg = str(validation.validate_owner_references(two)[0])
    assert 'Only one reference can have Controller set to true. Found "true" in references for ReplicaSet/rs and ReplicaSet/rs2' in msg
    event = {"apiVersion": "v1", "kind": "Event", "name": "e", "uid": "u"}
    assert "/v1, Kind=Event is disallowed from being an owner" in str(validation.validate_owner_references([event])[0])


def test_validate_object_meta() -> None:
    assert validation.validate_object_meta({"name": "web", "namespace": "default"}, namespaced=True) == []
    errs = validation.validate_object_meta({}, namespaced=True)
    assert [str(e) for e in errs] == [
        "metadata.name: Required value: name or generateName is required",
        "metadata.namespace: Required value",
    ]
    errs = validation.validate_object_meta({"name": "n1", "namespace": "x"}, namespaced=False)
    assert [str(e) for e in errs] == ["metadata.namespace: Forbidden: not allowed on this type"]
    errs = validation.validate_object_meta(
        {"generateName": "Web-", "name": "X_Y", "namespace": "Bad", "generation": -1, "labels": "x"},
        namespaced=True,
    )
    fields = [e.field for e in errs]
    assert fields == [
        "metadata.generateName",
        "metadata.name",
        "metadata.namespace",
        "metadata.generation",
        "metadata.labels",
    ]
    errs = validation.validate_object_meta(
        {"name": "svc", "labels": {"a": "b"}, "annotations": {"k": "v"}, "finalizers": ["a/b"],
         "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "n", "uid": "u"}]},
        namespaced=False,
        name_fn=validation.name_is_dns1035_label,
    )
    assert errs == []


@settings(max_examples=60, deadline=None)
@given(st.from_regex(r"[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?", fullmatch=True))
def test_every_generated_label_is_valid(value: str) -> None:
    assert validation.is_dns1123_label(value) == []
    assert validation.is_dns1123_subdomain(value) == []
    assert validation.is_valid_label_value(value) == []


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=80))
def test_validators_never_raise(value: str) -> None:
    for fn in (
        validation.is_dns1123_label,
        validation.is_dns1123_subdomain,
        validation.is_dns1035_label,
        validation.is_qualified_name,
        validation.is_valid_label_value,
        validation.is_config_map_key,
        validation.is_env_var_name,
        validation.is_valid_port_name,
    ):
        result = fn(value)
        assert isinstance(result, list) and all(isinstance(m, str) for m in result)
