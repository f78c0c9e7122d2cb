"""etcd's error vocabulary: gRPC codes, the messages etcd 3.4 uses, and their HTTP statuses.

The JSON gateway answers a failed unary call with ``{"error": MSG, "message": MSG, "code": GRPC_CODE}``
and an HTTP status chosen from the gRPC code (see ../shared/reference/etcd-json-api.md §0).
"""

from __future__ import annotations

from dataclasses import dataclass

# gRPC status codes used by etcd.
CANCELED = 1
UNKNOWN = 2
INVALID_ARGUMENT = 3
DEADLINE_EXCEEDED = 4
NOT_FOUND = 5
FAILED_PRECONDITION = 9
RESOURCE_EXHAUSTED = 8
OUT_OF_RANGE = 11
INTERNAL = 13
UNAVAILABLE = 14

HTTP_STATUS = {
    CANCELED: 408,
    UNKNOWN: 500,
    INVALID_ARGUMENT: 400,
    DEADLINE_EXCEEDED: 504,
    NOT_FOUND: 404,
    RESOURCE_EXHAUSTED: 429,
    FAILED_PRECONDITION: 412,
    OUT_OF_RANGE: 400,
    INTERNAL: 500,
    UNAVAILABLE: 503,
}


@dataclass(frozen=True, slots=True)
class EtcdError(Exception):
    """An error with etcd's gRPC code and message; safe to show to clients."""

    code: int
    message: str

    def __str__(self) -> str:
        return self.message

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.code, 500)

    def to_wire(self) -> list[object]:
        """Compact form stored in apply results (results cross threads and snapshots)."""
        return [self.code, self.message]


def key_not_provided() -> EtcdError:
    return EtcdError(INVALID_ARGUMENT, "etcdserver: key is not provided")


def key_not_found() -> EtcdError:
    return EtcdError(INVALID_ARGUMENT, "etcdserver: key not found")


def value_provided() -> EtcdError:
    return EtcdError(INVALID_ARGUMENT, "etcdserver: value is provided")


def lease_provided() -> EtcdError:
    return EtcdError(INVALID_ARGUMENT, "etcdserver: lease is provided")


def duplicate_key() -> EtcdError:
    return EtcdError(INVALID_ARGUMENT, "etcdserver: duplicate key given in txn request")


def too_many_ops() -> EtcdError:
    return EtcdError(INVALID_ARGUMENT, "etcdserver: too many operations in txn request")


def request_too_large() -> EtcdError:
    return EtcdError(INVALID_ARGUMENT, "etcdserver: request is too large")


def compacted() -> EtcdError:
    return EtcdError(OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted")


def future_revision() -> EtcdError:
    return EtcdError(OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision")


def lease_not_found() -> EtcdError:
    return EtcdError(NOT_FOUND, "etcdserver: requested lease not found")


def lease_exists() -> EtcdError:
    return EtcdError(FAILED_PRECONDITION, "etcdserver: lease already exists")


def lease_ttl_too_large() -> EtcdError:
    return EtcdError(OUT_OF_RANGE, "etcdserver: too large lease TTL")


def request_timed_out() -> EtcdError:
    return EtcdError(UNAVAILABLE, "etcdserver: request timed out")


def deadline_exceeded() -> EtcdError:
    return EtcdError(UNKNOWN, "context deadline exceeded")


def leader_changed() -> EtcdError:
    return EtcdError(UNAVAILABLE, "etcdserver: leader changed")


def no_leader() -> EtcdError:
    return EtcdError(UNAVAILABLE, "etcdserver: no leader")


def bad_json(detail: str) -> EtcdError:
    return EtcdError(INVALID_ARGUMENT, detail)
