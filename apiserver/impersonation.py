"""User impersonation (kube-apiserver's ``WithImpersonation`` filter).

After the real caller is authenticated, ``Impersonate-User``/``-Group``/``-Uid``/``-Extra-<key>``
headers ask to run the request as another identity. Each requested attribute is authorized for the
real caller with verb ``impersonate`` (``users``, ``groups``, ``serviceaccounts``, ``uids``,
``userextras/<key>``); any denial is a 403. Groups/extras without a user are a 400.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import unquote

from multidict import CIMultiDictProxy

from apimachinery import errors

from .auth import Attributes, Decision, UserInfo

USER, GROUP, UID, EXTRA = "Impersonate-User", "Impersonate-Group", "Impersonate-Uid", "Impersonate-Extra-"

AuthorizeFn = Callable[[Attributes], Awaitable[tuple[Decision, str]]]


def requested(headers: CIMultiDictProxy[str]) -> bool:
    return any(k.lower().startswith("impersonate-") for k in headers)


async def impersonate(real: UserInfo, headers: CIMultiDictProxy[str], authorize: AuthorizeFn) -> UserInfo:
    """The identity the request runs as; raises 400/403 ``StatusError`` like upstream."""
    user = headers.get(USER, "")
    groups = list(headers.getall(GROUP, []))
    uid = headers.get(UID, "")
    extra: dict[str, list[str]] = {}
    for key, value in headers.items():
        if key.lower().startswith(EXTRA.lower()):
            extra.setdefault(unquote(key[len(EXTRA):]).lower(), []).append(value)
    if not user and (groups or extra or uid):
        asked = [f"{GROUP}:{g}" for g in groups] + [f"{EXTRA}{k}:{v}" for k, vs in extra.items() for v in vs]
        if uid:
            asked.append(f"{UID}:{uid}")
        raise errors.bad_request(f"requested [{' '.join(asked)}] without impersonating a user")

    checks: list[tuple[str, str, str, str, str]] = []  # resource, subresource, group, namespace, name
    if user.startswith("system:serviceaccount:") and user.count(":") == 3:
        _, _, ns, name = user.split(":")
        checks.append(("serviceaccounts", "", "", ns, name))
    else:
        checks.append(("users", "", "", "", user))
    checks += [("groups", "", "", "", g) for g in groups]
    if uid:
        checks.append(("uids", "", "authentication.k8s.io", "", uid))
    checks += [("userextras", k, "authentication.k8s.io", "", v) for k, vs in extra.items() for v in vs]
    for resource, sub, group, ns, name in checks:
        attrs = Attributes(user=real, verb="impersonate", resource_request=True, api_group=group,
                           resource=resource, subresource=sub, namespace=ns, name=name)
        decision, reason = await authorize(attrs)
        if decision is not Decision.ALLOW:
            raise errors.forbidden(user=real.name, verb="impersonate", resource=resource, subresource=sub,
                                   group=group, namespace=ns, name=name, reason=reason)

    all_groups = list(groups)
    if not groups and user.startswith("system:serviceaccount:") and user.count(":") == 3:
        ns = user.split(":")[2]  # upstream adds the SA groups only when none were requested
        all_groups += ["system:serviceaccounts", f"system:serviceaccounts:{ns}"]
    if user != "system:anonymous":
        all_groups.append("system:authenticated")
    return UserInfo(user, uid, tuple(dict.fromkeys(all_groups)), {k: tuple(v) for k, v in extra.items()})
