"""Adoption and orphaning by selector (client-go's ``ControllerRefManager``), through the API.

A controller owns what carries its controller reference *and* matches its selector:

* ours and matching: kept;
* ours but no longer matching (labels edited, selector changed): released — our owner reference is
  removed with a strategic-merge patch (``$patch: delete`` by uid), unless we are being deleted;
* owned by another controller: never touched;
* an orphan that matches: adopted (our controller reference added), but only after a fresh GET of the
  owner confirmed it still exists with the same uid and is not being deleted — a cached owner may
  already be gone, and adopting for it would hand the object to the garbage collector.

Both patches carry ``metadata.uid`` so they apply to the very object we looked at, never to a
namesake created since.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from apimachinery import meta as m
from apimachinery.errors import StatusError
from apimachinery.selectors import LabelSelector
from apiclient.rest import Resource, RESTClient

log = logging.getLogger("controllers.refmanager")

Obj = dict[str, Any]


class OwnerGone(Exception):
    """The owner changed or is being deleted since it was cached: adopt nothing this time."""


class RefManager:
    def __init__(self, client: RESTClient, *, owner: Mapping[str, Any], owner_res: Resource, owner_ref: Obj,
                 selector: LabelSelector) -> None:
        self.client = client
        self.owner = owner
        self.owner_res = owner_res
        self.owner_ref = owner_ref
        self.selector = selector
        self._rechecked: bool | None = None

    async def _can_adopt(self) -> bool:
        if self._rechecked is None:
            try:
                fresh = await self.client.get(self.owner_res, m.name(self.owner), namespace=m.namespace(self.owner))
            except StatusError as err:
                if err.code == 404:
                    self._rechecked = False
                    return False
                raise
            self._rechecked = m.uid(fresh) == m.uid(self.owner) and not m.deletion_timestamp(fresh)
        return self._rechecked

    async def claim(self, res: Resource, candidates: Iterable[Mapping[str, Any]]) -> list[Obj]:
        """The candidates that belong to the owner after adopting and releasing as needed."""
        owner_uid = m.uid(self.owner)
        owner_deleting = bool(m.deletion_timestamp(self.owner))
        claimed: list[Obj] = []
        for obj in candidates:
            ref = m.controller_ref(obj)
            matches = self.selector.matches(m.labels(obj))
            if ref is not None:
                if ref.get("uid") != owner_uid:
                    continue
                if matches:
                    claimed.append(dict(obj))
                elif not owner_deleting:
                    await self.release(res, obj)
                continue
            if owner_deleting or not matches or m.deletion_timestamp(obj):
                continue
            if not await self._can_adopt():
                continue
            adopted = await self.adopt(res, obj)
            if adopted is not None:
                claimed.append(adopted)
        return claimed

    async def adopt(self, res: Resource, obj: Mapping[str, Any]) -> Obj | None:
        patch = {"metadata": {"ownerReferences": [self.owner_ref], "uid": m.uid(obj)}}
        try:
            return await self.client.patch(res, m.name(obj), patch, namespace=m.namespace(obj), patch_type="strategic")
        except StatusError as err:
            if err.code in (404, 409, 422):
                return None  # gone, or changed identity: nothing to adopt
            raise

    async def release(self, res: Resource, obj: Mapping[str, Any]) -> None:
        patch = {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": m.uid(self.owner)}], "uid": m.uid(obj)}}
        try:
            await self.client.patch(res, m.name(obj), patch, namespace=m.namespace(obj), patch_type="strategic")
        except StatusError as err:
            if err.code not in (404, 409, 422):
                raise
