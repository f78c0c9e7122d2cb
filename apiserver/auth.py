"""Authentication and authorization chains.

Authentication turns a request into a ``UserInfo``: a client certificate signed by the
``--client-ca-file`` CA (``user_from_certificate``), else a bearer token (a static token file;
service-account JWTs plug in as another ``Authenticator``). Authorization is a chain of
``Authorizer``s asked in order; the first that allows or denies decides (RBAC plugs in here).
"""

from __future__ import annotations

import csv
import hmac
import io
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from aiohttp import web


@dataclass(frozen=True, slots=True)
class UserInfo:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, tuple[str, ...]] = field(default_factory=dict)


ANONYMOUS = UserInfo("system:anonymous", groups=("system:unauthenticated",))


class Authenticator(Protocol):
    async def authenticate_token(self, token: str) -> UserInfo | None: ...


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def user_from_certificate(peercert: dict[str, Any] | None) -> UserInfo | None:
    """The user a verified client certificate names, as Kubernetes reads it: the subject's common
    name is the user, each organization a group. ``peercert`` is ``SSLSocket.getpeercert()``: only a
    certificate that chained to the client CA during the handshake gets here."""
    if not peercert:
        return None
    names: list[str] = []
    groups: list[str] = []
    for rdn in peercert.get("subject") or ():
        for key, value in rdn:
            if key == "commonName":
                names.append(value)
            elif key == "organizationName":
                groups.append(value)
    if not names or not names[0]:
        return None
    return UserInfo(names[0], "", tuple(dict.fromkeys((*groups, "system:authenticated"))))


class TokenFileAuthenticator:
    """Kubernetes' static token file: ``token,user,uid[,"group1,group2"]`` per line."""

    def __init__(self, tokens: dict[str, UserInfo]) -> None:
        self._tokens = tokens

    @classmethod
    def from_file(cls, path: str) -> TokenFileAuthenticator:
        with open(path, encoding="utf-8") as f:
            return cls.parse(f.read())

    @classmethod
    def parse(cls, text: str) -> TokenFileAuthenticator:
        tokens: dict[str, UserInfo] = {}
        for lineno, row in enumerate(csv.reader(io.StringIO(text)), 1):
            if not row or not row[0].strip() or row[0].lstrip().startswith("#"):
                continue
            if len(row) < 3:
                raise ValueError(f"token file line {lineno}: expected token,user,uid[,groups]")
            groups = tuple(g.strip() for g in row[3].split(",") if g.strip()) if len(row) > 3 else ()
            tokens[row[0].strip()] = UserInfo(row[1].strip(), row[2].strip(), groups)
        return cls(tokens)

    async def authenticate_token(self, token: str) -> UserInfo | None:
        for known, user in self._tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                return UserInfo(user.name, user.uid, tuple(dict.fromkeys((*user.groups, "system:authenticated"))))
        return None


class Decision(Enum):
    ALLOW = "allow"
    DENY = "deny"
    NO_OPINION = "no-opinion"


@dataclass(frozen=True, slots=True)
class Attributes:
    """What a request wants to do, as authorizers see it (Kubernetes' authorizer.Attributes)."""

    user: UserInfo
    verb: str
    resource_request: bool
    path: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""


class Authorizer(Protocol):
    async def authorize(self, attrs: Attributes) -> tuple[Decision, str]: ...


class AlwaysAllow:
    """Every authenticated request is allowed (until RBAC is enforced)."""

    async def authorize(self, attrs: Attributes) -> tuple[Decision, str]:
        return Decision.ALLOW, ""


class AuthorizerChain:
    def __init__(self, authorizers: list[Authorizer]) -> None:
        self.authorizers = authorizers

    async def authorize(self, attrs: Attributes) -> tuple[Decision, str]:
        for authorizer in self.authorizers:
            decision, reason = await authorizer.authorize(attrs)
            if decision is not Decision.NO_OPINION:
                return decision, reason
        return Decision.DENY, ""
