"""Kubernetes ``metav1.Status`` errors.

Every error a client sees is a ``Status`` object; kubectl prints ``Error from server (<reason>):
<message>`` and client libraries dispatch on ``code``/``reason``. The constructors below build the
same code, reason, message and details as ``k8s.io/apimachinery/pkg/api/errors`` (and the
apiserver's authorization / negotiation helpers), so the strings match a real cluster.

``StatusError`` is an exception: raise it anywhere below the HTTP layer, and the handler turns it
into a response with ``to_status()`` and ``code``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

from .gofmt import go_quote

__all__ = [
    "StatusCause",
    "StatusDetails",
    "StatusError",
    "FieldErrorLike",
    "qualified_resource",
    "success_status",
    "not_found",
    "not_found_url",
    "already_exists",
    "generate_name_conflict",
    "conflict",
    "invalid",
    "bad_request",
    "unauthorized",
    "forbidden",
    "forbidden_reason",
    "forbidden_path",
    "method_not_allowed",
    "not_acceptable",
    "gone",
    "expired",
    "request_entity_too_large",
    "unsupported_media_type",
    "too_many_requests",
    "internal_error",
    "server_timeout",
    "service_unavailable",
    "timeout",
    "generic_error",
    "aggregate_messages",
    "CONFLICT_MODIFIED",
]

# metav1.StatusReason values.
REASON_UNKNOWN = ""
REASON_UNAUTHORIZED = "Unauthorized"
REASON_FORBIDDEN = "Forbidden"
REASON_NOT_FOUND = "NotFound"
REASON_ALREADY_EXISTS = "AlreadyExists"
REASON_CONFLICT = "Conflict"
REASON_GONE = "Gone"
REASON_INVALID = "Invalid"
REASON_SERVER_TIMEOUT = "ServerTimeout"
REASON_TIMEOUT = "Timeout"
REASON_TOO_MANY_REQUESTS = "TooManyRequests"
REASON_BAD_REQUEST = "BadRequest"
REASON_METHOD_NOT_ALLOWED = "MethodNotAllowed"
REASON_NOT_ACCEPTABLE = "NotAcceptable"
REASON_REQUEST_ENTITY_TOO_LARGE = "RequestEntityTooLarge"
REASON_UNSUPPORTED_MEDIA_TYPE = "UnsupportedMediaType"
REASON_INTERNAL_ERROR = "InternalError"
REASON_EXPIRED = "Expired"
REASON_SERVICE_UNAVAILABLE = "ServiceUnavailable"

CONFLICT_MODIFIED = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


@dataclass(frozen=True, slots=True)
class StatusCause:
    """One entry of ``details.causes``; ``type`` is serialised as ``reason`` (Go's json tag)."""

    type: str = ""
    message: str = ""
    field: str = ""

    def to_dict(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.type:
            out["reason"] = self.type
        if self.message:
            out["message"] = self.message
        if self.field:
            out["field"] = self.field
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StatusCause:
        return cls(
            type=str(data.get("reason") or ""),
            message=str(data.get("message") or ""),
            field=str(data.get("field") or ""),
        )


@dataclass(frozen=True, slots=True)
class StatusDetails:
    """``metav1.StatusDetails``. ``kind`` holds the *resource* for most errors, as upstream does."""

    name: str = ""
    group: str = ""
    kind: str = ""
    uid: str = ""
    causes: tuple[StatusCause, ...] = ()
    retry_after_seconds: int = 0

    def to_dict(self) -> dict[str, Any]:
        # Key order and omitempty behaviour follow the Go struct's JSON encoding.
        out: dict[str, Any] = {}
        if self.name:
            out["name"] = self.name
        if self.group:
            out["group"] = self.group
        if self.kind:
            out["kind"] = self.kind
        if self.uid:
            out["uid"] = self.uid
        if self.causes:
            out["causes"] = [c.to_dict() for c in self.causes]
        if self.retry_after_seconds:
            out["retryAfterSeconds"] = self.retry_after_seconds
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StatusDetails:
        causes = data.get("causes") or ()
        return cls(
            name=str(data.get("name") or ""),
            group=str(data.get("group") or ""),
            kind=str(data.get("kind") or ""),
            uid=str(data.get("uid") or ""),
            causes=tuple(StatusCause.from_dict(c) for c in causes if isinstance(c, Mapping)),
            retry_after_seconds=int(data.get("retryAfterSeconds") or 0),
        )


class FieldErrorLike(Protocol):
    """What ``invalid()`` needs from a field error (``validation.FieldError`` implements it)."""

    @property
    def field(self) -> str: ...

    def error_body(self) -> str: ...

    def to_cause(self) -> StatusCause: ...


class StatusError(Exception):
    """An error that is sent to the client as a ``metav1.Status`` with HTTP status ``code``."""

    def __init__(
        self,
        *,
        code: int,
        reason: str,
        message: str,
        details: StatusDetails | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        # ListMeta of the Status; only ever non-empty for an expired ``continue`` token.
        self.metadata: dict[str, Any] = dict(metadata or {})

    def __repr__(self) -> str:
        return f"StatusError(code={self.code}, reason={self.reason!r}, message={self.message!r})"

    @property
    def retry_after_seconds(self) -> int:
        """Value for a ``Retry-After`` header (0 means none)."""
        return self.details.retry_after_seconds if self.details else 0

    def to_status(self) -> dict[str, Any]:
        """The JSON body the apiserver sends, in the apiserver's key order."""
        out: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": dict(self.metadata),
            "status": "Failure",
        }
        if self.message:
            out["message"] = self.message
        if self.reason:
            out["reason"] = self.reason
        if self.details is not None:
            out["details"] = self.details.to_dict()
        if self.code:
            out["code"] = self.code
        return out

    @classmethod
    def from_status(cls, status: Mapping[str, Any], *, http_code: int = 0) -> StatusError:
        """Rebuild an error from a Status body received over the wire (client side)."""
        details = status.get("details")
        return cls(
            code=int(status.get("code") or http_code or 500),
            reason=str(status.get("reason") or ""),
            message=str(status.get("message") or ""),
            details=StatusDetails.from_dict(details) if isinstance(details, Mapping) else None,
            metadata=status.get("metadata") if isinstance(status.get("metadata"), Mapping) else None,
        )


def qualified_resource(resource: str, group: str = "") -> str:
    """``schema.GroupResource.String()``: ``pods``, ``deployments.apps``."""
    return f"{resource}.{group}" if group else resource


def success_status(
    *, name: str = "", kind: str = "", group: str = "", uid: str = "", code: int = 0
) -> dict[str, Any]:
    """A ``status: Success`` body, as returned by DELETE when no object is sent back."""
    out: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
    details = StatusDetails(name=name, group=group, kind=kind, uid=uid).to_dict()
    if details:
        out["details"] = details
    if code:
        out["code"] = code
    return out


def _resource_details(resource: str, group: str, name: str, retry: int = 0) -> StatusDetails:
    return StatusDetails(name=name, group=group, kind=resource, retry_after_seconds=retry)


def not_found(*, resource: str, name: str, group: str = "") -> StatusError:
    """404 NotFound: ``pods "x" not found`` / ``deployments.apps "x" not found``."""
    return StatusError(
        code=404,
        reason=REASON_NOT_FOUND,
        message=f"{qualified_resource(resource, group)} {go_quote(name)} not found",
        details=_resource_details(resource, group, name),
    )


def not_found_url() -> StatusError:
    """404 for a path that names no known resource (what the apiserver's mux answers)."""
    return StatusError(
        code=404,
        reason=REASON_NOT_FOUND,
        message="the server could not find the requested resource",
        details=StatusDetails(),
    )


def already_exists(*, resource: str, name: str, group: str = "") -> StatusError:
    """409 AlreadyExists: ``namespaces "team-a" already exists``."""
    return StatusError(
        code=409,
        reason=REASON_ALREADY_EXISTS,
        message=f"{qualified_resource(resource, group)} {go_quote(name)} already exists",
        details=_resource_details(resource, group, name),
    )


def generate_name_conflict(
    *, resource: str, name: str, group: str = "", retry_after_seconds: int = 1
) -> StatusError:
    """409 AlreadyExists when a ``generateName`` candidate collided."""
    return StatusError(
        code=409,
        reason=REASON_ALREADY_EXISTS,
        message=(
            f"{qualified_resource(resource, group)} {go_quote(name)} already exists, "
            "the server was not able to generate a unique name for the object"
        ),
        details=_resource_details(resource, group, name, retry_after_seconds),
    )


def conflict(
    *, resource: str, name: str, group: str = "", detail: str = CONFLICT_MODIFIED
) -> StatusError:
    """409 Conflict: ``Operation cannot be fulfilled on pods "x": <detail>``.

    The default ``detail`` is the optimistic-concurrency text kubectl retries on; pass another
    (e.g. ``Precondition failed: UID in precondition: a, UID in object meta: b``) for preconditions.
    """
    return StatusError(
        code=409,
        reason=REASON_CONFLICT,
        message=f"Operation cannot be fulfilled on {qualified_resource(resource, group)} {go_quote(name)}: {detail}",
        details=_resource_details(resource, group, name),
    )


def aggregate_messages(messages: Iterable[str]) -> str:
    """``utilerrors.NewAggregate(...).Error()``: one message as is, several as ``[a, b]``, deduplicated."""
    seen: list[str] = []
    for msg in messages:
        if msg not in seen:
            seen.append(msg)
    if len(seen) == 1:
        return seen[0]
    return "[" + ", ".join(seen) + "]"


def invalid(
    *, kind: str, name: str, causes: Sequence[FieldErrorLike], group: str = ""
) -> StatusError:
    """422 Invalid: ``Pod "x" is invalid: metadata.name: Invalid value: "X_Y": ...``.

    ``kind`` is the Kind (``Deployment``), not the resource; every field error becomes one entry of
    ``details.causes`` and the message aggregates them like ``field.ErrorList.ToAggregate``.
    """
    qualified_kind = f"{kind}.{group}" if group else kind
    message = f"{qualified_kind} {go_quote(name)} is invalid"
    if causes:
        message += ": " + aggregate_messages(str(c) for c in causes)
    return StatusError(
        code=422,
        reason=REASON_INVALID,
        message=message,
        details=StatusDetails(
            name=name, group=group, kind=kind, causes=tuple(c.to_cause() for c in causes)
        ),
    )


def bad_request(message: str) -> StatusError:
    """400 BadRequest with the given message and no details."""
    return StatusError(code=400, reason=REASON_BAD_REQUEST, message=message)


def unauthorized(message: str = "Unauthorized") -> StatusError:
    """401 Unauthorized. The apiserver's authentication filter sends the message ``Unauthorized``."""
    return StatusError(
        code=401, reason=REASON_UNAUTHORIZED, message=message or "not authorized"
    )


def forbidden(
    *,
    user: str,
    verb: str,
    resource: str,
    group: str = "",
    name: str = "",
    namespace: str = "",
    subresource: str = "",
    reason: str = "",
) -> StatusError:
    """403 Forbidden for a resource request, worded like the RBAC authorizer's denial.

    ``pods "x" is forbidden: User "bob" cannot get resource "pods" in API group "" in the namespace
    "default"``; without a namespace the tail is ``at the cluster scope``; without a name the
    prefix is ``pods is forbidden``. ``reason`` (the authorizer's explanation) is appended after ``: ``.
    """
    what = f"{resource}/{subresource}" if subresource else resource
    text = f"User {go_quote(user)} cannot {verb} resource {go_quote(what)} in API group {go_quote(group)}"
    if namespace:
        text += f" in the namespace {go_quote(namespace)}"
    else:
        text += " at the cluster scope"
    # The apiserver HTML-escapes the text so an error page can never be mistaken for markup.
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if reason:
        text = f"{text}: {reason}"
    qualified = qualified_resource(resource, group)
    if not resource:
        message = f"forbidden: {text}"
    elif name:
        message = f"{qualified} {go_quote(name)} is forbidden: {text}"
    else:
        message = f"{qualified} is forbidden: {text}"
    return StatusError(
        code=403,
        reason=REASON_FORBIDDEN,
        message=message,
        details=_resource_details(resource, group, name),
    )


def forbidden_reason(*, resource: str, name: str = "", group: str = "", reason: str) -> StatusError:
    """403 Forbidden with a free-form reason, as admission plugins answer (``NewForbidden``).

    ``pods "x" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2``;
    without a name ``pods is forbidden: ...``; without a resource ``forbidden: ...``.
    """
    qualified = qualified_resource(resource, group)
    if not resource:
        message = f"forbidden: {reason}"
    elif name:
        message = f"{qualified} {go_quote(name)} is forbidden: {reason}"
    else:
        message = f"{qualified} is forbidden: {reason}"
    return StatusError(
        code=403,
        reason=REASON_FORBIDDEN,
        message=message,
        details=_resource_details(resource, group, name),
    )


def forbidden_path(*, user: str, verb: str, path: str, reason: str = "") -> StatusError:
    """403 for a non-resource URL: ``forbidden: User "bob" cannot get path "/metrics"``."""
    text = f"User {go_quote(user)} cannot {verb} path {go_quote(path)}"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if reason:
        text = f"{text}: {reason}"
    return StatusError(
        code=403, reason=REASON_FORBIDDEN, message=f"forbidden: {text}", details=StatusDetails()
    )


def method_not_allowed(*, resource: str, action: str, group: str = "") -> StatusError:
    """405: ``watch is not supported on resources of kind "pods/log"``."""
    qualified = qualified_resource(resource, group)
    return StatusError(
        code=405,
        reason=REASON_METHOD_NOT_ALLOWED,
        message=f"{action} is not supported on resources of kind {go_quote(qualified)}",
        details=StatusDetails(group=group, kind=resource),
    )


def not_acceptable(accepted: Sequence[str]) -> StatusError:
    """406 when no Accept type can be served."""
    return StatusError(
        code=406,
        reason=REASON_NOT_ACCEPTABLE,
        message="only the following media types are accepted: " + ", ".join(accepted),
    )


def gone(message: str) -> StatusError:
    """410 Gone (deprecated upstream in favour of ``expired``)."""
    return StatusError(code=410, reason=REASON_GONE, message=message)


def expired(
    message: str | None = None,
    *,
    resource_version: int | None = None,
    compacted: int | None = None,
    continue_token: str = "",
) -> StatusError:
    """410 Expired. ``expired(resource_version=5, compacted=10)`` → ``too old resource version: 5 (10)``.

    Informers relist on this reason. ``compacted`` is the newest revision that is no longer
    available (the watch cache prints ``oldest retained - 1``). ``continue_token`` fills
    ``metadata.continue`` for an expired paginated list.
    """
    if message is None:
        if resource_version is None or compacted is None:
            raise ValueError("expired() needs a message, or resource_version and compacted")
        message = f"too old resource version: {resource_version} ({compacted})"
    return StatusError(
        code=410,
        reason=REASON_EXPIRED,
        message=message,
        metadata={"continue": continue_token} if continue_token else None,
    )


def request_entity_too_large(message: str) -> StatusError:
    """413: ``Request entity too large: <message>``."""
    return StatusError(
        code=413,
        reason=REASON_REQUEST_ENTITY_TOO_LARGE,
        message=f"Request entity too large: {message}",
    )


def unsupported_media_type(accepted: Sequence[str]) -> StatusError:
    """415 for an unknown body / patch Content-Type, listing the accepted types."""
    return StatusError(
        code=415,
        reason=REASON_UNSUPPORTED_MEDIA_TYPE,
        message=(
            "the body of the request was in an unknown format - accepted media types include: "
            + ", ".join(accepted)
        ),
    )


def too_many_requests(message: str, retry_after_seconds: int = 1,
                      causes: tuple[StatusCause, ...] = ()) -> StatusError:
    """429 TooManyRequests with ``details.retryAfterSeconds`` (send it as ``Retry-After`` too).

    ``retry_after_seconds=0`` sends no Retry-After: client-go then hands the 429 to its caller at
    once instead of retrying it itself (kubectl drain relies on that for its own retry loop).
    """
    return StatusError(
        code=429,
        reason=REASON_TOO_MANY_REQUESTS,
        message=message,
        details=StatusDetails(retry_after_seconds=retry_after_seconds, causes=causes),
    )


def too_large_resource_version(wanted: int, current: int) -> StatusError:
    """504 Timeout for a read at a resourceVersion the store has not reached (``storage.NewTooLargeResourceVersionError``)."""
    return StatusError(
        code=504,
        reason=REASON_TIMEOUT,
        message=f"Timeout: Too large resource version: {wanted}, current: {current}",
        details=StatusDetails(retry_after_seconds=1,
                              causes=(StatusCause(type="ResourceVersionTooLarge", message="Too large resource version"),)),
    )


def internal_error(error: BaseException | str) -> StatusError:
    """500 InternalError: ``Internal error occurred: <error>`` -- for real bugs only."""
    text = str(error)
    return StatusError(
        code=500,
        reason=REASON_INTERNAL_ERROR,
        message=f"Internal error occurred: {text}",
        details=StatusDetails(causes=(StatusCause(message=text),)),
    )


def server_timeout(
    *, resource: str, operation: str, group: str = "", retry_after_seconds: int = 1
) -> StatusError:
    """500 ServerTimeout: a transient storage error the client should retry."""
    qualified = qualified_resource(resource, group)
    return StatusError(
        code=500,
        reason=REASON_SERVER_TIMEOUT,
        message=(
            f"The {operation} operation against {qualified} could not be completed at this time, "
            "please try again."
        ),
        details=StatusDetails(
            name=operation, group=group, kind=resource, retry_after_seconds=retry_after_seconds
        ),
    )


def service_unavailable(message: str) -> StatusError:
    """503 ServiceUnavailable (e.g. the store has no quorum)."""
    return StatusError(code=503, reason=REASON_SERVICE_UNAVAILABLE, message=message)


def timeout(message: str, retry_after_seconds: int = 0) -> StatusError:
    """504 Timeout: ``Timeout: <message>``; the operation may still complete."""
    return StatusError(
        code=504,
        reason=REASON_TIMEOUT,
        message=f"Timeout: {message}",
        details=StatusDetails(retry_after_seconds=retry_after_seconds),
    )


_GENERIC = MappingProxyType({
    400: (REASON_BAD_REQUEST, "the server rejected our request for an unknown reason"),
    401: (REASON_UNAUTHORIZED, "the server has asked for the client to provide credentials"),
    404: (REASON_NOT_FOUND, "the server could not find the requested resource"),
    405: (REASON_METHOD_NOT_ALLOWED, "the server does not allow this method on the requested resource"),
    409: (REASON_CONFLICT, "the server reported a conflict"),
    422: (REASON_INVALID, "the server rejected our request due to an error in our request"),
    429: (
        REASON_TOO_MANY_REQUESTS,
        "the server has received too many requests and has asked us to try again later",
    ),
    503: (REASON_SERVICE_UNAVAILABLE, "the server is currently unable to handle the request"),
    504: (
        REASON_TIMEOUT,
        "the server was unable to return a response in the time allotted, but may still be processing the request",
    ),
})


def generic_error(code: int, detail: str = "") -> StatusError:
    """An error for ``code`` with upstream's generic text (``NewGenericServerResponse``).

    Upstream drops the underlying explanation for some of these (a failed JSON patch is only
    "the server rejected our request due to an error in our request"); we append ``detail``
    after ``: `` so the user learns what went wrong. ``details`` is ``{}`` as upstream.
    """
    reason, message = _GENERIC.get(code, (REASON_UNKNOWN, ""))
    if code >= 500 and code not in _GENERIC:
        reason = REASON_INTERNAL_ERROR
        message = f"an error on the server ({go_quote(detail)}) has prevented the request from succeeding"
        detail = ""
    if not message:
        message = f"the server responded with the status code {code} but did not return more information"
    if detail:
        message = f"{message}: {detail}"
    return StatusError(code=code, reason=reason, message=message, details=StatusDetails())

