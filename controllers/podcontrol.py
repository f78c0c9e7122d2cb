"""Creating and deleting a controller's pods through the API, with expectations kept right (client-go's
``PodControl`` plus the slow-start batching the ReplicaSet and Job controllers share).

Expectations are raised *before* the requests go out (the informer may deliver the new pod before the
create call returns) and lowered for every request that fails, or that is never sent because an
earlier batch failed — otherwise the owner would wait for pods that will never appear.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from apimachinery import meta as m
from apimachinery.errors import StatusError
from apiclient.events import NORMAL, WARNING, EventSink
from apiclient.rest import PODS, RESTClient

from .expectations import Expectations

Obj = dict[str, Any]


async def slow_start_batch(count: int, initial: int,
                           fn: Callable[[], Awaitable[Any]]) -> tuple[int, int, BaseException | None]:
    """Call ``fn`` ``count`` times in batches of ``initial``, then twice as many each time; stop after
    the first batch with a failure. Returns (successes, calls made, first error)."""
    remaining, successes, attempted = count, 0, 0
    batch = min(remaining, initial)
    while batch > 0:
        results = await asyncio.gather(*(fn() for _ in range(batch)), return_exceptions=True)
        attempted += batch
        errors = [r for r in results if isinstance(r, BaseException)]
        successes += len(results) - len(errors)
        if errors:
            return successes, attempted, errors[0]
        remaining -= batch
        batch = min(2 * batch, remaining)
    return successes, attempted, None


def namespace_terminating(err: BaseException) -> bool:
    """The API server refused a create because the namespace is being deleted: nothing to retry."""
    return isinstance(err, StatusError) and err.code == 403 and "being terminated" in err.message


def error_message(exc: BaseException) -> str:
    if isinstance(exc, StatusError):
        return exc.message
    return str(exc) or type(exc).__name__


async def delete_pod(client: RESTClient, pod: Mapping[str, Any]) -> bool:
    """Delete this very pod (uid precondition); False if it is gone already or was replaced by a namesake."""
    try:
        await client.delete(PODS, m.name(pod), namespace=m.namespace(pod), preconditions={"uid": m.uid(pod)})
    except StatusError as err:
        if err.code in (404, 409):
            return False
        raise
    return True


class PodControl:
    def __init__(self, client: RESTClient, recorder: EventSink, expectations: Expectations) -> None:
        self.client = client
        self.recorder = recorder
        self.expectations = expectations

    async def create(self, key: str, owner: Mapping[str, Any], bodies: list[Obj]) -> None:
        """Create ``bodies`` in slow-start batches; raise the first failure (unless the namespace is going)."""
        count = len(bodies)
        if count <= 0:
            return
        self.expectations.expect_creations(key, count)
        pending = list(bodies)

        async def create_one() -> None:
            body = pending.pop(0)
            try:
                created = await self.client.create(PODS, body, namespace=m.namespace(owner))
            except BaseException:
                self.expectations.lower_creations(key)  # the informer will never see this pod
                raise
            self.recorder.event(owner, NORMAL, "SuccessfulCreate", f"Created pod: {m.name(created)}")

        _, attempted, error = await slow_start_batch(count, 1, create_one)
        if attempted < count:
            self.expectations.lower_creations(key, count - attempted)  # batches never started
        if error is not None:
            self.recorder.event(owner, WARNING, "FailedCreate", f"Error creating: {error_message(error)}")
            if namespace_terminating(error):
                return
            raise error

    async def delete(self, key: str, owner: Mapping[str, Any], pods: list[Obj]) -> None:
        """Delete ``pods`` at once (uid preconditions: never a namesake); raise the first real failure."""
        if not pods:
            return
        self.expectations.expect_deletions(key, [m.object_key(p) for p in pods])

        async def delete_one(pod: Obj) -> None:
            try:
                await self.client.delete(PODS, m.name(pod), namespace=m.namespace(pod),
                                         preconditions={"uid": m.uid(pod)})
            except BaseException as exc:
                self.expectations.deletion_observed(key, m.object_key(pod))
                if isinstance(exc, StatusError) and exc.code in (404, 409):
                    return  # already gone, or replaced by a namesake we must not delete
                raise
            self.recorder.event(owner, NORMAL, "SuccessfulDelete", f"Deleted pod: {m.name(pod)}")

        results = await asyncio.gather(*(delete_one(p) for p in pods), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            self.recorder.event(owner, WARNING, "FailedDelete", f"Error deleting: {error_message(errors[0])}")
            raise errors[0]
