"""Shared fixtures: real store clusters on 127.0.0.1 (see tests/harness)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.harness.kvcluster import KVCluster


@pytest.fixture
def kv_cluster_factory(tmp_path: Path) -> Iterator[Callable[..., KVCluster]]:
    clusters: list[KVCluster] = []

    def make(size: int = 3, *extra_args: str, name: str = "kv") -> KVCluster:
        cluster = KVCluster(tmp_path / f"{name}{len(clusters)}", size, tuple(extra_args))
        clusters.append(cluster)
        cluster.start()
        try:
            cluster.wait_ready()
        except TimeoutError:
            print(cluster.logs())
            raise
        return cluster

    yield make
    for cluster in clusters:
        cluster.close()


@pytest.fixture(scope="module")
def kv3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KVCluster]:
    """A 3-member cluster shared by the tests of one module (they must not kill members)."""
    cluster = KVCluster(tmp_path_factory.mktemp("kv3"), 3)
    cluster.start()
    try:
        cluster.wait_ready()
    except TimeoutError:
        print(cluster.logs())
        cluster.close()
        raise
    yield cluster
    cluster.close()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator["APICluster"]:
    """A 1-member store and one API server over HTTPS, shared by one module's tests."""
    from tests.harness.apicluster import APICluster

    cluster = APICluster(tmp_path_factory.mktemp("api"))
    cluster.start_or_close()
    yield cluster
    cluster.close()
