"""core/v1 and events.k8s.io/v1 Events: one object in storage (core), two shapes, as upstream.

An Event recorded through either API is read, listed, watched and selected through both; an Event
created through events.k8s.io/v1 is held to that API's stricter rules.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch

from tests.harness.apicluster import KUBECTL, APICluster

NS = "default"
CORE = f"/api/v1/namespaces/{NS}/events"
NEW = f"/apis/events.k8s.io/v1/namespaces/{NS}/events"


def ok(api: APICluster, method: str, path: str, body: object = None) -> dict:
    code, out, _ = api.request(method, path, body)
    assert code in (200, 201), (code, out)
    return out


def core_event(name: str, pod: str) -> dict:
    return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name},
            "involvedObject": {"kind": "Pod", "namespace": NS, "name": pod, "apiVersion": "v1"},
            "reason": "Pulled", "message": f"pulled for {pod}", "type": "Normal",
            "source": {"component": "kubelet", "host": "n1"}, "count": 2,
            "firstTimestamp": "2026-11-27T06:00:00Z", "lastTimestamp": "2026-11-27T06:01:00Z"}


def new_event(name: str, pod: str, **extra: object) -> dict:
    return {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": name},
            "eventTime": "2026-11-27T06:02:03.123456Z", "reportingController": "example.com/operator",
            "reportingInstance": "operator-1", "action": "Reconcile", "reason": "Synced", "type": "Warning",
            "note": f"synced {pod}", "regarding": {"kind": "Pod", "namespace": NS, "name": pod, "apiVersion": "v1"},
            **extra}


def test_a_core_event_reads_as_events_k8s_io(api: APICluster) -> None:
    ok(api, "POST", CORE, core_event("ev-core", "pod-a"))
    got = ok(api, "GET", f"{NEW}/ev-core")
    assert got["apiVersion"] == "events.k8s.io/v1" and got["kind"] == "Event"
    assert got["regarding"]["name"] == "pod-a" and got["note"] == "pulled for pod-a" and got["reason"] == "Pulled"
    assert got["deprecatedSource"] == {"component": "kubelet", "host": "n1"} and got["deprecatedCount"] == 2
    assert got["deprecatedFirstTimestamp"] == "2026-11-27T06:00:00Z" and got["eventTime"] is None
    assert "involvedObject" not in got and "message" not in got


def test_an_events_k8s_io_event_reads_as_core_and_shows_in_kubectl(api: APICluster) -> None:
    created = ok(api, "POST", NEW, new_event("ev-new", "pod-b"))
    assert created["apiVersion"] == "events.k8s.io/v1" and created["note"] == "synced pod-b"
    core = ok(api, "GET", f"{CORE}/ev-new")
    assert core["apiVersion"] == "v1" and core["involvedObject"]["name"] == "pod-b"
    assert core["message"] == "synced pod-b" and core["reportingComponent"] == "example.com/operator"
    assert core["reportingInstance"] == "operator-1" and core["action"] == "Reconcile"
    assert core["metadata"]["uid"] == created["metadata"]["uid"]
    # One object: an update through core shows through events.k8s.io.
    core["message"] = "synced again"
    ok(api, "PUT", f"{CORE}/ev-new", core)
    assert ok(api, "GET", f"{NEW}/ev-new")["note"] == "synced again"
    if KUBECTL is not None:
        out = api.kubectl("get", "events", "--field-selector", "involvedObject.name=pod-b").stdout
        assert "Synced" in out and "synced again" in out
        out = api.kubectl("get", "events.events.k8s.io", "ev-new", "-o", "json").stdout
        assert json.loads(out)["regarding"]["name"] == "pod-b"


def test_lists_and_field_selectors_of_both_shapes(api: APICluster) -> None:
    ok(api, "POST", CORE, core_event("ev-sel-1", "pod-sel"))
    ok(api, "POST", NEW, new_event("ev-sel-2", "pod-sel"))
    ok(api, "POST", NEW, new_event("ev-sel-3", "pod-other"))
    names = lambda lst: sorted(i["metadata"]["name"] for i in lst["items"])  # noqa: E731
    assert names(ok(api, "GET", f"{NEW}?fieldSelector=regarding.name%3Dpod-sel")) == ["ev-sel-1", "ev-sel-2"]
    assert names(ok(api, "GET", f"{CORE}?fieldSelector=involvedObject.name%3Dpod-sel")) == ["ev-sel-1", "ev-sel-2"]
    assert names(ok(api, "GET", f"{NEW}?fieldSelector=reportingController%3Dexample.com/operator,"
                                f"regarding.name%3Dpod-other")) == ["ev-sel-3"]
    every = ok(api, "GET", NEW)
    assert every["kind"] == "EventList" and every["apiVersion"] == "events.k8s.io/v1"
    assert {"ev-sel-1", "ev-sel-2", "ev-sel-3"} <= set(names(every))
    assert all(i["apiVersion"] == "events.k8s.io/v1" or "apiVersion" not in i for i in every["items"])
    # A label of the other shape is refused, as upstream refuses unknown field labels.
    code, status, _ = api.request("GET", f"{NEW}?fieldSelector=involvedObject.name%3Dpod-sel")
    assert code == 400 and status["reason"] == "BadRequest"


@pytest.mark.parametrize(("change", "field"), [
    ({"eventTime": None}, "eventTime"),
    ({"reportingController": ""}, "reportingController"),
    ({"action": ""}, "action"),
    ({"type": "Bad"}, "type"),
    ({"deprecatedCount": 3}, "deprecatedCount"),
])
def test_events_k8s_io_creates_are_validated_and_change_nothing(api: APICluster, change: dict, field: str) -> None:
    body = new_event("ev-bad", "pod-c")
    body.update(change)
    code, status, _ = api.request("POST", NEW, body)
    assert code == 422 and status["reason"] == "Invalid", status
    assert field in {c["field"] for c in status["details"]["causes"]}
    assert api.request("GET", f"{CORE}/ev-bad")[0] == 404


def test_python_client_events_v1_and_watch_across_shapes(api: APICluster) -> None:
    kube = k8s_config.new_client_from_config(config_file=str(api.kubeconfig))
    events_v1 = k8s.EventsV1Api(kube)
    core_v1 = k8s.CoreV1Api(kube)
    start = core_v1.list_namespaced_event(NS).metadata.resource_version
    seen: list[tuple[str, str, str]] = []

    def watch() -> None:
        w = k8s_watch.Watch()
        for ev in w.stream(events_v1.list_namespaced_event, NS, resource_version=start, timeout_seconds=10):
            seen.append((ev["type"], ev["object"].metadata.name, ev["object"].note or ""))
            if ev["object"].metadata.name == "ev-py-core":
                w.stop()

    reader = threading.Thread(target=watch)
    reader.start()
    created = events_v1.create_namespaced_event(NS, k8s.EventsV1Event(
        metadata=k8s.V1ObjectMeta(name="ev-py"), event_time=datetime.now(timezone.utc),
        reporting_controller="example.com/py", reporting_instance="py-1", action="Test", reason="Tested",
        type="Normal", note="from the python client",
        regarding=k8s.V1ObjectReference(kind="Pod", namespace=NS, name="pod-py")))
    assert created.note == "from the python client" and created.event_time is not None
    assert core_v1.read_namespaced_event("ev-py", NS).message == "from the python client"
    body = core_event("ev-py-core", "pod-py")
    body["eventTime"] = "2026-11-27T06:03:00.000000Z"  # the Python model of events.k8s.io requires it
    ok(api, "POST", CORE, body)
    reader.join(15)
    assert ("ADDED", "ev-py", "from the python client") in seen
    assert ("ADDED", "ev-py-core", "pulled for pod-py") in seen
