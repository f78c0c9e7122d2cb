"""ControllerRevisions: the template history of DaemonSets and StatefulSets (what ``kubectl rollout
history|undo`` reads for them).

Each distinct pod template of a workload is one ControllerRevision ``<owner>-<hash>`` (label
``controller-revision-hash``) holding the template in ``data.spec.template`` and a ``revision`` number.
Going back to an earlier template reuses its revision object with the number raised to the highest + 1,
as upstream does. Revisions beyond ``revisionHistoryLimit`` that no pod uses any more are deleted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from apimachinery import meta as m
from apimachinery.errors import StatusError
from apiclient.informer import Informer, INDEX_CONTROLLER_UID
from apiclient.rest import RESTClient, resource

from . import deploymentutil as du
from . import podutil as pu

Obj = dict[str, Any]
CONTROLLER_REVISIONS = resource("controllerrevisions", "apps")
REVISION_HASH_LABEL = "controller-revision-hash"


def template_hash(template: Mapping[str, Any], collision_count: int | None = None) -> str:
    return du.compute_hash(template, collision_count)


def owned_revisions(informer: Informer, owner: Mapping[str, Any]) -> list[Obj]:
    return sorted((r for r in informer.by_index(INDEX_CONTROLLER_UID, m.uid(owner)) if not pu.is_terminating(r)),
                  key=lambda r: (int(r.get("revision") or 0), m.name(r)))


async def ensure_revision(client: RESTClient, owner: Obj, *, kind: str, revisions: list[Obj]) -> tuple[str, int]:
    """The (hash, revision number) of the owner's current template, creating or re-numbering as needed."""
    template = (owner.get("spec") or {}).get("template") or {}
    # collisionCount starts at 0 in the status: absent and 0 must hash alike, or the first status write
    # would look like a new template.
    collision = int((owner.get("status") or {}).get("collisionCount") or 0)
    pod_hash = template_hash(template, collision)
    top = max((int(r.get("revision") or 0) for r in revisions), default=0)
    for rev in revisions:
        if m.labels(rev).get(REVISION_HASH_LABEL) != pod_hash:
            continue
        number = int(rev.get("revision") or 0)
        if number < top:  # rolled back to it: it becomes the newest
            body = {**rev, "revision": top + 1}
            await client.update(CONTROLLER_REVISIONS, body, namespace=m.namespace(owner))
            number = top + 1
        return pod_hash, number
    body = {"apiVersion": "apps/v1", "kind": "ControllerRevision",
            "metadata": {"name": f"{m.name(owner)}-{pod_hash}", "namespace": m.namespace(owner),
                         "labels": {**((template.get("metadata") or {}).get("labels") or {}),
                                    REVISION_HASH_LABEL: pod_hash},
                         "ownerReferences": [m.new_controller_ref(owner, api_version="apps/v1", kind=kind)]},
            "data": {"spec": {"template": {**m.deep_copy(template), "$patch": "replace"}}},
            "revision": top + 1}
    try:
        await client.create(CONTROLLER_REVISIONS, body, namespace=m.namespace(owner))
    except StatusError as err:
        if err.code != 409:
            raise
        existing = await client.get(CONTROLLER_REVISIONS, body["metadata"]["name"], namespace=m.namespace(owner))
        if not m.is_controlled_by(existing, owner):
            raise
        return pod_hash, int(existing.get("revision") or top + 1)
    return pod_hash, top + 1


async def truncate(client: RESTClient, owner: Mapping[str, Any], revisions: list[Obj], in_use: Iterable[str]) -> None:
    """Delete the oldest revisions beyond the history limit that no live pod uses."""
    limit = (owner.get("spec") or {}).get("revisionHistoryLimit")
    limit = 10 if not isinstance(limit, int) else limit
    used = set(in_use)
    spare = [r for r in revisions if m.labels(r).get(REVISION_HASH_LABEL) not in used]
    for rev in spare[:max(0, len(spare) - limit)]:
        try:
            await client.delete(CONTROLLER_REVISIONS, m.name(rev), namespace=m.namespace(rev),
                                preconditions={"uid": m.uid(rev)})
        except StatusError as err:
            if err.code not in (404, 409):
                raise
