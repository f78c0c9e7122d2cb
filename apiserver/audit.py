"""Audit log: one ``audit.k8s.io/v1`` Event per request, as JSON lines, at the Metadata level.

Metadata level records who did what to which object and the outcome, never request or response
bodies (so no secret ever reaches the audit log).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import IO, Any

import orjson

from .auth import UserInfo
from .requestinfo import RequestInfo


def _micro(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AuditLog:
    def __init__(self, path: str) -> None:
        self._file: IO[bytes] = open(path, "ab", buffering=0)

    def record(self, *, verb: str, uri: str, user: UserInfo | None, source_ip: str, user_agent: str,
               info: RequestInfo | None, code: int, received: float, completed: float,
               impersonated_user: UserInfo | None = None) -> None:
        event: dict[str, Any] = {
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": str(uuid.uuid4()),
            "stage": "ResponseComplete", "requestURI": uri, "verb": verb,
            "user": {"username": user.name if user else "", "groups": list(user.groups) if user else []},
            "sourceIPs": [source_ip] if source_ip else [], "userAgent": user_agent,
            "responseStatus": {"metadata": {}, "code": code},
            "requestReceivedTimestamp": _micro(received), "stageTimestamp": _micro(completed),
        }
        if user is not None and user.uid:
            event["user"]["uid"] = user.uid
        if impersonated_user is not None:
            event["impersonatedUser"] = {"username": impersonated_user.name,
                                         "groups": list(impersonated_user.groups)}
            if impersonated_user.uid:
                event["impersonatedUser"]["uid"] = impersonated_user.uid
        if info is not None:
            ref = {"resource": info.rt.plural, "apiVersion": info.rt.version}
            if info.rt.group:
                ref["apiGroup"] = info.rt.group
            if info.namespace:
                ref["namespace"] = info.namespace
            if info.name:
                ref["name"] = info.name
            if info.subresource:
                ref["subresource"] = info.subresource
            event["objectRef"] = ref
        self._file.write(orjson.dumps(event) + b"\n")

    def close(self) -> None:
        self._file.close()
