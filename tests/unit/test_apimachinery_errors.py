"""metav1.Status errors: shapes, codes, reasons and upstream message formats."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apimachinery import errors
from apimachinery.errors import StatusCause, StatusDetails, StatusError
from apimachinery.gofmt import go_float, go_quote, go_value
from apimachinery.validation import FieldError


def test_not_found_shape_is_exactly_the_apiserver_body() -> None:
    err = errors.not_found(resource="pods", name="nosuch")
    assert err.code == 404
    assert str(err) == 'pods "nosuch" not found'
    body = err.to_status()
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods "nosuch" not found',
        "reason": "NotFound",
        "details": {"name": "nosuch", "kind": "pods"},
        "code": 404,
    }
    # Key order matches Go's struct order (clients don't care, humans diffing output do).
    assert list(body) == ["kind", "apiVersion", "metadata", "status", "message", "reason", "details", "code"]


def test_group_qualified_resource_in_messages() -> None:
    err = errors.not_found(resource="deployments", group="apps", name="x")
    assert err.message == 'deployments.apps "x" not found'
    assert err.to_status()["details"] == {"name": "x", "group": "apps", "kind": "deployments"}


def test_already_exists_and_conflict() -> None:
    err = errors.already_exists(resource="namespaces", name="team-a")
    assert (err.code, err.reason, err.message) == (409, "AlreadyExists", 'namespaces "team-a" already exists')
    err = errors.conflict(resource="deployments", group="apps", name="web")
    assert (err.code, err.reason) == (409, "Conflict")
    assert err.message == (
        'Operation cannot be fulfilled on deployments.apps "web": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    err = errors.conflict(resource="pods", name="p", detail="Precondition failed: UID in precondition: a, UID in object meta: b")
    assert err.message.endswith(": Precondition failed: UID in precondition: a, UID in object meta: b")


def test_generate_name_conflict_carries_retry_after() -> None:
    err = errors.generate_name_conflict(resource="pods", name="web-abcde", retry_after_seconds=2)
    assert err.reason == "AlreadyExists"
    assert err.message.endswith("the server was not able to generate a unique name for the object")
    assert err.to_status()["details"]["retryAfterSeconds"] == 2
    assert err.retry_after_seconds == 2


def test_invalid_single_cause() -> None:
    cause = FieldError.invalid("metadata.name", "X_Y", "a lowercase RFC 1123 subdomain must ...")
    err = errors.invalid(kind="Pod", name="X_Y", causes=[cause])
    assert err.code == 422 and err.reason == "Invalid"
    assert err.message == 'Pod "X_Y" is invalid: metadata.name: Invalid value: "X_Y": a lowercase RFC 1123 subdomain must ...'
    assert err.to_status()["details"] == {
        "name": "X_Y",
        "kind": "Pod",
        "causes": [
            {
                "reason": "FieldValueInvalid",
                "message": 'Invalid value: "X_Y": a lowercase RFC 1123 subdomain must ...',
                "field": "metadata.name",
            }
        ],
    }


def test_invalid_aggregates_and_deduplicates_causes() -> None:
    a = FieldError.required("spec.selector")
    b = FieldError.required("spec.template")
    err = errors.invalid(kind="Deployment", group="apps", name="bad", causes=[a, b, a])
    assert err.message == 'Deployment.apps "bad" is invalid: [spec.selector: Required value, spec.template: Required value]'
    # Causes are not deduplicated, only the message is (upstream does the same).
    assert len(err.to_status()["details"]["causes"]) == 3
    assert err.to_status()["details"]["group"] == "apps"


def test_invalid_without_causes() -> None:
    assert errors.invalid(kind="Pod", name="p", causes=[]).message == 'Pod "p" is invalid'


def test_kubectl_documented_invalid_example() -> None:
    err = errors.invalid(kind="Deployment", name="bad", causes=[FieldError.required("spec.selector")])
    assert err.message == 'Deployment "bad" is invalid: spec.selector: Required value'
    assert err.to_status()["details"]["causes"] == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.selector"}
    ]


def test_bad_request_has_no_details() -> None:
    body = errors.bad_request("the namespace of the provided object does not match the namespace sent on the request").to_status()
    assert body["code"] == 400 and body["reason"] == "BadRequest"
    assert "details" not in body


def test_unauthorized() -> None:
    assert errors.unauthorized().to_status() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }
    assert errors.unauthorized("").message == "not authorized"


def test_forbidden_messages() -> None:
    err = errors.forbidden(user="bob", verb="get", resource="pods", name="x", namespace="default")
    assert err.code == 403 and err.reason == "Forbidden"
    assert err.message == (
        'pods "x" is forbidden: User "bob" cannot get resource "pods" in API group "" in the namespace "default"'
    )
    err = errors.forbidden(user="bob", verb="list", resource="pods", namespace="default")
    assert err.message == 'pods is forbidden: User "bob" cannot list resource "pods" in API group "" in the namespace "default"'
    err = errors.forbidden(user="bob", verb="list", resource="nodes")
    assert err.message == 'nodes is forbidden: User "bob" cannot list resource "nodes" in API group "" at the cluster scope'
    err = errors.forbidden(
        user="system:serviceaccount:a:b", verb="update", resource="deployments", group="apps",
        subresource="scale", name="web", namespace="a", reason="no RBAC policy matched",
    )
    assert err.message == (
        'deployments.apps "web" is forbidden: User "system:serviceaccount:a:b" cannot update resource '
        '"deployments/scale" in API group "apps" in the namespace "a": no RBAC policy matched'
    )
    assert errors.forbidden_path(user="bob", verb="get", path="/metrics").message == (
        'forbidden: User "bob" cannot get path "/metrics"'
    )


def test_forbidden_escapes_html() -> None:
    err = errors.forbidden(user="<script>", verb="get", resource="pods", namespace="a")
    assert "<script>" not in err.message and "&lt;script&gt;" in err.message


@pytest.mark.parametrize(
    ("err", "code", "reason", "message"),
    [
        (errors.method_not_allowed(resource="pods/log", action="watch"), 405, "MethodNotAllowed",
         'watch is not supported on resources of kind "pods/log"'),
        (errors.not_acceptable(["application/json"]), 406, "NotAcceptable",
         "only the following media types are accepted: application/json"),
        (errors.gone("gone"), 410, "Gone", "gone"),
        (errors.expired(resource_version=5, compacted=10), 410, "Expired", "too old resource version: 5 (10)"),
        (errors.expired("The resourceVersion for the provided watch is too old."), 410, "Expired",
         "The resourceVersion for the provided watch is too old."),
        (errors.request_entity_too_large("limit is 3145728"), 413, "RequestEntityTooLarge",
         "Request entity too large: limit is 3145728"),
        (errors.unsupported_media_type(["application/json-patch+json", "application/merge-patch+json"]), 415,
         "UnsupportedMediaType",
         "the body of the request was in an unknown format - accepted media types include: "
         "application/json-patch+json, application/merge-patch+json"),
        (errors.too_many_requests("storage is (re)initializing", 1), 429, "TooManyRequests",
         "storage is (re)initializing"),
        (errors.internal_error(RuntimeError("boom")), 500, "InternalError", "Internal error occurred: boom"),
        (errors.server_timeout(resource="pods", operation="create"), 500, "ServerTimeout",
         "The create operation against pods could not be completed at this time, please try again."),
        (errors.service_unavailable("no quorum"), 503, "ServiceUnavailable", "no quorum"),
        (errors.timeout("request did not complete within requested timeout"), 504, "Timeout",
         "Timeout: request did not complete within requested timeout"),
        (errors.not_found_url(), 404, "NotFound", "the server could not find the requested resource"),
    ],
)
def test_codes_reasons_messages(err: StatusError, code: int, reason: str, message: str) -> None:
    assert (err.code, err.reason, err.message) == (code, reason, message)
    body = err.to_status()
    assert body["code"] == code and body["reason"] == reason and body["status"] == "Failure"
    json.dumps(body)  # always serialisable


def test_too_many_requests_retry_after_detail() -> None:
    err = errors.too_many_requests("slow down", 7)
    assert err.to_status()["details"] == {"retryAfterSeconds": 7}
    assert err.retry_after_seconds == 7
    assert errors.bad_request("x").retry_after_seconds == 0


def test_internal_error_cause() -> None:
    body = errors.internal_error("db exploded").to_status()
    assert body["details"] == {"causes": [{"message": "db exploded"}]}


def test_expired_continue_token_and_argument_check() -> None:
    body = errors.expired("too old", continue_token="abc").to_status()
    assert body["metadata"] == {"continue": "abc"}
    with pytest.raises(ValueError):
        errors.expired()


def test_not_found_url_has_empty_details() -> None:
    assert errors.not_found_url().to_status()["details"] == {}


def test_generic_error() -> None:
    err = errors.generic_error(422, "doc is missing path")
    assert (err.code, err.reason) == (422, "Invalid")
    assert err.message == "the server rejected our request due to an error in our request: doc is missing path"
    assert errors.generic_error(502).reason == "InternalError"
    assert errors.generic_error(418).message == "the server responded with the status code 418 but did not return more information"


def test_success_status() -> None:
    assert errors.success_status(name="solo", kind="pods", uid="u1") == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": "solo", "kind": "pods", "uid": "u1"},
    }
    assert errors.success_status(code=201)["code"] == 201
    assert "details" not in errors.success_status()


def test_round_trip_from_status() -> None:
    original = errors.invalid(kind="Pod", name="p", causes=[FieldError.required("spec.containers")])
    again = StatusError.from_status(json.loads(json.dumps(original.to_status())))
    assert again.to_status() == original.to_status()
    assert repr(again).startswith("StatusError(code=422")
    fallback = StatusError.from_status({"message": "x"}, http_code=503)
    assert fallback.code == 503 and fallback.details is None


def test_status_error_is_an_exception() -> None:
    with pytest.raises(StatusError) as info:
        raise errors.not_found(resource="pods", name="x")
    assert info.value.code == 404


def test_details_and_causes_omit_empty_fields() -> None:
    assert StatusDetails().to_dict() == {}
    assert StatusCause().to_dict() == {}
    assert StatusDetails.from_dict({"causes": [{"reason": "R"}, "junk"]}).causes == (StatusCause(type="R"),)


def test_qualified_resource_and_aggregate() -> None:
    assert errors.qualified_resource("pods") == "pods"
    assert errors.qualified_resource("leases", "coordination.k8s.io") == "leases.coordination.k8s.io"
    assert errors.aggregate_messages(["a"]) == "a"
    assert errors.aggregate_messages(["a", "b", "a"]) == "[a, b]"
    assert errors.aggregate_messages(["a", "a"]) == "a"


# --- Go formatting helpers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("x", '"x"'),
        ('a"b', '"a\\"b"'),
        ("back\\slash", '"back\\\\slash"'),
        ("tab\tnl\n", '"tab\\tnl\\n"'),
        ("\x01", '"\\x01"'),
        ("\x7f", '"\\x7f"'),
        ("héllo", '"héllo"'),
        ("\u200b", '"\\u200b"'),
        ("\U000e0001", '"\\U000e0001"'),
    ],
)
def test_go_quote(text: str, quoted: str) -> None:
    assert go_quote(text) == quoted


@pytest.mark.parametrize(
    ("value", "text"),
    [(2.0, "2"), (2.5, "2.5"), (1e6, "1e+06"), (123456.0, "123456"), (1234567.0, "1.234567e+06"),
     (0.0001, "0.0001"), (1e-05, "1e-05"), (-3.25, "-3.25"), (0.0, "0"), (-0.0, "-0"), (1e21, "1e+21"),
     (float("inf"), "+Inf"), (float("-inf"), "-Inf"), (float("nan"), "NaN")],
)
def test_go_float(value: float, text: str) -> None:
    assert go_float(value) == text


def test_go_value() -> None:
    assert go_value(True) == "true"
    assert go_value(3) == "3"
    assert go_value("s") == '"s"'
    assert go_value(None) == "null"
    assert go_value({"b": 1, "a": [1, "x"]}) == '{"a":[1,"x"],"b":1}'


@settings(max_examples=60, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_go_float_round_trips(value: float) -> None:
    assert float(go_float(value)) == value


@settings(max_examples=60, deadline=None)
@given(st.text())
def test_go_quote_is_a_valid_quoted_string(text: str) -> None:
    quoted = go_quote(text)
    assert quoted.startswith('"') and quoted.endswith('"')
    assert "\n" not in quoted
