"""Which resource types the API server serves, read from discovery (``GET /api/v1``, ``/apis``, ``/apis/{g}/{v}``).

The garbage collector watches every type that can be listed, watched and deleted, and the namespace
controller empties a terminating namespace of every namespaced type; both must also see custom
resources that appear later, so discovery is re-read periodically rather than taken from a built-in
table. Only each group's preferred version is used: the same objects served under two versions would
otherwise be watched (and deleted) twice.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from apimachinery.errors import StatusError
from apiclient.rest import APIConnectionError, Resource, RESTClient

log = logging.getLogger("controllers.discovery")


@dataclass(frozen=True)
class APIResource:
    resource: Resource
    verbs: frozenset[str]

    @property
    def namespaced(self) -> bool:
        return self.resource.namespaced

    def can(self, *verbs: str) -> bool:
        return all(v in self.verbs for v in verbs)


class DiscoveryError(Exception):
    """Some group versions could not be read (their resources are missing from the answer)."""

    def __init__(self, failed: list[str], partial: list[APIResource]) -> None:
        super().__init__(f"discovery failed for {', '.join(failed)}")
        self.failed = failed
        self.partial = partial


async def _resources(client: RESTClient, group: str, version: str) -> list[APIResource]:
    path = f"/apis/{group}/{version}" if group else f"/api/{version}"
    doc = await client.request("GET", path)
    out: list[APIResource] = []
    for r in doc.get("resources") or []:
        name = str(r.get("name") or "")
        if not name or "/" in name:
            continue  # subresources
        res = Resource(group, version, name, bool(r.get("namespaced")), str(r.get("kind") or ""))
        out.append(APIResource(res, frozenset(r.get("verbs") or [])))
    return out


async def discover(client: RESTClient) -> list[APIResource]:
    """Every resource of the preferred version of every group (core ``v1`` included).

    Raises ``DiscoveryError`` (carrying what could be read) if a group version failed.
    """
    groups = (await client.request("GET", "/apis")).get("groups") or []
    targets: list[tuple[str, str]] = [("", "v1")]
    for g in groups:
        name = g.get("name")
        preferred = (g.get("preferredVersion") or {}).get("version")
        if not preferred:
            versions = g.get("versions") or []
            preferred = versions[0].get("version") if versions else None
        if name and preferred:
            targets.append((name, preferred))
    results = await asyncio.gather(*(_resources(client, g, v) for g, v in targets), return_exceptions=True)
    out: list[APIResource] = []
    failed: list[str] = []
    for (g, v), result in zip(targets, results):
        if isinstance(result, (StatusError, APIConnectionError)):
            failed.append(f"{g}/{v}" if g else v)
            log.warning("discovery of %s/%s failed: %r", g, v, result)
        elif isinstance(result, BaseException):
            raise result
        else:
            out.extend(result)
    if failed:
        raise DiscoveryError(failed, out)
    return out


def by_group_kind(resources: list[APIResource]) -> dict[tuple[str, str], APIResource]:
    """(group, kind) → resource: how an owner reference (apiVersion, kind) is turned into a URL."""
    return {(r.resource.group, r.resource.kind): r for r in resources}
