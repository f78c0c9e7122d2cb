"""Server-side Table conversion (``meta.k8s.io/v1`` Table): the rows ``kubectl get`` prints.

kubectl asks for ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io`` and prints the cells it
gets verbatim, so the column sets, cell texts and cell JSON types here follow the kube-apiserver's
printers (``pkg/printers/internalversion/printers.go`` as of Kubernetes 1.32), its default
convertor (``rest.NewDefaultTableConvertor``) and the apiextensions convertor for custom resources.

Facts that shape this module:

- The apiserver always prints with ``Wide: true``: every row carries the cells of the priority-1
  columns too, and kubectl drops those columns unless ``-o wide``. There is no "wide" switch here.
- Upstream prints *internal* objects, i.e. after the v1 decoder applied defaults. Objects stored
  here may lack a defaulted field (``spec.replicas``, a port's ``protocol``, a Service's ``type``),
  so each printer applies the few defaults that change what it prints; anything else missing reads
  as Go's zero value (``0``, ``""``, ``<none>``). Partial or malformed objects never raise.
- Cells keep upstream's JSON types, which do not always match the column's declared type (the
  Deployment "Up-to-date" column is declared ``string`` but its cells are integers).
- Ages use ``duration.HumanDuration`` against the caller's ``now``; nothing here reads the clock.

The returned Table shares sub-objects (metadata, whole objects) with the input: it is meant to be
serialised, not mutated.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, Final

from .errors import StatusError, bad_request
from .gofmt import go_float, go_quote
from .meta import parse_rfc3339
from .quantity import canonical_quantity
from .registry import ResourceType
from .selectors import LabelSelector

__all__ = [
    "Column",
    "INCLUDE_OBJECT_VALUES",
    "human_duration",
    "translate_timestamp_since",
    "column_definitions",
    "to_table",
    "custom_columns_table",
    "jsonpath_find",
]

INCLUDE_OBJECT_VALUES: Final = ("None", "Metadata", "Object")


# ---------------------------------------------------------------------------------------------
# Durations and timestamps (k8s.io/apimachinery/pkg/util/duration)

_SECOND: Final = 10**9
_MINUTE: Final = 60 * _SECOND
_HOUR: Final = 60 * _MINUTE
_GO_DURATION_MIN: Final = -(2**63)
_GO_DURATION_MAX: Final = 2**63 - 1
_ZERO_TIME: Final = datetime(1, 1, 1, tzinfo=UTC)


def human_duration(delta: timedelta) -> str:
    """``duration.HumanDuration``: about 2-3 significant figures (``5s``, ``3m20s``, ``2d3h``, ``3y21d``).

    Go's ``time.Since`` saturates at the int64-nanosecond range, so huge ages print as ``292y`` and
    anything more than a second in the future as ``<invalid>``, exactly like upstream.
    """
    ns = ((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds) * 1_000
    ns = max(_GO_DURATION_MIN, min(ns, _GO_DURATION_MAX))
    seconds = abs(ns) // _SECOND * (1 if ns >= 0 else -1)  # Go's int() truncates toward zero
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = ns // _MINUTE
    if minutes < 10:
        s = ns // _SECOND % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = ns // _HOUR
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = hours // 24 % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def _parse_time(value: Any) -> datetime | None:
    """A ``metav1.Time``/``MicroTime`` from JSON, or ``None`` for missing, zero or unparsable values."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = parse_rfc3339(value)
    except ValueError:
        return None
    return None if parsed == _ZERO_TIME else parsed


def _aware(now: datetime) -> datetime:
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


def translate_timestamp_since(timestamp: Any, now: datetime) -> str:
    """``translateTimestampSince``: the AGE text of a JSON timestamp, ``<unknown>`` when unset."""
    parsed = _parse_time(timestamp)
    if parsed is None:
        return "<unknown>"
    return human_duration(_aware(now) - parsed)


# ---------------------------------------------------------------------------------------------
# Tolerant access to decoded JSON: a wrong type reads as Go's zero value, never raises

_EMPTY: Final[Mapping[str, Any]] = MappingProxyType({})


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _map(obj: Any, *path: str) -> Mapping[str, Any]:
    value = _get(obj, *path)
    return value if isinstance(value, Mapping) else _EMPTY


def _maps(obj: Any, *path: str) -> list[Mapping[str, Any]]:
    value = _get(obj, *path)
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _strs(obj: Any, *path: str) -> list[str]:
    value = _get(obj, *path)
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _str(obj: Any, *path: str, default: str = "") -> str:
    value = _get(obj, *path)
    return value if isinstance(value, str) and value else default


def _int(obj: Any, *path: str, default: int = 0) -> int:
    value = _get(obj, *path)
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return default


def _has(obj: Any, *path: str) -> bool:
    """A Go pointer/struct-pointer field that is set (``!= nil``): present and not ``null``."""
    return _get(obj, *path) is not None


def _true(obj: Any, *path: str) -> bool:
    return _get(obj, *path) is True


def _name(obj: Mapping[str, Any]) -> str:
    return _str(obj, "metadata", "name")


def _age(obj: Mapping[str, Any], now: datetime) -> str:
    return translate_timestamp_since(_get(obj, "metadata", "creationTimestamp"), now)


# ---------------------------------------------------------------------------------------------
# Shared cell formats


def _quantity(value: Any) -> str:
    """``Quantity.String()``; a missing map entry is the zero quantity, ``0``."""
    if value is None:
        return "0"
    try:
        return canonical_quantity(value)
    except (ValueError, TypeError, ArithmeticError):
        return str(value)


def _quantity_ptr(value: Any) -> str:
    """``(*Quantity).String()`` of an optional field: a nil pointer prints ``<nil>``."""
    return "<nil>" if value is None else _quantity(value)


def _format_labels(labels: Any) -> str:
    """``labels.FormatLabels``: sorted ``k=v`` pairs, ``<none>`` when empty."""
    if not isinstance(labels, Mapping) or not labels:
        return "<none>"
    return ",".join(f"{k}={_go_text(labels[k])}" for k in sorted(labels, key=str))


def _selector_string(selector: Any) -> str | None:
    """``LabelSelectorAsSelector(sel).String()``, or ``None`` when the selector is invalid.

    A nil selector selects nothing and an empty one everything; both print as ``""``.
    """
    try:
        return LabelSelector.from_structured(selector if isinstance(selector, Mapping) else None).to_string()
    except (StatusError, TypeError, AttributeError, ValueError):
        return None


def _format_label_selector(selector: Any) -> str:
    """``metav1.FormatLabelSelector``: ``<none>`` for an empty result, ``<error>`` for an invalid one."""
    text = _selector_string(selector)
    if text is None:
        return "<error>"
    return text or "<none>"


def _containers(pod_spec: Mapping[str, Any]) -> tuple[str, str]:
    """``layoutContainerCells``: container names and images, comma-joined in spec order."""
    containers = _maps(pod_spec, "containers")
    return ",".join(_str(c, "name") for c in containers), ",".join(_str(c, "image") for c in containers)


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _list_with_more(items: list[str], more: bool, count: int, limit: int) -> str:
    text = ",".join(items)
    if more:
        return f"{text} + {count - limit} more..."
    return text or "<unset>"


def _go_text(value: Any) -> str:
    """Go's ``fmt.Sprint`` of a decoded JSON value (what JSONPath printing and ``%v`` produce)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if value is None:
        return "<nil>"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{_go_text(value[k])}" for k in sorted(value, key=str)) + "]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(_go_text(v) for v in value) + "]"
    return str(value)


def _load_balancer_ingress(status: Mapping[str, Any]) -> str:
    """Sorted, de-duplicated IPs (else hostnames) of ``status.loadBalancer.ingress``.

    Upstream clips this to 16 characters only for non-wide output, which the server never uses.
    """
    found: set[str] = set()
    for ingress in _maps(status, "loadBalancer", "ingress"):
        ip, hostname = _str(ingress, "ip"), _str(ingress, "hostname")
        if ip:
            found.add(ip)
        elif hostname:
            found.add(hostname)
    return ",".join(sorted(found))


def _access_modes(modes: list[str]) -> str:
    """``helper.GetAccessModesAsString``: fixed order, abbreviations, duplicates dropped."""
    short = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"),
             ("ReadWriteOncePod", "RWOP"))
    return ",".join(abbrev for mode, abbrev in short if mode in modes)


# ---------------------------------------------------------------------------------------------
# Column descriptions: upstream fills them from the API types' SwaggerDoc() (k8s.io/api v0.32),
# keyed here as "<api group dir>/<Type>.<field>".

_SWAGGER: Final = MappingProxyType({
    "meta/ObjectMeta.name": (
        "Name must be unique within a namespace. Is required when creating resources, although some resources "
        "may allow a client to request the generation of an appropriate name automatically. Name is primarily "
        "intended for creation idempotence and configuration definition. Cannot be updated. More info: "
        "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
    ),
    "meta/ObjectMeta.creationTimestamp": (
        "CreationTimestamp is a timestamp representing the server time when this object was created. It is not "
        "guaranteed to be set in happens-before order across separate operations. Clients may not set this "
        "value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null "
        "for lists. More info: "
        "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
    ),
    "core/PodStatus.podIP": (
        "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated."
    ),
    "core/PodStatus.nominatedNodeName": (
        "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be "
        "scheduled right away as preemption victims receive their graceful termination periods. This field does "
        "not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod "
        "elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on "
        "this node to a higher priority pod that is created after preemption. As a result, this field may be "
        "different than PodSpec.nodeName when the pod is scheduled."
    ),
    "core/PodSpec.nodeName": (
        "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for "
        "scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this "
        "node becomes responsible for the lifecycle of this pod. This field should not be used to express a "
        "desire for the pod to be scheduled on a specific node. "
        "https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename"
    ),
    "core/PodSpec.readinessGates": (
        "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its "
        "containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" "
        "More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates"
    ),
    "core/PodSpec.nodeSelector": (
        "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match "
        "a node's labels for the pod to be scheduled on that node. More info: "
        "https://kubernetes.io/docs/concepts/configuration/assign-pod-node/"
    ),
    "core/ReplicationControllerSpec.replicas": (
        "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and "
        "unspecified. Defaults to 1. More info: "
        "https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller"
    ),
    "core/ReplicationControllerSpec.selector": (
        "Selector is a label query over pods that should match the Replicas count. If Selector is empty, it is "
        "defaulted to the labels present on the Pod template. Label keys and values that must match in order to "
        "be controlled by this replication controller, if empty defaulted to labels on Pod template. More info: "
        "https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"
    ),
    "core/ReplicationControllerStatus.replicas": (
        "Replicas is the most recently observed number of replicas. More info: "
        "https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller"
    ),
    "core/ReplicationControllerStatus.readyReplicas": "The number of ready replicas for this replication controller.",
    "core/ServiceSpec.type": (
        "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, "
        "ClusterIP, NodePort, and LoadBalancer. \"ClusterIP\" allocates a cluster-internal IP address for "
        "load-balancing to endpoints. Endpoints are determined by the selector or if that is not specified, by "
        "manual construction of an Endpoints object or EndpointSlice objects. If clusterIP is \"None\", no "
        "virtual IP is allocated and the endpoints are published as a set of endpoints rather than a virtual "
        "IP. \"NodePort\" builds on ClusterIP and allocates a port on every node which routes to the same "
        "endpoints as the clusterIP. \"LoadBalancer\" builds on NodePort and creates an external load-balancer "
        "(if supported in the current cloud) which routes to the same endpoints as the clusterIP. "
        "\"ExternalName\" aliases this service to the specified externalName. Several other fields do not apply "
        "to ExternalName services. More info: "
        "https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types"
    ),
    "core/ServiceSpec.clusterIP": (
        "clusterIP is the IP address of the service and is usually assigned randomly. If an address is "
        "specified manually, is in-range (as per system configuration), and is not in use, it will be allocated "
        "to the service; otherwise creation of the service will fail. This field may not be changed through "
        "updates unless the type field is also being changed to ExternalName (which requires this field to be "
        "blank) or the type field is being changed from ExternalName (in which case this field may optionally "
        "be specified, as describe above).  Valid values are \"None\", empty string (\"\"), or a valid IP "
        "address. Setting this to \"None\" makes a \"headless service\" (no virtual IP), which is useful when "
        "direct endpoint connections are preferred and proxying is not required.  Only applies to types "
        "ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service of type "
        "ExternalName, creation will fail. This field will be wiped when updating a Service to type "
        "ExternalName. More info: "
        "https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies"
    ),
    "core/ServiceSpec.externalIPs": (
        "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this "
        "service.  These IPs are not managed by Kubernetes.  The user is responsible for ensuring that traffic "
        "arrives at a node with this IP.  A common example is external load-balancers that are not part of the "
        "Kubernetes system."
    ),
    "core/ServiceSpec.ports": (
        "The list of ports that are exposed by this service. More info: "
        "https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies"
    ),
    "core/ServiceSpec.selector": (
        "Route service traffic to pods with label keys and values matching this selector. If empty or not "
        "present, the service is assumed to have an external process managing its endpoints, which Kubernetes "
        "will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is "
        "ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/"
    ),
    "core/Endpoints.subsets": (
        "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to "
        "the IPs they share. A single address with multiple ports, some of which are ready and some of which "
        "are not (because they come from different containers) will result in the address being displayed in "
        "different subsets for the different ports. No address will appear in both Addresses and "
        "NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service."
    ),
    "core/NodeSystemInfo.kubeletVersion": "Kubelet Version reported by the node.",
    "core/NodeSystemInfo.osImage": (
        "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy))."
    ),
    "core/NodeSystemInfo.kernelVersion": (
        "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)."
    ),
    "core/NodeSystemInfo.containerRuntimeVersion": (
        "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2)."
    ),
    "core/NodeStatus.addresses": (
        "List of addresses reachable to the node. Queried from cloud provider, if available. More info: "
        "https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as "
        "mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is "
        "merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an "
        "example. Consumers should assume that addresses can change during the lifetime of a Node. However, "
        "there are some exceptions where this may not be possible, such as Pods that inherit a Node's address "
        "in its own status or consumers of the downward API (status.hostIP)."
    ),
    "core/Event.lastTimestamp": "The time at which the most recent occurrence of this event was recorded.",
    "core/Event.type": "Type of this event (Normal, Warning), new types could be added in the future",
    "core/Event.reason": (
        "This should be a short, machine understandable string that gives the reason for the transition into "
        "the object's current status."
    ),
    "core/Event.involvedObject": "The object that this event is about.",
    "core/Event.source": "The component reporting this event. Should be a short machine understandable string.",
    "core/Event.message": "A human-readable description of the status of this operation.",
    "core/Event.firstTimestamp": (
        "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)"
    ),
    "core/Event.count": "The number of times this event has occurred.",
    "core/ObjectReference.fieldPath": (
        "If referring to a piece of an object instead of an entire object, this string should contain a valid "
        "JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the "
        "object reference is to a container within a pod, this would take on a value like: "
        "\"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the "
        "event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this "
        "pod). This syntax is chosen only to have some well-defined way of referencing a part of an object."
    ),
    "core/Secret.type": (
        "Used to facilitate programmatic handling of secret data. More info: "
        "https://kubernetes.io/docs/concepts/configuration/secret/#secret-types"
    ),
    "core/Secret.data": (
        "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The "
        "serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly "
        "non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4"
    ),
    "core/ServiceAccount.secrets": (
        "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are "
        "allowed to use. Pods are only limited to this list if this service account has a "
        "\"kubernetes.io/enforce-mountable-secrets\" annotation set to \"true\". The "
        "\"kubernetes.io/enforce-mountable-secrets\" annotation is deprecated since v1.32. Prefer separate "
        "namespaces to isolate access to mounted secrets. This field should not be used to find auto-generated "
        "service account token secrets for use outside of pods. Instead, tokens can be requested directly using "
        "the TokenRequest API, or service account token secrets can be manually created. More info: "
        "https://kubernetes.io/docs/concepts/configuration/secret"
    ),
    "core/PersistentVolumeSpec.capacity": (
        "capacity is the description of the persistent volume's resources and capacity. More info: "
        "https://kubernetes.io/docs/concepts/storage/persistent-volumes#capacity"
    ),
    "core/PersistentVolumeSpec.accessModes": (
        "accessModes contains all ways the volume can be mounted. More info: "
        "https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes"
    ),
    "core/PersistentVolumeSpec.persistentVolumeReclaimPolicy": (
        "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its "
        "claim. Valid options are Retain (default for manually created PersistentVolumes), Delete (default for "
        "dynamically provisioned PersistentVolumes), and Recycle (deprecated). Recycle must be supported by the "
        "volume plugin underlying this PersistentVolume. More info: "
        "https://kubernetes.io/docs/concepts/storage/persistent-volumes#reclaiming"
    ),
    "core/PersistentVolumeSpec.claimRef": (
        "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim. "
        "Expected to be non-nil when bound. claim.VolumeName is the authoritative bind between PV and PVC. More "
        "info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#binding"
    ),
    "core/PersistentVolumeSpec.volumeMode": (
        "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw "
        "block state. Value of Filesystem is implied when not included in spec."
    ),
    "core/PersistentVolumeStatus.phase": (
        "phase indicates if a volume is available, bound to a claim, or released by a claim. More info: "
        "https://kubernetes.io/docs/concepts/storage/persistent-volumes#phase"
    ),
    "core/PersistentVolumeStatus.reason": (
        "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and "
        "tidy display in the CLI."
    ),
    "core/PersistentVolumeClaimStatus.phase": "phase represents the current phase of PersistentVolumeClaim.",
    "core/PersistentVolumeClaimStatus.capacity": "capacity represents the actual resources of the underlying volume.",
    "core/PersistentVolumeClaimStatus.accessModes": (
        "accessModes contains the actual access modes the volume backing the PVC has. More info: "
        "https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes-1"
    ),
    "core/PersistentVolumeClaimSpec.volumeName": (
        "volumeName is the binding reference to the PersistentVolume backing this claim."
    ),
    "core/PersistentVolumeClaimSpec.volumeMode": (
        "volumeMode defines what type of volume is required by the claim. Value of Filesystem is implied when "
        "not included in claim spec."
    ),
    "core/ConfigMap.data": (
        "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or "
        "'.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must "
        "not overlap with the keys in the BinaryData field, this is enforced during validation process."
    ),
    "extensions/ReplicaSetSpec.replicas": (
        "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and "
        "unspecified. Defaults to 1. More info: "
        "https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller"
    ),
    "extensions/ReplicaSetSpec.selector": (
        "Selector is a label query over pods that should match the replica count. If the selector is empty, it "
        "is defaulted to the labels present on the pod template. Label keys and values that must match in order "
        "to be controlled by this replica set. More info: "
        "https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"
    ),
    "extensions/ReplicaSetStatus.replicas": (
        "Replicas is the most recently observed number of replicas. More info: "
        "https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller"
    ),
    "extensions/ReplicaSetStatus.readyReplicas": "The number of ready replicas for this replica set.",
    "extensions/DaemonSetStatus.desiredNumberScheduled": (
        "The total number of nodes that should be running the daemon pod (including nodes correctly running the "
        "daemon pod). More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/"
    ),
    "extensions/DaemonSetStatus.currentNumberScheduled": (
        "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod. "
        "More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/"
    ),
    "extensions/DaemonSetStatus.numberReady": (
        "The number of nodes that should be running the daemon pod and have one or more of the daemon pod "
        "running and ready."
    ),
    "extensions/DaemonSetStatus.updatedNumberScheduled": (
        "The total number of nodes that are running updated daemon pod"
    ),
    "extensions/DaemonSetStatus.numberAvailable": (
        "The number of nodes that should be running the daemon pod and have one or more of the daemon pod "
        "running and available (ready for at least spec.minReadySeconds)"
    ),
    "extensions/DaemonSetSpec.selector": (
        "A label query over pods that are managed by the daemon set. Must match in order to be controlled. If "
        "empty, defaulted to labels on Pod template. More info: "
        "https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"
    ),
    "extensions/DeploymentStatus.updatedReplicas": (
        "Total number of non-terminated pods targeted by this deployment that have the desired template spec."
    ),
    "extensions/DeploymentStatus.availableReplicas": (
        "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."
    ),
    "extensions/DeploymentSpec.selector": (
        "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones "
        "affected by this deployment."
    ),
    "extensions/NetworkPolicySpec.podSelector": (
        "Selects the pods to which this NetworkPolicy object applies.  The array of ingress rules is applied to "
        "any pods selected by this field. Multiple network policies can select the same set of pods.  In this "
        "case, the ingress rules for each are combined additively. This field is NOT optional and follows "
        "standard label selector semantics. An empty podSelector matches all pods in this namespace."
    ),
    "batch/JobStatus.succeeded": (
        "The number of pods which reached phase Succeeded. The value increases monotonically for a given spec. "
        "However, it may decrease in reaction to scale down of elastic indexed jobs."
    ),
    "batch/JobSpec.selector": (
        "A label query over pods that should match the pod count. Normally, the system sets this field for you. "
        "More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"
    ),
    "batch/CronJobSpec.schedule": "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.",
    "batch/CronJobSpec.timeZone": (
        "The time zone name for the given schedule, see "
        "https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, this will default to "
        "the time zone of the kube-controller-manager process. The set of valid time zone names and the time "
        "zone offset is loaded from the system-wide time zone database by the API server during CronJob "
        "validation and the controller manager during execution. If no system-wide time zone database can be "
        "found a bundled version of the database is used instead. If the time zone name becomes invalid during "
        "the lifetime of a CronJob or due to a change in host configuration, the controller will stop creating "
        "new new Jobs and will create a system event with the reason UnknownTimeZone. More information can be "
        "found in https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#time-zones"
    ),
    "batch/CronJobSpec.suspend": (
        "This flag tells the controller to suspend subsequent executions, it does not apply to already started "
        "executions.  Defaults to false."
    ),
    "batch/CronJobStatus.active": "A list of pointers to currently running jobs.",
    "batch/CronJobStatus.lastScheduleTime": "Information when was the last time the job was successfully scheduled.",
    "autoscaling/HorizontalPodAutoscalerSpec.scaleTargetRef": (
        "scaleTargetRef points to the target resource to scale, and is used to the pods for which metrics "
        "should be collected, as well as to actually change the replica count."
    ),
    "autoscaling/HorizontalPodAutoscalerSpec.metrics": (
        "metrics contains the specifications for which to use to calculate the desired replica count (the "
        "maximum replica count across all metrics will be used).  The desired replica count is calculated "
        "multiplying the ratio between the target value and the current value by the current number of pods.  "
        "Ergo, metrics used must decrease as the pod count is increased, and vice-versa.  See the individual "
        "metric source types for more information about how each type of metric must respond."
    ),
    "autoscaling/HorizontalPodAutoscalerSpec.minReplicas": (
        "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down.  It "
        "defaults to 1 pod.  minReplicas is allowed to be 0 if the alpha feature gate HPAScaleToZero is enabled "
        "and at least one Object or External metric is configured.  Scaling is active as long as at least one "
        "metric value is available."
    ),
    "autoscaling/HorizontalPodAutoscalerSpec.maxReplicas": (
        "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up. It "
        "cannot be less that minReplicas."
    ),
    "autoscaling/HorizontalPodAutoscalerStatus.currentReplicas": (
        "currentReplicas is current number of replicas of pods managed by this autoscaler, as last seen by the "
        "autoscaler."
    ),
    "rbac/RoleBinding.roleRef": (
        "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. If the "
        "RoleRef cannot be resolved, the Authorizer must return an error."
    ),
    "rbac/ClusterRoleBinding.roleRef": (
        "RoleRef can only reference a ClusterRole in the global namespace. If the RoleRef cannot be resolved, "
        "the Authorizer must return an error."
    ),
    "coordination/LeaseSpec.holderIdentity": (
        "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election "
        "is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field."
    ),
    "storage/StorageClass.provisioner": "provisioner indicates the type of the provisioner.",
    "storage/StorageClass.reclaimPolicy": (
        "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage "
        "class. Defaults to Delete."
    ),
    "storage/StorageClass.volumeBindingMode": (
        "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound.  When unset, "
        "VolumeBindingImmediate is used. This field is only honored by servers that enable the VolumeScheduling "
        "feature."
    ),
    "storage/StorageClass.allowVolumeExpansion": (
        "allowVolumeExpansion shows whether the storage class allow volume expand."
    ),
    "apps/ControllerRevision.revision": "revision indicates the revision of the state represented by Data.",
    "scheduling/PriorityClass.value": (
        "value represents the integer value of this priority class. This is the actual priority that pods "
        "receive when they have the name of this class in their pod spec."
    ),
    "scheduling/PriorityClass.globalDefault": (
        "globalDefault specifies whether this PriorityClass should be considered as the default priority for "
        "pods that do not have any priority class. Only one PriorityClass can be marked as `globalDefault`. "
        "However, if more than one PriorityClasses exists with their `globalDefault` field set to true, the "
        "smallest value of such global default PriorityClasses will be used as the default priority."
    ),
    "scheduling/PriorityClass.preemptionPolicy": (
        "preemptionPolicy is the Policy for preempting pods with lower priority. One of Never, "
        "PreemptLowerPriority. Defaults to PreemptLowerPriority if unset."
    ),
    "discovery/EndpointSlice.addressType": (
        "addressType specifies the type of address carried by this EndpointSlice. All addresses in this slice "
        "must be the same type. This field is immutable after creation. The following address types are "
        "currently supported: * IPv4: Represents an IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: "
        "Represents a Fully Qualified Domain Name."
    ),
    "discovery/EndpointSlice.ports": (
        "ports specifies the list of network ports exposed by each endpoint in this slice. Each port must have "
        "a unique name. When ports is empty, it indicates that there are no defined ports. When a port is "
        "defined with a nil port value, it indicates \"all ports\". Each slice may include a maximum of 100 "
        "ports."
    ),
    "discovery/EndpointSlice.endpoints": (
        "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of 1000 "
        "endpoints."
    ),
})


# ---------------------------------------------------------------------------------------------
# Columns


@dataclass(frozen=True, slots=True)
class Column:
    """A ``TableColumnDefinition``. ``priority=1`` columns are shown by kubectl only with ``-o wide``."""

    name: str
    type: str
    description: str
    priority: int = 0
    format: str = ""

    def to_json(self) -> dict[str, Any]:
        # Every field is serialised, empty or not: the Go struct has no omitempty tags.
        return {"name": self.name, "type": self.type, "format": self.format,
                "description": self.description, "priority": self.priority}


def _doc(key: str) -> str:
    return _SWAGGER.get(key, "")


_NAME: Final = Column("Name", "string", _doc("meta/ObjectMeta.name"), format="name")
_AGE: Final = Column("Age", "string", _doc("meta/ObjectMeta.creationTimestamp"))
_CONTAINERS: Final = Column("Containers", "string", "Names of each container in the template.", 1)
_IMAGES: Final = Column("Images", "string", "Images referenced by each container in the template.", 1)


def _c(name: str, type_: str, doc_key: str, priority: int = 0) -> Column:
    """A column whose description is a SwaggerDoc entry (``group/Type.field``)."""
    return Column(name, type_, _doc(doc_key), priority)


def _lit(name: str, type_: str, description: str, priority: int = 0) -> Column:
    return Column(name, type_, description, priority)


# ---------------------------------------------------------------------------------------------
# Printers, one per kind. Each returns all cells (wide ones included) for one object.

Cells = list[Any]
_PrintFn = Callable[[Mapping[str, Any], datetime], Cells]

# Row conditions upstream attaches to finished pods (RowCompleted).
_POD_SUCCEEDED_CONDITIONS: Final = (MappingProxyType({"type": "Completed", "status": "True", "reason": "Succeeded",
                                                      "message": "The pod has completed successfully."}),)
_POD_FAILED_CONDITIONS: Final = (MappingProxyType({"type": "Completed", "status": "True", "reason": "Failed",
                                                   "message": "The pod failed."}),)


def _condition_true(conditions: list[Mapping[str, Any]], type_: str) -> bool:
    """The first condition of ``type_`` decides (``hasJobCondition``/``isPodInitializedConditionTrue``)."""
    for condition in conditions:
        if condition.get("type") == type_:
            return condition.get("status") == "True"
    return False


def _later(current: datetime | None, candidate: Any) -> datetime | None:
    """``if last.Before(&finishedAt) { last = finishedAt }`` with zero times as ``None``."""
    parsed = _parse_time(candidate)
    if parsed is None:
        return current
    return parsed if current is None or current < parsed else current


def _is_restartable_init(container: Mapping[str, Any] | None) -> bool:
    """A sidecar: an init container with ``restartPolicy: Always``."""
    return container is not None and container.get("restartPolicy") == "Always"


def _pod_status_reason(pod: Mapping[str, Any]) -> tuple[str, int, int, int, datetime | None]:
    """The STATUS text, ready and total container counts, restarts and last restart, as ``printPod``."""
    spec, status = _map(pod, "spec"), _map(pod, "status")
    # The pod strategy sets phase Pending on create, so an unset phase reads as Pending.
    reason = _str(status, "reason") or _str(status, "phase", default="Pending")
    conditions = _maps(status, "conditions")
    for condition in conditions:
        if condition.get("type") == "PodScheduled" and condition.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    total = len(_maps(spec, "containers"))
    init_specs = _maps(spec, "initContainers")
    init_by_name: dict[str, Mapping[str, Any]] = {}
    for container in init_specs:
        init_by_name[_str(container, "name")] = container
        if _is_restartable_init(container):
            total += 1

    ready = restarts = sidecar_restarts = 0
    last_restart: datetime | None = None
    last_sidecar_restart: datetime | None = None
    initializing = False
    for i, cs in enumerate(_maps(status, "initContainerStatuses")):
        restarts += _int(cs, "restartCount")
        last_restart = _later(last_restart, _get(cs, "lastState", "terminated", "finishedAt"))
        sidecar = _is_restartable_init(init_by_name.get(_str(cs, "name")))
        if sidecar:
            sidecar_restarts += _int(cs, "restartCount")
            last_sidecar_restart = _later(last_sidecar_restart,
                                          _get(cs, "lastState", "terminated", "finishedAt"))
        terminated, waiting = _get(cs, "state", "terminated"), _get(cs, "state", "waiting")
        if isinstance(terminated, Mapping) and _int(terminated, "exitCode") == 0:
            continue
        if sidecar and _true(cs, "started"):
            if _true(cs, "ready"):
                ready += 1
            continue
        if isinstance(terminated, Mapping):
            # initialization failed
            if _str(terminated, "reason"):
                reason = "Init:" + _str(terminated, "reason")
            elif _int(terminated, "signal"):
                reason = f"Init:Signal:{_int(terminated, 'signal')}"
            else:
                reason = f"Init:ExitCode:{_int(terminated, 'exitCode')}"
        elif isinstance(waiting, Mapping) and _str(waiting, "reason") and waiting.get("reason") != "PodInitializing":
            reason = "Init:" + _str(waiting, "reason")
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _condition_true(conditions, "Initialized"):
        restarts, last_restart = sidecar_restarts, last_sidecar_restart
        has_running = False
        # Walked backwards, so the first container's state has the last word.
        for cs in reversed(_maps(status, "containerStatuses")):
            restarts += _int(cs, "restartCount")
            last_restart = _later(last_restart, _get(cs, "lastState", "terminated", "finishedAt"))
            terminated, waiting = _get(cs, "state", "terminated"), _get(cs, "state", "waiting")
            if isinstance(waiting, Mapping) and _str(waiting, "reason"):
                reason = _str(waiting, "reason")
            elif isinstance(terminated, Mapping) and _str(terminated, "reason"):
                reason = _str(terminated, "reason")
            elif isinstance(terminated, Mapping):
                signal = _int(terminated, "signal")
                reason = f"Signal:{signal}" if signal else f"ExitCode:{_int(terminated, 'exitCode')}"
            elif _true(cs, "ready") and _has(cs, "state", "running"):
                has_running = True
                ready += 1
        # Back to Running if at least one container still runs.
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(conditions, "Ready") else "NotReady"

    if _has(pod, "metadata", "deletionTimestamp"):
        if _str(status, "reason") == "NodeLost":
            reason = "Unknown"
        elif _str(status, "phase") not in ("Succeeded", "Failed"):
            reason = "Terminating"
    return reason, ready, total, restarts, last_restart


def _print_pod(pod: Mapping[str, Any], now: datetime) -> Cells:
    reason, ready, total, restarts, last_restart = _pod_status_reason(pod)
    restarts_text = str(restarts)
    if restarts != 0 and last_restart is not None:
        restarts_text = f"{restarts} ({human_duration(_aware(now) - last_restart)} ago)"

    spec, status = _map(pod, "spec"), _map(pod, "status")
    # The v1 decoder makes status.podIP authoritative and fills podIPs from it.
    pod_ip = _str(status, "podIP") or next((_str(p, "ip") for p in _maps(status, "podIPs")), "")
    gates = _maps(spec, "readinessGates")
    readiness_gates = "<none>"
    if gates:
        conditions = _maps(status, "conditions")
        true_count = 0
        for gate in gates:
            for condition in conditions:
                if condition.get("type") == gate.get("conditionType"):
                    true_count += condition.get("status") == "True"
                    break
        readiness_gates = f"{true_count}/{len(gates)}"
    return [_name(pod), f"{ready}/{total}", reason, restarts_text, _age(pod, now),
            pod_ip or "<none>", _str(spec, "nodeName", default="<none>"),
            _str(status, "nominatedNodeName", default="<none>"), readiness_gates]


def _pod_conditions(pod: Mapping[str, Any]) -> tuple[Mapping[str, str], ...] | None:
    phase = _get(pod, "status", "phase")
    if phase == "Succeeded":
        return _POD_SUCCEEDED_CONDITIONS
    if phase == "Failed":
        return _POD_FAILED_CONDITIONS
    return None


def _print_node(node: Mapping[str, Any], now: datetime) -> Cells:
    ready_status: str | None = None
    for condition in _maps(node, "status", "conditions"):
        if condition.get("type") == "Ready":  # the last one wins, as in upstream's map
            ready_status = "Ready" if condition.get("status") == "True" else "NotReady"
    status = [ready_status or "Unknown"]
    if _true(node, "spec", "unschedulable"):
        status.append("SchedulingDisabled")

    roles: set[str] = set()
    for key, value in _map(node, "metadata", "labels").items():
        if key.startswith("node-role.kubernetes.io/") and key[len("node-role.kubernetes.io/"):]:
            roles.add(key[len("node-role.kubernetes.io/"):])
        elif key == "kubernetes.io/role" and isinstance(value, str) and value:
            roles.add(value)

    def address(kind: str) -> str:
        for addr in _maps(node, "status", "addresses"):
            if addr.get("type") == kind:
                return _str(addr, "address")
        return "<none>"

    info = _map(node, "status", "nodeInfo")
    return [_name(node), ",".join(status), ",".join(sorted(roles)) or "<none>", _age(node, now),
            _str(info, "kubeletVersion"), address("InternalIP"), address("ExternalIP"),
            _str(info, "osImage", default="<unknown>"), _str(info, "kernelVersion", default="<unknown>"),
            _str(info, "containerRuntimeVersion", default="<unknown>")]


def _service_external_ip(spec: Mapping[str, Any], status: Mapping[str, Any], svc_type: str) -> str:
    external_ips = _strs(spec, "externalIPs")
    if svc_type in ("ClusterIP", "NodePort"):
        return ",".join(external_ips) if external_ips else "<none>"
    if svc_type == "LoadBalancer":
        lb_ips = _load_balancer_ingress(status)
        if external_ips:
            return ",".join((lb_ips.split(",") if lb_ips else []) + external_ips)
        return lb_ips or "<pending>"
    if svc_type == "ExternalName":
        return _str(spec, "externalName")
    return "<unknown>"


def _print_service(svc: Mapping[str, Any], now: datetime) -> Cells:
    spec, status = _map(svc, "spec"), _map(svc, "status")
    svc_type = _str(spec, "type", default="ClusterIP")
    # The v1 decoder makes spec.clusterIP authoritative and fills clusterIPs from it.
    cluster_ip = _str(spec, "clusterIP") or next(iter(_strs(spec, "clusterIPs")), "") or "<none>"
    ports = []
    for port in _maps(spec, "ports"):
        protocol = _str(port, "protocol", default="TCP")
        node_port = _int(port, "nodePort")
        if node_port > 0:
            ports.append(f"{_int(port, 'port')}:{node_port}/{protocol}")
        else:
            ports.append(f"{_int(port, 'port')}/{protocol}")
    return [_name(svc), svc_type, cluster_ip, _service_external_ip(spec, status, svc_type),
            ",".join(ports) or "<none>", _age(svc, now), _format_labels(spec.get("selector"))]


def _print_endpoints(ep: Mapping[str, Any], now: datetime) -> Cells:
    subsets = _maps(ep, "subsets")
    if not subsets:
        return [_name(ep), "<none>", _age(ep, now)]
    limit, count, more = 3, 0, False
    listed: list[str] = []
    for subset in subsets:
        addresses = [_str(a, "ip") for a in _maps(subset, "addresses")]
        # Headless services may have no ports: then the bare IPs are listed.
        ports: list[Mapping[str, Any] | None] = [*_maps(subset, "ports")] or [None]
        for port in ports:
            count += len(addresses)
            for ip in addresses:
                if len(listed) == limit:
                    more = True
                    break
                listed.append(ip if port is None else _join_host_port(ip, _int(port, "port")))
    text = ",".join(listed)
    return [_name(ep), f"{text} + {count - limit} more..." if more else text, _age(ep, now)]


def _print_endpoint_slice(eps: Mapping[str, Any], now: datetime) -> Cells:
    limit = 3
    ports: list[str] = []
    more, count = False, 0
    for port in _maps(eps, "ports"):
        if len(ports) < limit:
            number = _get(port, "port")
            if isinstance(number, int) and not isinstance(number, bool):
                ports.append(str(number))
            elif isinstance(port.get("name"), str):
                ports.append(port["name"])
            else:
                ports.append("*")
        elif len(ports) == limit:
            more = True
        count += 1
    ports_text = _list_with_more(ports, more, count, limit)
    addresses: list[str] = []
    more, count = False, 0
    for endpoint in _maps(eps, "endpoints"):
        for address in _strs(endpoint, "addresses"):
            if len(addresses) < limit:
                addresses.append(address)
            elif len(addresses) == limit:
                more = True
            count += 1
    return [_name(eps), _str(eps, "addressType"), ports_text, _list_with_more(addresses, more, count, limit),
            _age(eps, now)]


def _print_namespace(ns: Mapping[str, Any], now: datetime) -> Cells:
    return [_name(ns), _str(ns, "status", "phase", default="Active"), _age(ns, now)]


def _print_configmap(cm: Mapping[str, Any], now: datetime) -> Cells:
    return [_name(cm), len(_map(cm, "data")) + len(_map(cm, "binaryData")), _age(cm, now)]


def _print_secret(secret: Mapping[str, Any], now: datetime) -> Cells:
    return [_name(secret), _str(secret, "type", default="Opaque"), len(_map(secret, "data")), _age(secret, now)]


def _print_service_account(sa: Mapping[str, Any], now: datetime) -> Cells:
    secrets = _get(sa, "secrets")
    return [_name(sa), len(secrets) if isinstance(secrets, list) else 0, _age(sa, now)]


def _core_event(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """An ``events.k8s.io/v1`` Event seen as the core Event both share in storage."""
    return {
        "metadata": _map(event, "metadata"),
        "involvedObject": _map(event, "regarding"),
        "reason": _get(event, "reason"),
        "message": _get(event, "note"),
        "type": _get(event, "type"),
        "source": _map(event, "deprecatedSource"),
        "firstTimestamp": _get(event, "deprecatedFirstTimestamp"),
        "lastTimestamp": _get(event, "deprecatedLastTimestamp"),
        "count": _get(event, "deprecatedCount"),
        "series": _get(event, "series"),
        "eventTime": _get(event, "eventTime"),
        "reportingController": _get(event, "reportingController"),
        "reportingInstance": _get(event, "reportingInstance"),
    }


def _print_event(event: Mapping[str, Any], now: datetime) -> Cells:
    first_seen = translate_timestamp_since(_get(event, "firstTimestamp"), now)
    if _parse_time(_get(event, "firstTimestamp")) is None:
        first_seen = translate_timestamp_since(_get(event, "eventTime"), now)
    last_seen = translate_timestamp_since(_get(event, "lastTimestamp"), now)
    if _parse_time(_get(event, "lastTimestamp")) is None:
        last_seen = first_seen
    count = _int(event, "count")
    if isinstance(_get(event, "series"), Mapping):
        last_seen = translate_timestamp_since(_get(event, "series", "lastObservedTime"), now)
        count = _int(event, "series", "count")
    elif count == 0:
        count = 1  # singleton events of the new API carry no count

    involved = _map(event, "involvedObject")
    kind = _str(involved, "kind").lower()
    target = f"{kind}/{_str(involved, 'name')}" if _str(involved, "name") else kind
    component = _str(event, "source", "component") or _str(event, "reportingController")
    host = _str(event, "source", "host") or _str(event, "reportingInstance")
    source = f"{component}, {host}" if host else component
    return [last_seen, _str(event, "type"), _str(event, "reason"), target, _str(involved, "fieldPath"), source,
            _str(event, "message").strip(), first_seen, count, _name(event)]


def _print_new_event(event: Mapping[str, Any], now: datetime) -> Cells:
    return _print_event(_core_event(event), now)


def _pv_class(pv: Mapping[str, Any]) -> str:
    beta = _get(pv, "metadata", "annotations", "volume.beta.kubernetes.io/storage-class")
    if isinstance(beta, str):
        return beta
    return _str(pv, "spec", "storageClassName")


def _print_persistent_volume(pv: Mapping[str, Any], now: datetime) -> Cells:
    spec = _map(pv, "spec")
    claim = ""
    if isinstance(spec.get("claimRef"), Mapping):
        claim = f"{_str(spec, 'claimRef', 'namespace')}/{_str(spec, 'claimRef', 'name')}"
    phase = _str(pv, "status", "phase", default="Pending")
    if _has(pv, "metadata", "deletionTimestamp"):
        phase = "Terminating"
    vac = _get(spec, "volumeAttributesClassName")
    return [_name(pv), _quantity(_get(spec, "capacity", "storage")), _access_modes(_strs(spec, "accessModes")),
            _str(spec, "persistentVolumeReclaimPolicy", default="Retain"), phase, claim, _pv_class(pv),
            vac if isinstance(vac, str) else "<unset>", _str(pv, "status", "reason"), _age(pv, now),
            _str(spec, "volumeMode", default="Filesystem")]


def _print_persistent_volume_claim(pvc: Mapping[str, Any], now: datetime) -> Cells:
    spec, status = _map(pvc, "spec"), _map(pvc, "status")
    phase = _str(status, "phase", default="Pending")
    if _has(pvc, "metadata", "deletionTimestamp"):
        phase = "Terminating"
    capacity = access_modes = ""
    if _str(spec, "volumeName"):
        access_modes = _access_modes(_strs(status, "accessModes"))
        capacity = _quantity(_get(status, "capacity", "storage"))
    beta = _get(pvc, "metadata", "annotations", "volume.beta.kubernetes.io/storage-class")
    storage_class = beta if isinstance(beta, str) else _str(spec, "storageClassName")
    vac = _get(spec, "volumeAttributesClassName")
    return [_name(pvc), phase, _str(spec, "volumeName"), capacity, access_modes, storage_class,
            vac if isinstance(vac, str) else "<unset>", _age(pvc, now), _str(spec, "volumeMode", default="Filesystem")]


def _print_resource_quota(quota: Mapping[str, Any], now: datetime) -> Cells:
    hard, used = _map(quota, "status", "hard"), _map(quota, "status", "used")
    requests: list[str] = []
    limits: list[str] = []
    for resource in sorted(hard, key=str):
        text = f"{resource}: {_quantity(used.get(resource))}/{_quantity(hard[resource])}"
        pieces = str(resource).split(".")
        (limits if len(pieces) > 1 and pieces[0] == "limits" else requests).append(text)
    return [_name(quota), ", ".join(requests), ", ".join(limits), _age(quota, now)]


def _replicas(spec: Mapping[str, Any]) -> int:
    """``spec.replicas``, which the v1 decoder defaults to 1."""
    return _int(spec, "replicas", default=1)


def _print_replication_controller(rc: Mapping[str, Any], now: datetime) -> Cells:
    spec, status = _map(rc, "spec"), _map(rc, "status")
    template_spec = _map(spec, "template", "spec")
    names, images = _containers(template_spec)
    # The v1 decoder copies the template's labels into an empty selector.
    selector = _map(spec, "selector") or _map(spec, "template", "metadata", "labels")
    return [_name(rc), _replicas(spec), _int(status, "replicas"), _int(status, "readyReplicas"), _age(rc, now),
            names, images, _format_labels(selector)]


def _print_replica_set(rs: Mapping[str, Any], now: datetime) -> Cells:
    spec, status = _map(rs, "spec"), _map(rs, "status")
    names, images = _containers(_map(spec, "template", "spec"))
    return [_name(rs), _replicas(spec), _int(status, "replicas"), _int(status, "readyReplicas"), _age(rs, now),
            names, images, _format_label_selector(spec.get("selector"))]


def _print_deployment(deploy: Mapping[str, Any], now: datetime) -> Cells:
    spec, status = _map(deploy, "spec"), _map(deploy, "status")
    names, images = _containers(_map(spec, "template", "spec"))
    selector = _selector_string(spec.get("selector"))
    return [_name(deploy), f"{_int(status, 'readyReplicas')}/{_replicas(spec)}", _int(status, "updatedReplicas"),
            _int(status, "availableReplicas"), _age(deploy, now), names, images,
            "<invalid>" if selector is None else selector]


def _print_stateful_set(sts: Mapping[str, Any], now: datetime) -> Cells:
    spec = _map(sts, "spec")
    names, images = _containers(_map(spec, "template", "spec"))
    return [_name(sts), f"{_int(sts, 'status', 'readyReplicas')}/{_replicas(spec)}", _age(sts, now), names, images]


def _print_daemon_set(ds: Mapping[str, Any], now: datetime) -> Cells:
    spec, status = _map(ds, "spec"), _map(ds, "status")
    template_spec = _map(spec, "template", "spec")
    names, images = _containers(template_spec)
    return [_name(ds), _int(status, "desiredNumberScheduled"), _int(status, "currentNumberScheduled"),
            _int(status, "numberReady"), _int(status, "updatedNumberScheduled"), _int(status, "numberAvailable"),
            _format_labels(template_spec.get("nodeSelector")), _age(ds, now), names, images,
            _format_label_selector(spec.get("selector"))]


def _print_controller_revision(rev: Mapping[str, Any], now: datetime) -> Cells:
    controller = "<none>"
    for ref in _maps(rev, "metadata", "ownerReferences"):
        if ref.get("controller") is True:
            group = _str(ref, "apiVersion").rpartition("/")[0] if "/" in _str(ref, "apiVersion") else ""
            kind = _str(ref, "kind")
            group_kind = f"{kind}.{group}" if group else kind
            controller = f"{group_kind.lower()}/{_str(ref, 'name')}" if group_kind else _str(ref, "name")
            break
    return [_name(rev), controller, _int(rev, "revision"), _age(rev, now)]


def _print_job(job: Mapping[str, Any], now: datetime) -> Cells:
    spec, status = _map(job, "spec"), _map(job, "status")
    succeeded = _int(status, "succeeded")
    completions = _get(spec, "completions")
    parallelism = _get(spec, "parallelism")
    if completions is None and parallelism is None:
        completions = 1  # the v1 decoder defaults both to 1 for a non-parallel job
    if isinstance(completions, int) and not isinstance(completions, bool):
        completions_text = f"{succeeded}/{completions}"
    elif _int(spec, "parallelism", default=1) > 1:
        completions_text = f"{succeeded}/1 of {_int(spec, 'parallelism')}"
    else:
        completions_text = f"{succeeded}/1"

    start, end = _parse_time(_get(status, "startTime")), _parse_time(_get(status, "completionTime"))
    if start is None:
        job_duration = ""
    elif end is None:
        job_duration = human_duration(_aware(now) - start)
    else:
        job_duration = human_duration(end - start)

    conditions = _maps(status, "conditions")
    if _condition_true(conditions, "Complete"):
        state = "Complete"
    elif _condition_true(conditions, "Failed"):
        state = "Failed"
    elif _has(job, "metadata", "deletionTimestamp"):
        state = "Terminating"
    elif _condition_true(conditions, "Suspended"):
        state = "Suspended"
    elif _condition_true(conditions, "FailureTarget"):
        state = "FailureTarget"
    else:
        state = "Running"
    names, images = _containers(_map(spec, "template", "spec"))
    return [_name(job), state, completions_text, job_duration, _age(job, now), names, images,
            _format_label_selector(spec.get("selector"))]


def _print_cron_job(cj: Mapping[str, Any], now: datetime) -> Cells:
    spec, status = _map(cj, "spec"), _map(cj, "status")
    last_schedule = "<none>"
    if _has(status, "lastScheduleTime"):
        last_schedule = translate_timestamp_since(status.get("lastScheduleTime"), now)
    suspend = _get(spec, "suspend")
    suspend = False if suspend is None else suspend  # defaulted to false by the v1 decoder
    suspend_text = ("True" if suspend else "False") if isinstance(suspend, bool) else "<unset>"
    job_spec = _map(spec, "jobTemplate", "spec")
    names, images = _containers(_map(job_spec, "template", "spec"))
    active = _get(status, "active")
    return [_name(cj), _str(spec, "schedule"), _str(spec, "timeZone", default="<none>"), suspend_text,
            len(active) if isinstance(active, list) else 0, last_schedule, _age(cj, now), names, images,
            _format_label_selector(job_spec.get("selector"))]


def _hpa_metrics(specs: list[Mapping[str, Any]], statuses: list[Mapping[str, Any]]) -> str:
    """``formatHPAMetrics``: ``current/target`` per metric, at most two, then ``+ N more...``."""
    if not specs:
        return "<none>"
    shown: list[str] = []

    def current(i: int, source: str, *path: str) -> Any:
        if i < len(statuses) and isinstance(statuses[i].get(source), Mapping):
            return _get(statuses[i], source, *path)
        return None

    def has_status(i: int, source: str) -> bool:
        return i < len(statuses) and isinstance(statuses[i].get(source), Mapping)

    for i, spec in enumerate(specs):
        kind = spec.get("type")
        if kind in ("External", "Object"):
            source = "external" if kind == "External" else "object"
            target = _map(spec, source, "target")
            if target.get("averageValue") is not None:
                value = current(i, source, "current", "averageValue")
                now_text = "<unknown>" if value is None else _quantity(value)
                shown.append(f"{now_text}/{_quantity(target['averageValue'])} (avg)")
            else:
                now_text = _quantity_ptr(current(i, source, "current", "value")) if has_status(i, source) \
                    else "<unknown>"
                shown.append(f"{now_text}/{_quantity_ptr(target.get('value'))}")
        elif kind == "Pods":
            now_text = _quantity_ptr(current(i, "pods", "current", "averageValue")) if has_status(i, "pods") \
                else "<unknown>"
            shown.append(f"{now_text}/{_quantity_ptr(_get(spec, 'pods', 'target', 'averageValue'))}")
        elif kind in ("Resource", "ContainerResource"):
            source = "resource" if kind == "Resource" else "containerResource"
            name = _str(spec, source, "name")
            target = _map(spec, source, "target")
            if target.get("averageValue") is not None:
                now_text = _quantity_ptr(current(i, source, "current", "averageValue")) \
                    if has_status(i, source) else "<unknown>"
                shown.append(f"{name}: {now_text}/{_quantity(target['averageValue'])}")
            else:
                utilization = current(i, source, "current", "averageUtilization")
                now_text = f"{utilization}%" if isinstance(utilization, int) else "<unknown>"
                wanted = target.get("averageUtilization")
                target_text = f"{wanted}%" if isinstance(wanted, int) else "<auto>"
                shown.append(f"{name}: {now_text}/{target_text}")
        else:
            shown.append("<unknown type>")
    limit = 2
    if len(shown) > limit:
        return f"{', '.join(shown[:limit])} + {len(shown) - limit} more..."
    return ", ".join(shown)


def _hpa_v1_as_v2(hpa: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """Metric specs and statuses of an ``autoscaling/v1`` HPA, as its conversion to v2 yields them."""
    target = _get(hpa, "spec", "targetCPUUtilizationPercentage")
    specs: list[Mapping[str, Any]] = []
    if isinstance(target, int):
        specs = [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                              "averageUtilization": target}}}]
    current = _get(hpa, "status", "currentCPUUtilizationPercentage")
    statuses: list[Mapping[str, Any]] = []
    if isinstance(current, int):
        statuses = [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": current}}}]
    return specs, statuses


_DEFAULT_HPA_METRICS: Final = (MappingProxyType({"type": "Resource", "resource": MappingProxyType({
    "name": "cpu", "target": MappingProxyType({"type": "Utilization", "averageUtilization": 80})})}),)


def _print_hpa(hpa: Mapping[str, Any], now: datetime) -> Cells:
    spec, status = _map(hpa, "spec"), _map(hpa, "status")
    specs, statuses = _maps(spec, "metrics"), _maps(status, "currentMetrics")
    # HPAs are stored as autoscaling/v2, whose decoder defaults no metrics to 80% CPU.
    specs = specs or list(_DEFAULT_HPA_METRICS)
    ref = _map(spec, "scaleTargetRef")
    return [_name(hpa), f"{_str(ref, 'kind')}/{_str(ref, 'name')}", _hpa_metrics(specs, statuses),
            str(_int(spec, "minReplicas", default=1)), _int(spec, "maxReplicas"), _int(status, "currentReplicas"),
            _age(hpa, now)]


def _print_pdb(pdb: Mapping[str, Any], now: datetime) -> Cells:
    def int_or_string(value: Any) -> str:
        return "N/A" if value is None else _go_text(value)

    spec = _map(pdb, "spec")
    return [_name(pdb), int_or_string(spec.get("minAvailable")), int_or_string(spec.get("maxUnavailable")),
            _int(pdb, "status", "disruptionsAllowed"), _age(pdb, now)]


def _print_component_status(cs: Mapping[str, Any], now: datetime) -> Cells:
    healthy = next((c for c in _maps(cs, "conditions") if _get(c, "type") == "Healthy"), {})
    status = {"True": "Healthy", "False": "Unhealthy"}.get(str(_get(healthy, "status")), "Unknown")
    return [_name(cs), status, _get(healthy, "message") or "", _get(healthy, "error") or ""]


def _print_lease(lease: Mapping[str, Any], now: datetime) -> Cells:
    return [_name(lease), _str(lease, "spec", "holderIdentity"), _age(lease, now)]


def _print_ingress(ing: Mapping[str, Any], now: datetime) -> Cells:
    spec = _map(ing, "spec")
    class_name = _get(spec, "ingressClassName")
    rules = _maps(spec, "rules")
    hosts: list[str] = []
    limit, more = 3, False
    for rule in rules:
        if len(hosts) == limit:
            more = True
        if not more and _str(rule, "host"):
            hosts.append(_str(rule, "host"))
    hosts_text = "*"
    if hosts:
        hosts_text = ",".join(hosts) + (f" + {len(rules) - limit} more..." if more else "")
    tls = _get(spec, "tls")
    return [_name(ing), class_name if isinstance(class_name, str) else "<none>", hosts_text,
            _load_balancer_ingress(_map(ing, "status")), "80, 443" if isinstance(tls, list) and tls else "80",
            _age(ing, now)]


def _print_ingress_class(ic: Mapping[str, Any], now: datetime) -> Cells:
    parameters = "<none>"
    params = _get(ic, "spec", "parameters")
    if isinstance(params, Mapping):
        parameters = _str(params, "kind")
        if isinstance(params.get("apiGroup"), str):
            parameters += "." + params["apiGroup"]
        parameters += "/" + _str(params, "name")
    return [_name(ic), _str(ic, "spec", "controller"), parameters, _age(ic, now)]


def _print_network_policy(np: Mapping[str, Any], now: datetime) -> Cells:
    # podSelector is a struct, not a pointer: absent means the empty selector, printed <none>.
    selector = _get(np, "spec", "podSelector")
    return [_name(np), _format_label_selector(selector if isinstance(selector, Mapping) else {}), _age(np, now)]


def _print_priority_class(pc: Mapping[str, Any], now: datetime) -> Cells:
    # preemptionPolicy is defaulted to PreemptLowerPriority by the v1 decoder.
    return [_name(pc), _int(pc, "value"), _true(pc, "globalDefault"), _age(pc, now),
            _str(pc, "preemptionPolicy", default="PreemptLowerPriority")]


def _print_storage_class(sc: Mapping[str, Any], now: datetime) -> Cells:
    annotations = _map(sc, "metadata", "annotations")
    name = _name(sc)
    if annotations.get("storageclass.kubernetes.io/is-default-class") == "true" or \
            annotations.get("storageclass.beta.kubernetes.io/is-default-class") == "true":
        name += " (default)"
    return [name, _str(sc, "provisioner"), _str(sc, "reclaimPolicy", default="Delete"),
            _str(sc, "volumeBindingMode", default="Immediate"), _true(sc, "allowVolumeExpansion"), _age(sc, now)]


def _print_role_binding(rb: Mapping[str, Any], now: datetime) -> Cells:
    users: list[str] = []
    groups: list[str] = []
    service_accounts: list[str] = []
    for subject in _maps(rb, "subjects"):
        kind = subject.get("kind")
        if kind == "ServiceAccount":
            service_accounts.append(f"{_str(subject, 'namespace')}/{_str(subject, 'name')}")
        elif kind == "User":
            users.append(_str(subject, "name"))
        elif kind == "Group":
            groups.append(_str(subject, "name"))
    ref = _map(rb, "roleRef")
    return [_name(rb), f"{_str(ref, 'kind')}/{_str(ref, 'name')}", _age(rb, now), ", ".join(users),
            ", ".join(groups), ", ".join(service_accounts)]


# ---------------------------------------------------------------------------------------------
# The printer table: (group, kind) -> columns + row function


@dataclass(frozen=True, slots=True)
class _Printer:
    columns: tuple[Column, ...]
    cells: _PrintFn
    conditions: Callable[[Mapping[str, Any]], tuple[Mapping[str, str], ...] | None] | None = None


_POD_COLUMNS: Final = (
    _NAME,
    _lit("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
    _lit("Status", "string", "The aggregate status of the containers in this pod."),
    _lit("Restarts", "string", "The number of times the containers in this pod have been restarted and when the "
         "last container in this pod has restarted."),
    _AGE,
    _c("IP", "string", "core/PodStatus.podIP", 1),
    _c("Node", "string", "core/PodSpec.nodeName", 1),
    _c("Nominated Node", "string", "core/PodStatus.nominatedNodeName", 1),
    _c("Readiness Gates", "string", "core/PodSpec.readinessGates", 1),
)

_EVENT_COLUMNS: Final = (
    _c("Last Seen", "string", "core/Event.lastTimestamp"),
    _c("Type", "string", "core/Event.type"),
    _c("Reason", "string", "core/Event.reason"),
    _c("Object", "string", "core/Event.involvedObject"),
    _c("Subobject", "string", "core/ObjectReference.fieldPath", 1),
    _c("Source", "string", "core/Event.source", 1),
    _c("Message", "string", "core/Event.message"),
    _c("First Seen", "string", "core/Event.firstTimestamp", 1),
    _c("Count", "string", "core/Event.count", 1),
    Column("Name", "string", _doc("meta/ObjectMeta.name"), 1, "name"),
)

_HPA_COLUMNS: Final = (
    _NAME,
    _c("Reference", "string", "autoscaling/HorizontalPodAutoscalerSpec.scaleTargetRef"),
    _c("Targets", "string", "autoscaling/HorizontalPodAutoscalerSpec.metrics"),
    _c("MinPods", "string", "autoscaling/HorizontalPodAutoscalerSpec.minReplicas"),
    _c("MaxPods", "string", "autoscaling/HorizontalPodAutoscalerSpec.maxReplicas"),
    _c("Replicas", "string", "autoscaling/HorizontalPodAutoscalerStatus.currentReplicas"),
    _AGE,
)


def _binding_columns(what: str, doc_key: str) -> tuple[Column, ...]:
    return (
        _NAME,
        _c("Role", "string", doc_key),
        _AGE,
        _lit("Users", "string", f"Users in the {what}", 1),
        _lit("Groups", "string", f"Groups in the {what}", 1),
        _lit("ServiceAccounts", "string", f"ServiceAccounts in the {what}", 1),
    )


_PRINTERS: Final[Mapping[tuple[str, str], _Printer]] = MappingProxyType({
    ("", "Pod"): _Printer(_POD_COLUMNS, _print_pod, _pod_conditions),
    ("", "Node"): _Printer((
        _NAME,
        _lit("Status", "string", "The status of the node"),
        _lit("Roles", "string", "The roles of the node"),
        _AGE,
        _c("Version", "string", "core/NodeSystemInfo.kubeletVersion"),
        _c("Internal-IP", "string", "core/NodeStatus.addresses", 1),
        _c("External-IP", "string", "core/NodeStatus.addresses", 1),
        _c("OS-Image", "string", "core/NodeSystemInfo.osImage", 1),
        _c("Kernel-Version", "string", "core/NodeSystemInfo.kernelVersion", 1),
        _c("Container-Runtime", "string", "core/NodeSystemInfo.containerRuntimeVersion", 1),
    ), _print_node),
    ("", "Service"): _Printer((
        _NAME,
        _c("Type", "string", "core/ServiceSpec.type"),
        _c("Cluster-IP", "string", "core/ServiceSpec.clusterIP"),
        _c("External-IP", "string", "core/ServiceSpec.externalIPs"),
        _c("Port(s)", "string", "core/ServiceSpec.ports"),
        _AGE,
        _c("Selector", "string", "core/ServiceSpec.selector", 1),
    ), _print_service),
    ("", "Endpoints"): _Printer((_NAME, _c("Endpoints", "string", "core/Endpoints.subsets"), _AGE), _print_endpoints),
    ("", "ComponentStatus"): _Printer((_NAME, _lit("Status", "string", "Status of the component conditions"),
                                       _lit("Message", "string", "Message of the component conditions"),
                                       _lit("Error", "string", "Error of the component conditions")),
                                      _print_component_status),
    ("", "Namespace"): _Printer((_NAME, _lit("Status", "string", "The status of the namespace"), _AGE),
                                _print_namespace),
    ("", "ConfigMap"): _Printer((_NAME, _c("Data", "string", "core/ConfigMap.data"), _AGE), _print_configmap),
    ("", "Secret"): _Printer((_NAME, _c("Type", "string", "core/Secret.type"), _c("Data", "string", "core/Secret.data"),
                              _AGE), _print_secret),
    ("", "ServiceAccount"): _Printer((_NAME, _c("Secrets", "string", "core/ServiceAccount.secrets"), _AGE),
                                     _print_service_account),
    ("", "Event"): _Printer(_EVENT_COLUMNS, _print_event),
    ("events.k8s.io", "Event"): _Printer(_EVENT_COLUMNS, _print_new_event),
    ("", "PersistentVolume"): _Printer((
        _NAME,
        _c("Capacity", "string", "core/PersistentVolumeSpec.capacity"),
        _c("Access Modes", "string", "core/PersistentVolumeSpec.accessModes"),
        _c("Reclaim Policy", "string", "core/PersistentVolumeSpec.persistentVolumeReclaimPolicy"),
        _c("Status", "string", "core/PersistentVolumeStatus.phase"),
        _c("Claim", "string", "core/PersistentVolumeSpec.claimRef"),
        _lit("StorageClass", "string", "StorageClass of the pv"),
        _lit("VolumeAttributesClass", "string", "VolumeAttributesClass of the pv"),
        _c("Reason", "string", "core/PersistentVolumeStatus.reason"),
        _AGE,
        _c("VolumeMode", "string", "core/PersistentVolumeSpec.volumeMode", 1),
    ), _print_persistent_volume),
    ("", "PersistentVolumeClaim"): _Printer((
        _NAME,
        _c("Status", "string", "core/PersistentVolumeClaimStatus.phase"),
        _c("Volume", "string", "core/PersistentVolumeClaimSpec.volumeName"),
        _c("Capacity", "string", "core/PersistentVolumeClaimStatus.capacity"),
        _c("Access Modes", "string", "core/PersistentVolumeClaimStatus.accessModes"),
        _lit("StorageClass", "string", "StorageClass of the pvc"),
        _lit("VolumeAttributesClass", "string", "VolumeAttributesClass of the pvc"),
        _AGE,
        _c("VolumeMode", "string", "core/PersistentVolumeClaimSpec.volumeMode", 1),
    ), _print_persistent_volume_claim),
    ("", "ResourceQuota"): _Printer((
        _NAME,
        _lit("Request", "string", "Request represents a minimum amount of cpu/memory that a container may consume."),
        _lit("Limit", "string", "Limits control the maximum amount of cpu/memory that a container may use "
             "independent of contention on the node."),
        _AGE,
    ), _print_resource_quota),
    ("", "ReplicationController"): _Printer((
        _NAME,
        _c("Desired", "integer", "core/ReplicationControllerSpec.replicas"),
        _c("Current", "integer", "core/ReplicationControllerStatus.replicas"),
        _c("Ready", "integer", "core/ReplicationControllerStatus.readyReplicas"),
        _AGE, _CONTAINERS, _IMAGES,
        _c("Selector", "string", "core/ReplicationControllerSpec.selector", 1),
    ), _print_replication_controller),
    ("apps", "Deployment"): _Printer((
        _NAME,
        _lit("Ready", "string", "Number of the pod with ready state"),
        _c("Up-to-date", "string", "extensions/DeploymentStatus.updatedReplicas"),
        _c("Available", "string", "extensions/DeploymentStatus.availableReplicas"),
        _AGE, _CONTAINERS, _IMAGES,
        _c("Selector", "string", "extensions/DeploymentSpec.selector", 1),
    ), _print_deployment),
    ("apps", "ReplicaSet"): _Printer((
        _NAME,
        _c("Desired", "integer", "extensions/ReplicaSetSpec.replicas"),
        _c("Current", "integer", "extensions/ReplicaSetStatus.replicas"),
        _c("Ready", "integer", "extensions/ReplicaSetStatus.readyReplicas"),
        _AGE, _CONTAINERS, _IMAGES,
        _c("Selector", "string", "extensions/ReplicaSetSpec.selector", 1),
    ), _print_replica_set),
    ("apps", "StatefulSet"): _Printer((
        _NAME, _lit("Ready", "string", "Number of the pod with ready state"), _AGE, _CONTAINERS, _IMAGES,
    ), _print_stateful_set),
    ("apps", "DaemonSet"): _Printer((
        _NAME,
        _c("Desired", "integer", "extensions/DaemonSetStatus.desiredNumberScheduled"),
        _c("Current", "integer", "extensions/DaemonSetStatus.currentNumberScheduled"),
        _c("Ready", "integer", "extensions/DaemonSetStatus.numberReady"),
        _c("Up-to-date", "integer", "extensions/DaemonSetStatus.updatedNumberScheduled"),
        _c("Available", "integer", "extensions/DaemonSetStatus.numberAvailable"),
        _c("Node Selector", "string", "core/PodSpec.nodeSelector"),
        _AGE, _CONTAINERS, _IMAGES,
        _c("Selector", "string", "extensions/DaemonSetSpec.selector", 1),
    ), _print_daemon_set),
    ("apps", "ControllerRevision"): _Printer((
        _NAME,
        _lit("Controller", "string", "Controller of the object"),
        _c("Revision", "string", "apps/ControllerRevision.revision"),
        _AGE,
    ), _print_controller_revision),
    ("batch", "Job"): _Printer((
        _NAME,
        _lit("Status", "string", "Status of the job."),
        _c("Completions", "string", "batch/JobStatus.succeeded"),
        _lit("Duration", "string", "Time required to complete the job."),
        _AGE, _CONTAINERS, _IMAGES,
        _c("Selector", "string", "batch/JobSpec.selector", 1),
    ), _print_job),
    ("batch", "CronJob"): _Printer((
        _NAME,
        _c("Schedule", "string", "batch/CronJobSpec.schedule"),
        _c("Timezone", "string", "batch/CronJobSpec.timeZone"),
        _c("Suspend", "boolean", "batch/CronJobSpec.suspend"),
        _c("Active", "integer", "batch/CronJobStatus.active"),
        _c("Last Schedule", "string", "batch/CronJobStatus.lastScheduleTime"),
        _AGE, _CONTAINERS, _IMAGES,
        _c("Selector", "string", "batch/JobSpec.selector", 1),
    ), _print_cron_job),
    ("autoscaling", "HorizontalPodAutoscaler"): _Printer(_HPA_COLUMNS, _print_hpa),
    ("policy", "PodDisruptionBudget"): _Printer((
        _NAME,
        _lit("Min Available", "string", "The minimum number of pods that must be available."),
        _lit("Max Unavailable", "string", "The maximum number of pods that may be unavailable."),
        _lit("Allowed Disruptions", "integer", "Calculated number of pods that may be disrupted at this time."),
        _AGE,
    ), _print_pdb),
    ("coordination.k8s.io", "Lease"): _Printer((
        _NAME, _c("Holder", "string", "coordination/LeaseSpec.holderIdentity"), _AGE,
    ), _print_lease),
    ("discovery.k8s.io", "EndpointSlice"): _Printer((
        _NAME,
        _c("AddressType", "string", "discovery/EndpointSlice.addressType"),
        _c("Ports", "string", "discovery/EndpointSlice.ports"),
        _c("Endpoints", "string", "discovery/EndpointSlice.endpoints"),
        _AGE,
    ), _print_endpoint_slice),
    ("networking.k8s.io", "Ingress"): _Printer((
        _NAME,
        _lit("Class", "string", "The name of the IngressClass resource that should be used for additional "
             "configuration"),
        _lit("Hosts", "string", "Hosts that incoming requests are matched against before the ingress rule"),
        _lit("Address", "string", "Address is a list containing ingress points for the load-balancer"),
        _lit("Ports", "string", "Ports of TLS configurations that open"),
        _AGE,
    ), _print_ingress),
    ("networking.k8s.io", "IngressClass"): _Printer((
        _NAME,
        _lit("Controller", "string", "Controller that is responsible for handling this class"),
        _lit("Parameters", "string", "A reference to a resource with additional parameters"),
        _AGE,
    ), _print_ingress_class),
    ("networking.k8s.io", "NetworkPolicy"): _Printer((
        _NAME, _c("Pod-Selector", "string", "extensions/NetworkPolicySpec.podSelector"), _AGE,
    ), _print_network_policy),
    ("scheduling.k8s.io", "PriorityClass"): _Printer((
        _NAME,
        _c("Value", "integer", "scheduling/PriorityClass.value"),
        _c("Global-Default", "boolean", "scheduling/PriorityClass.globalDefault"),
        _AGE,
        _c("PreemptionPolicy", "string", "scheduling/PriorityClass.preemptionPolicy"),
    ), _print_priority_class),
    ("storage.k8s.io", "StorageClass"): _Printer((
        _NAME,
        _c("Provisioner", "string", "storage/StorageClass.provisioner"),
        _c("ReclaimPolicy", "string", "storage/StorageClass.reclaimPolicy"),
        _c("VolumeBindingMode", "string", "storage/StorageClass.volumeBindingMode"),
        _c("AllowVolumeExpansion", "string", "storage/StorageClass.allowVolumeExpansion"),
        _AGE,
    ), _print_storage_class),
    ("rbac.authorization.k8s.io", "RoleBinding"): _Printer(
        _binding_columns("roleBinding", "rbac/RoleBinding.roleRef"), _print_role_binding),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): _Printer(
        _binding_columns("clusterRoleBinding", "rbac/ClusterRoleBinding.roleRef"), _print_role_binding),
})


def _print_hpa_v1(hpa: Mapping[str, Any], now: datetime) -> Cells:
    specs, statuses = _hpa_v1_as_v2(hpa)
    return _print_hpa({**hpa, "spec": {**_map(hpa, "spec"), "metrics": specs},
                       "status": {**_map(hpa, "status"), "currentMetrics": statuses}}, now)


# autoscaling/v1 HPAs carry one CPU target instead of a metrics list.
_VERSIONED_PRINTERS: Final[Mapping[tuple[str, str, str], _Printer]] = MappingProxyType({
    ("autoscaling", "v1", "HorizontalPodAutoscaler"): _Printer(_HPA_COLUMNS, _print_hpa_v1),
})

# rest.NewDefaultTableConvertor: what every built-in type without a printer (Role, ClusterRole,
# LimitRange, ...) answers.
_DEFAULT_COLUMNS: Final = (
    _NAME,
    Column("Created At", "date", _doc("meta/ObjectMeta.creationTimestamp")),
)


def _go_rfc3339(moment: datetime) -> str:
    """Go's ``Time.UTC().Format(time.RFC3339)``; unlike ``strftime`` it pads year 1 to ``0001``."""
    m = moment.astimezone(UTC)
    return f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}Z"


def _print_default(obj: Mapping[str, Any], now: datetime) -> Cells:
    # Go formats an unset time too, as "0001-01-01T00:00:00Z".
    created = _parse_time(_get(obj, "metadata", "creationTimestamp")) or _ZERO_TIME
    return [_name(obj), _go_rfc3339(created)]


_DEFAULT_PRINTER: Final = _Printer(_DEFAULT_COLUMNS, _print_default)


def _printer_for(rt: ResourceType) -> _Printer:
    return (_VERSIONED_PRINTERS.get((rt.group, rt.version, rt.kind))
            or _PRINTERS.get((rt.group, rt.kind))
            or _DEFAULT_PRINTER)


def column_definitions(rt: ResourceType) -> list[dict[str, Any]]:
    """The ``columnDefinitions`` ``to_table`` sends for ``rt``."""
    return [column.to_json() for column in _printer_for(rt).columns]


# ---------------------------------------------------------------------------------------------
# Building the Table


def _table_metadata(list_meta: Mapping[str, Any] | None) -> dict[str, Any]:
    """``ListMeta`` of the Table: the list's resourceVersion (where ``kubectl get -w`` starts), continue."""
    out: dict[str, Any] = {}
    if not isinstance(list_meta, Mapping):
        return out
    for key in ("resourceVersion", "continue"):
        if isinstance(list_meta.get(key), str) and list_meta[key]:
            out[key] = list_meta[key]
    remaining = list_meta.get("remainingItemCount")
    if isinstance(remaining, int) and not isinstance(remaining, bool):
        out["remainingItemCount"] = remaining
    return out


def _row_object(obj: Mapping[str, Any], include_object: str) -> Any:
    if include_object == "Object":
        return obj
    metadata = obj.get("metadata") if isinstance(obj, Mapping) else None
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": metadata if isinstance(metadata, Mapping) else {}}


def _check_include_object(include_object: str) -> str:
    # "" is what a request without ?includeObject= carries; upstream treats it as Metadata.
    if include_object == "":
        return "Metadata"
    if include_object not in INCLUDE_OBJECT_VALUES:
        raise bad_request(f"unrecognized includeObject value: {go_quote(str(include_object))}")
    return include_object


def _build_table(columns: Sequence[Column], objects: Iterable[Any],
                 cells_for: Callable[[Mapping[str, Any]], Cells],
                 conditions_for: Callable[[Mapping[str, Any]], Any] | None,
                 include_object: str, list_meta: Mapping[str, Any] | None, no_headers: bool) -> dict[str, Any]:
    include_object = _check_include_object(include_object)
    rows: list[dict[str, Any]] = []
    for obj in objects:
        if not isinstance(obj, Mapping):
            continue
        row: dict[str, Any] = {"cells": cells_for(obj)}
        conditions = conditions_for(obj) if conditions_for is not None else None
        if conditions:
            row["conditions"] = [dict(c) for c in conditions]
        if include_object != "None":
            row["object"] = _row_object(obj, include_object)
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": _table_metadata(list_meta),
        "columnDefinitions": [] if no_headers else [c.to_json() for c in columns],
        "rows": rows,
    }


def to_table(rt: ResourceType, objects: list[dict[str, Any]], *, now: datetime, include_object: str = "Metadata",
             list_meta: Mapping[str, Any] | None = None, no_headers: bool = False) -> dict[str, Any]:
    """The ``meta.k8s.io/v1`` Table the kube-apiserver answers for ``objects`` of type ``rt``.

    ``include_object`` is the ``?includeObject=`` value: ``Metadata`` (the default; each row's
    ``object`` is a PartialObjectMetadata, which kubectl needs for ``-A``, ``--show-labels`` and
    ``-L``), ``Object`` (the whole object, for ``--sort-by``) or ``None`` (rows without ``object``;
    upstream writes ``null`` there, which kubectl reads the same). Any other value raises the
    apiserver's 400. ``list_meta`` supplies ``resourceVersion``/``continue``/
    ``remainingItemCount``; for a GET of one object pass ``{"resourceVersion": <its rv>}``.
    ``no_headers`` drops the column definitions (``TableOptions.NoHeaders``).
    """
    printer = _printer_for(rt)
    moment = _aware(now)
    return _build_table(printer.columns, objects, lambda obj: printer.cells(obj, moment), printer.conditions,
                        include_object, list_meta, no_headers)


# ---------------------------------------------------------------------------------------------
# Custom resources: additionalPrinterColumns with a small JSONPath subset
#
# CRD printer columns are "simple" JSONPaths (the CRD validation demands it): field steps
# (.spec.replicas, ['a.b/c']), indexes ([0], [-1]), wildcards ([*], .*) and filters
# ([?(@.type=="Ready")], [?(@.x)]). That subset is what is evaluated here.


class _JSONPathError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class _Field:
    name: str


@dataclass(frozen=True, slots=True)
class _Index:
    index: int


@dataclass(frozen=True, slots=True)
class _Wildcard:
    pass


@dataclass(frozen=True, slots=True)
class _Filter:
    left: tuple[Any, ...]  # steps relative to @
    op: str  # "exists", "==", "!=", "<", ">", "<=", ">="
    right: Any  # a literal, or a tuple of steps relative to @ (_RelPath)


@dataclass(frozen=True, slots=True)
class _RelPath:
    steps: tuple[Any, ...]


_COMPARISONS: Final[Mapping[str, Callable[[Any, Any], Any]]] = MappingProxyType({
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge,
})
_FILTER_RE: Final = re.compile(r"""^\s*(@[^=!<>\s]*)\s*(?:(==|!=|<=|>=|<|>)\s*(.+?))?\s*$""")
_NUMBER_RE: Final = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")


def _parse_steps(path: str) -> tuple[Any, ...]:
    """Steps of ``.a.b[0]['c'][?(@.d=="e")]``; raises ``_JSONPathError`` outside the subset."""
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if text.startswith("$"):
        text = text[1:]
    steps: list[Any] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == ".":
            i += 1
            if text.startswith("*", i):
                steps.append(_Wildcard())
                i += 1
                continue
            name: list[str] = []
            while i < len(text) and text[i] not in ".[":
                if text[i] == "\\" and i + 1 < len(text):  # kubectl's escaped dot: .labels.app\.kubernetes\.io
                    i += 1
                name.append(text[i])
                i += 1
            if not name:
                raise _JSONPathError(f"empty field name in {path!r}")
            steps.append(_Field("".join(name)))
        elif ch == "[":
            end = _closing_bracket(text, i)
            inner = text[i + 1:end].strip()
            i = end + 1
            if inner == "*":
                steps.append(_Wildcard())
            elif len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "'\"":
                steps.append(_Field(inner[1:-1]))
            elif inner.startswith("?(") and inner.endswith(")"):
                steps.append(_parse_filter(inner[2:-1]))
            elif re.fullmatch(r"-?\d+", inner):
                steps.append(_Index(int(inner)))
            else:
                raise _JSONPathError(f"unsupported JSONPath subscript [{inner}]")
        else:
            raise _JSONPathError(f"unexpected {ch!r} in JSONPath {path!r}")
    return tuple(steps)


def _closing_bracket(text: str, start: int) -> int:
    depth, quote = 0, ""
    for j in range(start, len(text)):
        ch = text[j]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth == 0:
                return j
    raise _JSONPathError(f"unclosed [ in {text!r}")


def _parse_operand(text: str) -> Any:
    if text.startswith("@"):
        return _RelPath(_parse_steps(text[1:]))
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    if _NUMBER_RE.match(text):
        return float(text) if any(c in text for c in ".eE") else int(text)
    raise _JSONPathError(f"unsupported filter operand {text!r}")


def _parse_filter(expr: str) -> _Filter:
    match = _FILTER_RE.match(expr)
    if match is None:
        raise _JSONPathError(f"unsupported filter {expr!r}")
    left = _parse_steps(match.group(1)[1:])
    if match.group(2) is None:
        return _Filter(left, "exists", None)
    return _Filter(left, match.group(2), _parse_operand(match.group(3)))


def _walk(values: list[Any], steps: Sequence[Any]) -> list[Any]:
    """Apply steps to every current value; missing keys drop out (``AllowMissingKeys(true)``)."""
    for step in steps:
        nxt: list[Any] = []
        for value in values:
            if isinstance(step, _Field):
                if isinstance(value, Mapping) and step.name in value:
                    nxt.append(value[step.name])
            elif isinstance(step, _Index):
                if isinstance(value, list) and -len(value) <= step.index < len(value):
                    nxt.append(value[step.index])
            elif isinstance(step, _Wildcard):
                if isinstance(value, list):
                    nxt.extend(value)
                elif isinstance(value, Mapping):
                    nxt.extend(value[k] for k in sorted(value, key=str))
            elif isinstance(step, _Filter):
                if isinstance(value, list):
                    nxt.extend(item for item in value if _filter_passes(step, item))
        values = nxt
    return values


def _filter_passes(flt: _Filter, item: Any) -> bool:
    lefts = _walk([item], flt.left)
    if flt.op == "exists":
        return bool(lefts)
    rights = _walk([item], flt.right.steps) if isinstance(flt.right, _RelPath) else [flt.right]
    if not lefts or not rights:
        return False
    left, right = lefts[0], rights[0]
    if isinstance(left, bool) or isinstance(right, bool):
        if flt.op in ("==", "!="):
            return (left == right and type(left) is type(right)) == (flt.op == "==")
        return False
    comparable = (isinstance(left, int | float) and isinstance(right, int | float)) or \
        (isinstance(left, str) and isinstance(right, str))
    if not comparable:
        return flt.op == "!="
    return bool(_COMPARISONS[flt.op](left, right))


def jsonpath_find(obj: Any, path: str) -> list[Any]:
    """Values that a simple JSONPath selects in ``obj`` (empty when nothing matches).

    Raises ``ValueError`` for syntax outside the supported subset.
    """
    return _walk([obj], _parse_steps(path))


def _crd_cell(column_type: str, value: Any, now: datetime) -> Any:
    """``cellForJSONValue`` of the apiextensions convertor; ``string`` columns print any value."""
    if value is None:
        return None
    if column_type == "string":
        return _go_text(value)
    if column_type == "integer":
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        return int(value) if isinstance(value, float) and value == value and abs(value) != float("inf") else None
    if column_type == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value)
    if column_type == "boolean":
        return value if isinstance(value, bool) else None
    if column_type == "date":
        if not isinstance(value, str):
            return None
        if value in ("", "null"):
            return "<unknown>"
        try:
            moment = parse_rfc3339(value)
        except ValueError:
            return "<invalid>"
        return "<unknown>" if moment == _ZERO_TIME else human_duration(now - moment)
    return None


# apiextensions serves this column when a CRD version declares none.
_DEFAULT_CRD_COLUMNS: Final = (MappingProxyType({
    "name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp",
    "description": _doc("meta/ObjectMeta.creationTimestamp"),
}),)


def custom_columns_table(rt: ResourceType, objects: list[dict[str, Any]], columns: Sequence[Mapping[str, Any]], *,
                         now: datetime, include_object: str = "Metadata", list_meta: Mapping[str, Any] | None = None,
                         no_headers: bool = False) -> dict[str, Any]:
    """The Table for custom resources, from a CRD version's ``additionalPrinterColumns``.

    Each column is ``{name, type, jsonPath, format?, description?, priority?}``. The first column
    is always Name; with no columns a single ``Age`` column is served, as apiextensions does. A
    path that selects nothing gives a ``null`` cell; a path outside the supported JSONPath subset
    gives ``null`` cells rather than an error. ``include_object``/``list_meta`` as in ``to_table``.
    """
    del rt  # the columns come from the CRD; kept for symmetry with to_table
    moment = _aware(now)
    specs = [c for c in columns if isinstance(c, Mapping)] or list(_DEFAULT_CRD_COLUMNS)
    table_columns = [_NAME]
    paths: list[tuple[Any, ...] | None] = []
    types: list[str] = []
    for spec in specs:
        json_path = _str(spec, "jsonPath")
        try:
            paths.append(_parse_steps(json_path) if json_path else None)
        except _JSONPathError:
            paths.append(None)
        description = _str(spec, "description")
        priority = spec.get("priority")
        column_type = _str(spec, "type", default="string")
        types.append(column_type)
        table_columns.append(Column(
            str(spec.get("name", "")), column_type,
            description or f"Custom resource definition column (in JSONPath format): {json_path}",
            priority if isinstance(priority, int) and not isinstance(priority, bool) else 0,
            _str(spec, "format"),
        ))

    def cells_for(obj: Mapping[str, Any]) -> Cells:
        cells: Cells = [_name(obj)]
        for steps, column_type in zip(paths, types, strict=True):
            found = _walk([obj], steps) if steps is not None else []
            cells.append(_crd_cell(column_type, found[0], moment) if found else None)
        return cells

    return _build_table(table_columns, objects, cells_for, None, include_object, list_meta, no_headers)
