"""Defaulting of built-in objects, as kube-apiserver applies it on create and update.

Kubernetes fills unset fields of every object it decodes (``pkg/apis/<group>/<version>/defaults.go``
plus the ``+default`` tags of ``k8s.io/api``), so what a client reads back always carries values
such as ``restartPolicy: Always`` or ``strategy.rollingUpdate.maxSurge: 25%``. Clients depend on
that: ``kubectl diff`` compares against them and the official Python client's pydantic models
*require* some fields Go always emits (``ReplicaSetStatus.replicas``, every ``NodeSystemInfo``
field), so the stored object has to carry them.

Behaviour follows Kubernetes 1.32 with its default feature gates. Every helper mutates the dict in
place, only ever adds what is unset, and is idempotent. Go semantics decide what "unset" means: a
missing key or ``null`` for pointers, additionally ``""``/``0`` for plain strings and integers,
and an empty list for ``omitempty`` slices. Malformed input (a list where a map belongs) is left
alone for validation to report; defaulting never raises.

Two things are not pure defaulting upstream but live here because they are pure data logic:

- create-only strategy steps (``PrepareForCreate``): the Namespace ``kubernetes`` finalizer
  (``apply_defaults(..., create=True)``) and the status a new object starts with
  (``default_status``: Pod phase/QoS class, zero counters Go always emits);
- admission that needs no I/O: Pod priority from a PriorityClass (``admit_pod_priority``) and
  Service IP families (``default_service_ip_families``, run by upstream's IP allocator).

Deliberate deviation (asked for by the design): a Job's or CronJob's pod template gets no
``restartPolicy: Always``. Upstream defaults it and validation then rejects ``Always`` for Jobs;
here the field stays unset and validation reports it as required.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, Final

from .quantity import Quantity, QuantityError

__all__ = [
    "apply_defaults",
    "default_status",
    "has_defaults",
    "image_tag",
    "default_pull_policy",
    "compute_pod_qos",
    "admit_pod_priority",
    "default_service_ip_families",
    "default_resource_list",
    "default_container",
    "default_volume",
    "default_pod_spec",
    "default_pod_template_spec",
    "default_pod",
    "default_pod_template",
    "default_replication_controller",
    "default_service",
    "default_namespace",
    "default_node",
    "default_persistent_volume",
    "default_persistent_volume_claim",
    "default_persistent_volume_claim_spec",
    "default_secret",
    "default_endpoints",
    "default_limit_range",
    "default_resource_quota",
    "default_deployment",
    "default_replica_set",
    "default_stateful_set",
    "default_daemon_set",
    "default_job",
    "default_cron_job",
    "default_hpa_v1",
    "default_hpa_v2",
    "default_hpa_behavior",
    "default_endpoint_slice",
    "default_network_policy",
    "default_ingress_class",
    "default_role_binding",
    "default_subject",
    "default_priority_class",
    "default_storage_class",
    "SYSTEM_PRIORITY_CLASSES",
]

Obj = dict[str, Any]

RBAC_GROUP: Final = "rbac.authorization.k8s.io"
DEFAULT_TERMINATION_GRACE_PERIOD: Final = 30
DEFAULT_SCHEDULER_NAME: Final = "default-scheduler"
TERMINATION_MESSAGE_PATH: Final = "/dev/termination-log"
DEFAULT_FILE_MODE: Final = 0o644  # 420: configMap/secret/downwardAPI/projected defaultMode
SERVICE_ACCOUNT_TOKEN_EXPIRATION: Final = 3600
CLIENT_IP_AFFINITY_SECONDS: Final = 10800
DEFAULT_CPU_UTILIZATION: Final = 80
MAX_INT32: Final = 2**31 - 1
NAMESPACE_NAME_LABEL: Final = "kubernetes.io/metadata.name"
NAMESPACE_FINALIZER: Final = "kubernetes"
SCHEDULING_GATED_MESSAGE: Final = "Scheduling is blocked due to non-empty scheduling gates"

# Built-in PriorityClasses every cluster has (``pkg/apis/scheduling``): name -> value.
SYSTEM_PRIORITY_CLASSES: Final[Mapping[str, int]] = MappingProxyType({
    "system-node-critical": 2000001000,
    "system-cluster-critical": 2000000000,
})

# The 10 string fields of NodeSystemInfo: Go emits all of them and the Python client requires them.
_NODE_INFO_FIELDS: Final = (
    "architecture", "bootID", "containerRuntimeVersion", "kernelVersion", "kubeProxyVersion",
    "kubeletVersion", "machineID", "operatingSystem", "osImage", "systemUUID",
)

# Volume sources of core/v1 VolumeSource; a volume with none of them becomes an emptyDir.
_VOLUME_SOURCES: Final = frozenset({
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret", "nfs",
    "iscsi", "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder", "cephfs", "flocker",
    "downwardAPI", "fc", "azureFile", "configMap", "vsphereVolume", "quobyte", "azureDisk",
    "photonPersistentDisk", "projected", "portworxVolume", "scaleIO", "storageos", "csi", "ephemeral",
    "image",
})


# --------------------------------------------------------------------------- small dict helpers

def _map(parent: Any, key: str, *, create: bool = False) -> Obj | None:
    """``parent[key]`` if it is a dict; with ``create``, a fresh ``{}`` when unset (missing/null).

    A value of the wrong type is never replaced: validation reports it, defaulting skips it.
    """
    if not isinstance(parent, dict):
        return None
    value = parent.get(key)
    if isinstance(value, dict):
        return value
    if value is None and create:
        value = parent[key] = {}
        return value
    return None


def _maps(parent: Any, key: str) -> Iterator[Obj]:
    """The dict items of the list ``parent[key]`` (other items are skipped)."""
    if isinstance(parent, dict):
        items = parent.get(key)
        if isinstance(items, list):
            for item in items:
                if isinstance(item, dict):
                    yield item


def _unset(obj: Obj, key: str) -> bool:
    """Unset the way Go sees it for pointers and omitempty values: missing, null, "" or []."""
    value = obj.get(key)
    return value is None or value == "" or value == []


def _default(obj: Obj, key: str, value: Any) -> None:
    """Set ``obj[key]`` when unset (pointer/string/slice field)."""
    if _unset(obj, key):
        obj[key] = value


def _default_nonzero(obj: Obj, key: str, value: int) -> None:
    """Set a plain Go int field when unset; for those, 0 also counts as unset."""
    current = obj.get(key)
    if current is None or (current == 0 and not isinstance(current, bool)):
        obj[key] = value


# --------------------------------------------------------------------------- images

_ALNUM: Final = r"[a-z0-9]+"
_SEPARATOR: Final = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT: Final = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT: Final = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN: Final = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_REFERENCE_RE: Final = re.compile(
    rf"((?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    r"(?::([\w][\w.-]{0,127}))?"
    r"(?:@([A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?"
)
_HEX64_RE: Final = re.compile(r"[a-f0-9]{64}")
_DIGEST_HEX_LENGTHS: Final = MappingProxyType({"sha256": 64, "sha384": 96, "sha512": 128})
_NAME_TOTAL_LENGTH_MAX: Final = 255


def image_tag(image: Any) -> str | None:
    """The tag of an image reference as ``parsers.ParseImageName`` sees it.

    ``"latest"`` when neither tag nor digest is given, ``""`` for a digest-only reference, ``None``
    when the reference does not parse (docker's ``reference.ParseNormalizedNamed`` grammar).
    """
    if not isinstance(image, str):
        return None
    match = _REFERENCE_RE.fullmatch(image)
    if match is None or _HEX64_RE.fullmatch(image):
        return None
    name, tag, digest = match.groups()
    if len(name) > _NAME_TOTAL_LENGTH_MAX:
        return None
    if digest is not None:
        algorithm, _, hex_part = digest.partition(":")
        if _DIGEST_HEX_LENGTHS.get(algorithm) != len(hex_part):
            return None
    if tag is None:
        return "" if digest is not None else "latest"
    return tag


def default_pull_policy(image: Any) -> str:
    """``Always`` for ``:latest`` (explicit or implied), else ``IfNotPresent`` (also for bad refs)."""
    return "Always" if image_tag(image) == "latest" else "IfNotPresent"


# --------------------------------------------------------------------------- resources

def default_resource_list(resources: Any) -> None:
    """``SetDefaults_ResourceList``: round every quantity up to milli precision, canonical form.

    Values that are not quantities are left for validation. Numbers become strings, which the
    Python client requires (``cpu: 1`` -> ``"1"``).
    """
    if not isinstance(resources, dict):
        return
    for key, value in resources.items():
        if isinstance(value, bool):
            continue
        try:
            quantity = Quantity.from_json(value)
        except (QuantityError, TypeError, ValueError):
            continue
        nanos = quantity.nanos
        milli = 10**6
        # inf.Dec RoundUp: away from zero, to a whole number of milli-units.
        rounded = (1 if nanos >= 0 else -1) * (-(-abs(nanos) // milli) * milli)
        if rounded != nanos:
            quantity = Quantity.from_nanos(rounded, quantity.format)
        resources[key] = quantity.to_string()


def _default_requirements(container: Obj, *, limits_to_requests: bool) -> None:
    resources = _map(container, "resources", create=True)
    if resources is None:
        return
    limits = resources.get("limits")
    if limits_to_requests and isinstance(limits, dict) and limits:
        requests = _map(resources, "requests", create=True)
        if requests is not None:
            for key, value in limits.items():
                if key not in requests:
                    requests[key] = value
    default_resource_list(resources.get("limits"))
    default_resource_list(resources.get("requests"))


# --------------------------------------------------------------------------- containers

def _default_http_get(action: Any) -> None:
    if isinstance(action, dict):
        _default(action, "path", "/")
        _default(action, "scheme", "HTTP")


def _default_probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    _default_nonzero(probe, "timeoutSeconds", 1)
    _default_nonzero(probe, "periodSeconds", 10)
    _default_nonzero(probe, "successThreshold", 1)
    _default_nonzero(probe, "failureThreshold", 3)
    _default_http_get(probe.get("httpGet"))
    grpc = _map(probe, "grpc")
    if grpc is not None and grpc.get("service") is None:
        grpc["service"] = ""  # +default="" on a *string that Go emits without omitempty


def _default_field_ref(field_ref: Any) -> None:
    if isinstance(field_ref, dict):
        _default(field_ref, "apiVersion", "v1")


def default_container(container: Obj, *, limits_to_requests: bool = False,
                      host_network: bool = False) -> None:
    """``SetDefaults_Container`` plus everything nested in a container.

    ``limits_to_requests`` and ``host_network`` are the Pod-only parts of ``SetDefaults_Pod``
    (requests copied from limits, host ports mirroring container ports); templates get neither.
    """
    if not isinstance(container, dict):
        return
    if _unset(container, "imagePullPolicy"):
        container["imagePullPolicy"] = default_pull_policy(container.get("image"))
    _default(container, "terminationMessagePath", TERMINATION_MESSAGE_PATH)
    _default(container, "terminationMessagePolicy", "File")
    for port in _maps(container, "ports"):
        _default(port, "protocol", "TCP")
        if host_network and not port.get("hostPort") and isinstance(port.get("containerPort"), int):
            port["hostPort"] = port["containerPort"]
    for env in _maps(container, "env"):
        _default_field_ref(_map(_map(env, "valueFrom"), "fieldRef"))
    _default_requirements(container, limits_to_requests=limits_to_requests)
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(container.get(probe))
    lifecycle = _map(container, "lifecycle")
    for hook in ("postStart", "preStop"):
        _default_http_get(_map(_map(lifecycle, hook), "httpGet"))


# --------------------------------------------------------------------------- volumes

def default_persistent_volume_claim_spec(spec: Any) -> None:
    """``SetDefaults_PersistentVolumeClaimSpec``: volumeMode Filesystem, quantities rounded."""
    if not isinstance(spec, dict):
        return
    _default(spec, "volumeMode", "Filesystem")
    resources = _map(spec, "resources")
    if resources is not None:
        default_resource_list(resources.get("limits"))
        default_resource_list(resources.get("requests"))


def _default_mode(source: Any) -> None:
    if isinstance(source, dict) and source.get("defaultMode") is None:
        source["defaultMode"] = DEFAULT_FILE_MODE


def _default_downward_items(source: Any) -> None:
    for item in _maps(source, "items"):
        _default_field_ref(item.get("fieldRef"))


def _default_volume_plugins(source: Obj) -> None:
    """Declarative defaults of the in-tree plugin sources shared by volumes and PVs."""
    host_path = _map(source, "hostPath")
    if host_path is not None and host_path.get("type") is None:
        host_path["type"] = ""
    rbd = _map(source, "rbd")
    if rbd is not None:
        _default(rbd, "pool", "rbd")
        _default(rbd, "user", "admin")
        _default(rbd, "keyring", "/etc/ceph/keyring")
    iscsi = _map(source, "iscsi")
    if iscsi is not None:
        _default(iscsi, "iscsiInterface", "default")
    azure = _map(source, "azureDisk")
    if azure is not None:
        _default(azure, "cachingMode", "ReadWrite")
        _default(azure, "fsType", "ext4")
        _default(azure, "readOnly", False)
        _default(azure, "kind", "Shared")
    scale_io = _map(source, "scaleIO")
    if scale_io is not None:
        _default(scale_io, "storageMode", "ThinProvisioned")
        _default(scale_io, "fsType", "xfs")


def default_volume(volume: Obj) -> None:
    """``SetDefaults_Volume`` and the defaults of its source: emptyDir when no source is set,
    defaultMode 420, hostPath type "", token expiration 3600, fieldRef apiVersion v1, …"""
    if not isinstance(volume, dict):
        return
    if not any(volume.get(key) is not None for key in _VOLUME_SOURCES):
        volume["emptyDir"] = {}
    _default_volume_plugins(volume)
    for key in ("secret", "configMap"):
        _default_mode(_map(volume, key))
    downward = _map(volume, "downwardAPI")
    if downward is not None:
        _default_mode(downward)
        _default_downward_items(downward)
    projected = _map(volume, "projected")
    if projected is not None:
        _default_mode(projected)
        for source in _maps(projected, "sources"):
            _default_downward_items(_map(source, "downwardAPI"))
            token = _map(source, "serviceAccountToken")
            if token is not None and token.get("expirationSeconds") is None:
                token["expirationSeconds"] = SERVICE_ACCOUNT_TOKEN_EXPIRATION
    image = _map(volume, "image")
    if image is not None and _unset(image, "pullPolicy"):
        image["pullPolicy"] = default_pull_policy(image.get("reference"))
    claim_template = _map(_map(volume, "ephemeral"), "volumeClaimTemplate")
    default_persistent_volume_claim_spec(_map(claim_template, "spec"))


# --------------------------------------------------------------------------- pods

def default_pod_spec(spec: Any, *, restart_policy: str | None = "Always", pod: bool = False) -> None:
    """``SetDefaults_PodSpec`` and the nested defaulters (``SetObjectDefaults_PodTemplate``).

    ``restart_policy=None`` leaves ``restartPolicy`` unset (Job/CronJob templates here). ``pod``
    adds the Pod-only parts of ``SetDefaults_Pod`` except priority: requests from limits,
    ``enableServiceLinks`` and host ports under ``hostNetwork``.
    """
    if not isinstance(spec, dict):
        return
    _default(spec, "dnsPolicy", "ClusterFirst")
    if restart_policy is not None:
        _default(spec, "restartPolicy", restart_policy)
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = DEFAULT_TERMINATION_GRACE_PERIOD
    _default(spec, "schedulerName", DEFAULT_SCHEDULER_NAME)
    host_network = pod and spec.get("hostNetwork") is True
    for volume in _maps(spec, "volumes"):
        default_volume(volume)
    for key in ("initContainers", "containers"):
        for container in _maps(spec, key):
            default_container(container, limits_to_requests=pod, host_network=host_network)
    for container in _maps(spec, "ephemeralContainers"):
        default_container(container)
    default_resource_list(spec.get("overhead"))
    if pod and spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True


def default_pod_template_spec(template: Any, *, restart_policy: str | None = "Always") -> None:
    """Defaults of a ``PodTemplateSpec`` (``.spec.template`` of the workload kinds)."""
    default_pod_spec(_map(template, "spec"), restart_policy=restart_policy)


def admit_pod_priority(pod: Obj, *, priority_class: Mapping[str, Any] | None = None) -> str | None:
    """The Priority admission plugin on create: fill ``priority`` and ``preemptionPolicy``.

    ``priority_class`` is the PriorityClass the API server resolved: the one named by
    ``spec.priorityClassName``, or the cluster's ``globalDefault`` class when the pod names none.
    Without it, a pod naming no class gets priority 0 / ``PreemptLowerPriority`` and one naming a
    built-in ``system-*`` class gets that class's value; a pod naming another class is left alone
    (the caller must resolve it or answer 403 ``no PriorityClass with name … was found``).

    Returns ``None``, or upstream's message for a 403 Forbidden when the pod already carries a
    priority or preemption policy that contradicts its class.
    """
    spec = _map(pod, "spec")
    if spec is None:
        return None
    class_name = spec.get("priorityClassName") or ""
    if not isinstance(class_name, str):
        return None
    value: Any
    policy: Any
    if priority_class is not None:
        value = priority_class.get("value", 0)
        policy = priority_class.get("preemptionPolicy") or "PreemptLowerPriority"
        if not class_name:
            default_name = (priority_class.get("metadata") or {}).get("name")
            if isinstance(default_name, str) and default_name:
                spec["priorityClassName"] = default_name
    elif not class_name:
        value, policy = 0, "PreemptLowerPriority"
    elif class_name in SYSTEM_PRIORITY_CLASSES:
        value, policy = SYSTEM_PRIORITY_CLASSES[class_name], "PreemptLowerPriority"
    else:
        return None
    current = spec.get("priority")
    if current is not None and current != value:
        return (f"the integer value of priority ({current}) must not be provided in pod spec; "
                f"priority admission controller computed {value} from the given PriorityClass name")
    current_policy = spec.get("preemptionPolicy")
    if current_policy is not None and current_policy != policy:
        return (f"the string value of PreemptionPolicy ({current_policy}) must not be provided in pod "
                f"spec; priority admission controller computed {policy} from the given PriorityClass name")
    spec["priority"] = value
    spec["preemptionPolicy"] = policy
    return None


def default_pod(pod: Obj, *, priority_class: Mapping[str, Any] | None = None) -> None:
    """``SetObjectDefaults_Pod`` plus the no-I/O part of Priority admission (see
    ``admit_pod_priority``; a contradiction is left for the API server to report)."""
    spec = _map(pod, "spec")
    default_pod_spec(spec, pod=True)
    if spec is not None and (spec.get("priority") is None or spec.get("preemptionPolicy") is None):
        admit_pod_priority(pod, priority_class=priority_class)


def default_pod_template(obj: Obj) -> None:
    """core/v1 ``PodTemplate``."""
    default_pod_template_spec(_map(obj, "template"))


def compute_pod_qos(pod: Mapping[str, Any]) -> str:
    """``qos.ComputePodQOS``: Guaranteed, Burstable or BestEffort from cpu/memory of all
    (init) containers. Call it on a defaulted pod (requests already copied from limits)."""
    spec = pod.get("spec") if isinstance(pod, Mapping) else None
    requests: dict[str, Quantity] = {}
    limits: dict[str, Quantity] = {}
    guaranteed = True
    containers: list[Obj] = []
    if isinstance(spec, dict):
        containers = list(_maps(spec, "containers")) + list(_maps(spec, "initContainers"))
    for container in containers:
        resources = container.get("resources")
        resources = resources if isinstance(resources, dict) else {}
        found_limits: set[str] = set()
        for field, totals in (("requests", requests), ("limits", limits)):
            values = resources.get(field)
            if not isinstance(values, dict):
                continue
            for name, raw in values.items():
                if name not in ("cpu", "memory") or isinstance(raw, bool):
                    continue
                try:
                    quantity = Quantity.from_json(raw)
                except (QuantityError, TypeError, ValueError):
                    continue
                if quantity.sign() <= 0:
                    continue
                totals[name] = totals[name] + quantity if name in totals else quantity
                if field == "limits":
                    found_limits.add(name)
        if not {"cpu", "memory"} <= found_limits:
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed:
        for name, request in requests.items():
            if name not in limits or limits[name] != request:
                guaranteed = False
                break
    if guaranteed and len(requests) == len(limits):
        return "Guaranteed"
    return "Burstable"


# --------------------------------------------------------------------------- core/v1 others

def default_replication_controller(obj: Obj) -> None:
    """``SetDefaults_ReplicationController``: selector and labels from the template, replicas 1."""
    spec = _map(obj, "spec", create=True)
    if spec is None:
        return
    template = _map(spec, "template")
    labels = _map(_map(template, "metadata"), "labels")
    if labels:
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        metadata = _map(obj, "metadata", create=True)
        if metadata is not None and not metadata.get("labels"):
            metadata["labels"] = dict(labels)
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    default_pod_template_spec(template)


def default_service(obj: Obj) -> None:
    """``SetDefaults_Service`` (type, ports, traffic policies, session affinity). IP families are
    ``default_service_ip_families`` (allocator logic), cluster IPs are allocated elsewhere."""
    spec = _map(obj, "spec", create=True)
    if spec is None:
        return
    _default(spec, "sessionAffinity", "None")
    affinity = spec.get("sessionAffinity")
    if affinity == "None":
        spec.pop("sessionAffinityConfig", None)
    elif affinity == "ClientIP":
        config = spec.get("sessionAffinityConfig")
        client_ip = config.get("clientIP") if isinstance(config, dict) else None
        if not isinstance(client_ip, dict) or client_ip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": CLIENT_IP_AFFINITY_SECONDS}}
    _default(spec, "type", "ClusterIP")
    service_type = spec.get("type")
    for port in _maps(spec, "ports"):
        _default(port, "protocol", "TCP")
        target = port.get("targetPort")
        if (target is None or target == 0 or target == "") and isinstance(port.get("port"), int):
            port["targetPort"] = port["port"]
    externally_accessible = service_type in ("LoadBalancer", "NodePort") or (
        service_type == "ClusterIP" and bool(spec.get("externalIPs")))
    if externally_accessible:
        _default(spec, "externalTrafficPolicy", "Cluster")
    if spec.get("internalTrafficPolicy") is None and service_type in ("ClusterIP", "NodePort", "LoadBalancer"):
        spec["internalTrafficPolicy"] = "Cluster"
    if service_type == "LoadBalancer":
        if spec.get("allocateLoadBalancerNodePorts") is None:
            spec["allocateLoadBalancerNodePorts"] = True
        for ingress in _maps(_map(_map(obj, "status"), "loadBalancer"), "ingress"):
            if ingress.get("ip") and ingress.get("ipMode") is None:
                ingress["ipMode"] = "VIP"


def default_service_ip_families(obj: Obj, *, families: tuple[str, ...] = ("IPv4",)) -> None:
    """``ipFamilyPolicy``/``ipFamilies`` as upstream's service IP allocator initialises them
    (``initIPFamilyFields``), for ClusterIP, NodePort and LoadBalancer services.

    ``families`` are the cluster's service IP families, primary first. An unset policy becomes
    ``SingleStack``, except for selector-less headless services: ``RequireDualStack`` with both
    families (upstream does this even on single-stack clusters). Families are inferred from
    explicit cluster IPs, else the primary family, plus the second one for a dual-stack policy on
    a dual-stack cluster. On update the caller should first copy the old object's policy over an
    unset one, as upstream does. Mismatches are left for validation.
    """
    spec = _map(obj, "spec")
    if spec is None or (spec.get("type") or "ClusterIP") not in ("ClusterIP", "NodePort", "LoadBalancer"):
        return
    ip_families = spec.get("ipFamilies")
    if ip_families is None:
        ip_families = []
    if not isinstance(ip_families, list):
        return
    cluster_ips = spec.get("clusterIPs")
    if not isinstance(cluster_ips, list) or not cluster_ips:
        cluster_ip = spec.get("clusterIP")
        cluster_ips = [cluster_ip] if isinstance(cluster_ip, str) and cluster_ip else []
    headless_selectorless = cluster_ips[:1] == ["None"] and not spec.get("selector")
    if spec.get("ipFamilyPolicy") is None:
        spec["ipFamilyPolicy"] = "RequireDualStack" if headless_selectorless else "SingleStack"
    policy = spec["ipFamilyPolicy"]
    ip_families = list(ip_families)
    for index, ip in enumerate(cluster_ips):
        if ip == "None":
            break
        if isinstance(ip, str) and ip and index >= len(ip_families):
            ip_families.append("IPv6" if ":" in ip else "IPv4")
    if not ip_families:
        ip_families = [families[0] if families else "IPv4"]
    if policy != "SingleStack" and len(ip_families) == 1 and (headless_selectorless or len(families) == 2):
        ip_families.append("IPv6" if ip_families[0] == "IPv4" else "IPv4")
    if spec.get("ipFamilies") != ip_families:
        spec["ipFamilies"] = ip_families


def default_namespace(obj: Obj, *, create: bool = False) -> None:
    """``SetDefaults_Namespace``/``NamespaceStatus``; with ``create``, also the ``kubernetes``
    finalizer that ``PrepareForCreate`` adds. Only on create: the namespace controller removes it
    through ``/finalize`` and an update must not bring it back, or deletion would never finish.

    The ``kubernetes.io/metadata.name`` label is always forced to the name, as upstream does."""
    metadata = _map(obj, "metadata")
    name = metadata.get("name") if metadata is not None else None
    if isinstance(name, str) and name and metadata is not None:
        labels = _map(metadata, "labels", create=True)
        if labels is not None:
            labels[NAMESPACE_NAME_LABEL] = name
    status = _map(obj, "status", create=True)
    if status is not None:
        _default(status, "phase", "Active")
    if create:
        spec = _map(obj, "spec", create=True)
        if spec is not None:
            finalizers = spec.get("finalizers")
            if finalizers is None:
                spec["finalizers"] = [NAMESPACE_FINALIZER]
            elif isinstance(finalizers, list) and NAMESPACE_FINALIZER not in finalizers:
                finalizers.append(NAMESPACE_FINALIZER)


def default_node(obj: Obj) -> None:
    """``SetDefaults_NodeStatus``: allocatable = capacity when unset; quantities rounded."""
    status = _map(obj, "status")
    if status is None:
        return
    capacity = status.get("capacity")
    if status.get("allocatable") is None and isinstance(capacity, dict):
        status["allocatable"] = dict(capacity)
    default_resource_list(status.get("capacity"))
    default_resource_list(status.get("allocatable"))


def default_persistent_volume(obj: Obj) -> None:
    """``SetDefaults_PersistentVolume``: reclaim policy Retain, volumeMode Filesystem, phase Pending."""
    spec = _map(obj, "spec", create=True)
    if spec is not None:
        _default(spec, "persistentVolumeReclaimPolicy", "Retain")
        _default(spec, "volumeMode", "Filesystem")
        default_resource_list(spec.get("capacity"))
        _default_volume_plugins(spec)
    status = _map(obj, "status", create=True)
    if status is not None:
        _default(status, "phase", "Pending")


def default_persistent_volume_claim(obj: Obj) -> None:
    """``SetObjectDefaults_PersistentVolumeClaim`` (also used for StatefulSet claim templates)."""
    default_persistent_volume_claim_spec(_map(obj, "spec", create=True))
    status = _map(obj, "status", create=True)
    if status is not None:
        _default(status, "phase", "Pending")
        default_resource_list(status.get("capacity"))
        default_resource_list(status.get("allocatedResources"))


def default_secret(obj: Obj) -> None:
    if isinstance(obj, dict):
        _default(obj, "type", "Opaque")


def default_endpoints(obj: Obj) -> None:
    for subset in _maps(obj, "subsets"):
        for port in _maps(subset, "ports"):
            _default(port, "protocol", "TCP")


def default_limit_range(obj: Obj) -> None:
    """``SetDefaults_LimitRangeItem``: for Container items, default <- max, defaultRequest <-
    default, then defaultRequest <- min."""
    for item in _maps(_map(obj, "spec"), "limits"):
        if item.get("type") == "Container":
            default = _map(item, "default", create=True)
            default_request = _map(item, "defaultRequest", create=True)
            if default is not None and default_request is not None:
                for source, target in (("max", default), ("default", default_request),
                                       ("min", default_request)):
                    values = item.get(source)
                    if isinstance(values, dict):
                        for key, value in values.items():
                            target.setdefault(key, value)
                # Empty maps are omitted by Go's encoder (omitempty); keep the object minimal.
                for key in ("default", "defaultRequest"):
                    if item.get(key) == {}:
                        del item[key]
        for key in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio"):
            default_resource_list(item.get(key))


def default_resource_quota(obj: Obj) -> None:
    default_resource_list(_map(_map(obj, "spec"), "hard"))
    status = _map(obj, "status")
    default_resource_list(_map(status, "hard"))
    default_resource_list(_map(status, "used"))


# --------------------------------------------------------------------------- apps/v1

def default_deployment(obj: Obj) -> None:
    """``SetDefaults_Deployment``: replicas 1, RollingUpdate 25%/25%, history 10, deadline 600."""
    spec = _map(obj, "spec", create=True)
    if spec is None:
        return
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    strategy = _map(spec, "strategy", create=True)
    if strategy is not None:
        _default(strategy, "type", "RollingUpdate")
        if strategy.get("type") == "RollingUpdate":
            rolling = _map(strategy, "rollingUpdate", create=True)
            if rolling is not None:
                if rolling.get("maxUnavailable") is None:
                    rolling["maxUnavailable"] = "25%"
                if rolling.get("maxSurge") is None:
                    rolling["maxSurge"] = "25%"
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    if spec.get("progressDeadlineSeconds") is None:
        spec["progressDeadlineSeconds"] = 600
    default_pod_template_spec(spec.get("template"))


def default_replica_set(obj: Obj) -> None:
    spec = _map(obj, "spec", create=True)
    if spec is None:
        return
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    default_pod_template_spec(spec.get("template"))


def default_stateful_set(obj: Obj) -> None:
    """``SetDefaults_StatefulSet``: OrderedReady, RollingUpdate partition 0, Retain/Retain claim
    retention, replicas 1, history 10; claim templates defaulted like PVCs."""
    spec = _map(obj, "spec", create=True)
    if spec is None:
        return
    _default(spec, "podManagementPolicy", "OrderedReady")
    strategy = _map(spec, "updateStrategy", create=True)
    if strategy is not None:
        if _unset(strategy, "type"):
            strategy["type"] = "RollingUpdate"
            _map(strategy, "rollingUpdate", create=True)
        rolling = _map(strategy, "rollingUpdate")
        if strategy.get("type") == "RollingUpdate" and rolling is not None and rolling.get("partition") is None:
            rolling["partition"] = 0
    retention = _map(spec, "persistentVolumeClaimRetentionPolicy", create=True)
    if retention is not None:
        _default(retention, "whenDeleted", "Retain")
        _default(retention, "whenScaled", "Retain")
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    default_pod_template_spec(spec.get("template"))
    for claim in _maps(spec, "volumeClaimTemplates"):
        default_persistent_volume_claim(claim)


def default_daemon_set(obj: Obj) -> None:
    """``SetDefaults_DaemonSet``: RollingUpdate maxUnavailable 1 / maxSurge 0, history 10."""
    spec = _map(obj, "spec", create=True)
    if spec is None:
        return
    strategy = _map(spec, "updateStrategy", create=True)
    if strategy is not None:
        _default(strategy, "type", "RollingUpdate")
        if strategy.get("type") == "RollingUpdate":
            rolling = _map(strategy, "rollingUpdate", create=True)
            if rolling is not None:
                if rolling.get("maxUnavailable") is None:
                    rolling["maxUnavailable"] = 1
                if rolling.get("maxSurge") is None:
                    rolling["maxSurge"] = 0
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    default_pod_template_spec(spec.get("template"))


# --------------------------------------------------------------------------- batch/v1

def default_job(obj: Obj) -> None:
    """``SetDefaults_Job`` (1.32): completions/parallelism 1 when both unset, backoffLimit 6
    (MaxInt32 with backoffLimitPerIndex), NonIndexed, not suspended, pod replacement policy,
    labels from the template. The selector is generated by the Job strategy, not here."""
    spec = _map(obj, "spec", create=True)
    if spec is None:
        return
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = MAX_INT32 if spec.get("backoffLimitPerIndex") is not None else 6
    template = _map(spec, "template")
    labels = _map(_map(template, "metadata"), "labels")
    if labels:
        metadata = _map(obj, "metadata", create=True)
        if metadata is not None and not metadata.get("labels"):
            metadata["labels"] = dict(labels)
    if spec.get("completionMode") is None:
        spec["completionMode"] = "NonIndexed"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    failure_policy = _map(spec, "podFailurePolicy")
    for rule in _maps(failure_policy, "rules"):
        for pattern in _maps(rule, "onPodConditions"):
            _default(pattern, "status", "True")
    if spec.get("podReplacementPolicy") is None:
        spec["podReplacementPolicy"] = "Failed" if failure_policy is not None else "TerminatingOrFailed"
    default_pod_template_spec(template, restart_policy=None)


def default_cron_job(obj: Obj) -> None:
    """``SetDefaults_CronJob``. The job template's JobSpec is *not* Job-defaulted upstream (no
    backoffLimit etc. appear in it), only its pod template."""
    spec = _map(obj, "spec", create=True)
    if spec is None:
        return
    _default(spec, "concurrencyPolicy", "Allow")
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if spec.get("successfulJobsHistoryLimit") is None:
        spec["successfulJobsHistoryLimit"] = 3
    if spec.get("failedJobsHistoryLimit") is None:
        spec["failedJobsHistoryLimit"] = 1
    job_spec = _map(_map(spec, "jobTemplate"), "spec")
    default_pod_template_spec(_map(job_spec, "template"), restart_policy=None)


# --------------------------------------------------------------------------- autoscaling

def default_hpa_v1(obj: Obj) -> None:
    spec = _map(obj, "spec", create=True)
    if spec is not None and spec.get("minReplicas") is None:
        spec["minReplicas"] = 1


def _scale_up_rules() -> Obj:
    return {
        "stabilizationWindowSeconds": 0,
        "selectPolicy": "Max",
        "policies": [
            {"type": "Pods", "value": 4, "periodSeconds": 15},
            {"type": "Percent", "value": 100, "periodSeconds": 15},
        ],
    }


def _scale_down_rules() -> Obj:
    # No stabilization window: the controller's --horizontal-pod-autoscaler-downscale-stabilization
    # flag (default 5m) applies when it is unset.
    return {"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}


def default_hpa_behavior(spec: Obj) -> None:
    """``SetDefaults_HorizontalPodAutoscalerBehavior``: only when ``behavior`` is given, fill each
    unset rule field of scaleUp and scaleDown from upstream's defaults."""
    behavior = _map(spec, "behavior")
    if behavior is None:
        return
    for key, defaults in (("scaleUp", _scale_up_rules), ("scaleDown", _scale_down_rules)):
        rules = behavior.get(key)
        if rules is None:
            behavior[key] = defaults()
        elif isinstance(rules, dict):
            for field, value in defaults().items():
                if _unset(rules, field):
                    rules[field] = value


def default_hpa_v2(obj: Obj) -> None:
    """``SetDefaults_HorizontalPodAutoscaler`` (v2): minReplicas 1, CPU 80% when no metrics."""
    spec = _map(obj, "spec", create=True)
    if spec is None:
        return
    if spec.get("minReplicas") is None:
        spec["minReplicas"] = 1
    if _unset(spec, "metrics"):
        spec["metrics"] = [{
            "type": "Resource",
            "resource": {"name": "cpu",
                         "target": {"type": "Utilization", "averageUtilization": DEFAULT_CPU_UTILIZATION}},
        }]
    default_hpa_behavior(spec)


# --------------------------------------------------------------------------- other groups

def default_endpoint_slice(obj: Obj) -> None:
    """discovery/v1 ``SetDefaults_EndpointPort``: name "" and protocol TCP."""
    for port in _maps(obj, "ports"):
        if port.get("name") is None:
            port["name"] = ""
        if port.get("protocol") is None:
            port["protocol"] = "TCP"


def default_network_policy(obj: Obj) -> None:
    spec = _map(obj, "spec", create=True)
    if spec is None:
        return
    for direction, peers in (("ingress", "ports"), ("egress", "ports")):
        for rule in _maps(spec, direction):
            for port in _maps(rule, peers):
                if port.get("protocol") is None:
                    port["protocol"] = "TCP"
    if _unset(spec, "policyTypes"):
        types = ["Ingress"]
        if spec.get("egress"):
            types.append("Egress")
        spec["policyTypes"] = types


def default_ingress_class(obj: Obj) -> None:
    parameters = _map(_map(obj, "spec"), "parameters")
    if parameters is not None and parameters.get("scope") is None:
        parameters["scope"] = "Cluster"


def default_subject(subject: Obj) -> None:
    """``SetDefaults_Subject``: apiGroup for User/Group subjects."""
    if isinstance(subject, dict) and _unset(subject, "apiGroup"):
        if subject.get("kind") in ("User", "Group"):
            subject["apiGroup"] = RBAC_GROUP
        elif subject.get("kind") == "ServiceAccount" and subject.get("apiGroup") is None:
            subject["apiGroup"] = ""


def default_role_binding(obj: Obj) -> None:
    """(Cluster)RoleBinding: roleRef.apiGroup and subjects' apiGroup."""
    role_ref = _map(obj, "roleRef")
    if role_ref is not None:
        _default(role_ref, "apiGroup", RBAC_GROUP)
    for subject in _maps(obj, "subjects"):
        default_subject(subject)


def default_priority_class(obj: Obj) -> None:
    if isinstance(obj, dict) and obj.get("preemptionPolicy") is None:
        obj["preemptionPolicy"] = "PreemptLowerPriority"


def default_storage_class(obj: Obj) -> None:
    if isinstance(obj, dict):
        if obj.get("reclaimPolicy") is None:
            obj["reclaimPolicy"] = "Delete"
        if obj.get("volumeBindingMode") is None:
            obj["volumeBindingMode"] = "Immediate"


# --------------------------------------------------------------------------- dispatch

_Defaulter = Callable[[Obj], None]

_DEFAULTERS: Final[Mapping[tuple[str, str, str], _Defaulter]] = MappingProxyType({
    ("", "v1", "Pod"): default_pod,
    ("", "v1", "PodTemplate"): default_pod_template,
    ("", "v1", "ReplicationController"): default_replication_controller,
    ("", "v1", "Service"): default_service,
    ("", "v1", "Namespace"): default_namespace,
    ("", "v1", "Node"): default_node,
    ("", "v1", "PersistentVolume"): default_persistent_volume,
    ("", "v1", "PersistentVolumeClaim"): default_persistent_volume_claim,
    ("", "v1", "Secret"): default_secret,
    ("", "v1", "Endpoints"): default_endpoints,
    ("", "v1", "LimitRange"): default_limit_range,
    ("", "v1", "ResourceQuota"): default_resource_quota,
    ("apps", "v1", "Deployment"): default_deployment,
    ("apps", "v1", "ReplicaSet"): default_replica_set,
    ("apps", "v1", "StatefulSet"): default_stateful_set,
    ("apps", "v1", "DaemonSet"): default_daemon_set,
    ("batch", "v1", "Job"): default_job,
    ("batch", "v1", "CronJob"): default_cron_job,
    ("autoscaling", "v1", "HorizontalPodAutoscaler"): default_hpa_v1,
    ("autoscaling", "v2", "HorizontalPodAutoscaler"): default_hpa_v2,
    ("discovery.k8s.io", "v1", "EndpointSlice"): default_endpoint_slice,
    ("networking.k8s.io", "v1", "NetworkPolicy"): default_network_policy,
    ("networking.k8s.io", "v1", "IngressClass"): default_ingress_class,
    (RBAC_GROUP, "v1", "RoleBinding"): default_role_binding,
    (RBAC_GROUP, "v1", "ClusterRoleBinding"): default_role_binding,
    ("scheduling.k8s.io", "v1", "PriorityClass"): default_priority_class,
    ("storage.k8s.io", "v1", "StorageClass"): default_storage_class,
})


def has_defaults(group: str, version: str, kind: str) -> bool:
    """Whether ``apply_defaults`` changes anything for this kind."""
    return (group, version, kind) in _DEFAULTERS


def apply_defaults(group: str, version: str, kind: str, obj: dict[str, Any], *, create: bool = False,
                   priority_class: Mapping[str, Any] | None = None,
                   service_ip_families: tuple[str, ...] | None = ("IPv4",)) -> None:
    """Default ``obj`` (a decoded object of ``group/version, kind``) in place, on create and update.

    Unknown kinds are left alone. ``create=True`` adds the create-only strategy step (Namespace
    ``kubernetes`` finalizer). ``priority_class`` is the resolved PriorityClass for a Pod (see
    ``admit_pod_priority``). ``service_ip_families`` are the cluster's Service IP families (see
    ``default_service_ip_families``); ``None`` skips that step.
    """
    if not isinstance(obj, dict):
        return
    key = (group, version, kind)
    if key == ("", "v1", "Pod"):
        default_pod(obj, priority_class=priority_class)
    elif key == ("", "v1", "Namespace"):
        default_namespace(obj, create=create)
    elif key in _DEFAULTERS:
        _DEFAULTERS[key](obj)
    if key == ("", "v1", "Service") and service_ip_families is not None:
        default_service_ip_families(obj, families=service_ip_families)


# --------------------------------------------------------------------------- status

def _pod_status(obj: Obj, status: Obj) -> None:
    _default(status, "phase", "Pending")
    if _unset(status, "qosClass"):
        status["qosClass"] = compute_pod_qos(obj)
    spec = _map(obj, "spec")
    if spec is not None and spec.get("schedulingGates"):
        conditions = status.get("conditions")
        if conditions is None:
            conditions = status["conditions"] = []
        if isinstance(conditions, list) and not any(
                isinstance(c, dict) and c.get("type") == "PodScheduled" for c in conditions):
            conditions.append({"type": "PodScheduled", "status": "False", "lastProbeTime": None,
                               "lastTransitionTime": None, "reason": "SchedulingGated",
                               "message": SCHEDULING_GATED_MESSAGE})


def _node_status(obj: Obj, status: Obj) -> None:
    endpoints = _map(status, "daemonEndpoints", create=True)
    kubelet = _map(endpoints, "kubeletEndpoint", create=True)
    if kubelet is not None and kubelet.get("Port") is None:
        kubelet["Port"] = 0
    info = _map(status, "nodeInfo", create=True)
    if info is not None:
        for field in _NODE_INFO_FIELDS:
            if info.get(field) is None:
                info[field] = ""


def _zeros(*fields: str) -> Callable[[Obj, Obj], None]:
    def fill(obj: Obj, status: Obj) -> None:
        for field in fields:
            if status.get(field) is None:
                status[field] = 0
    return fill


def _phase(phase: str) -> Callable[[Obj, Obj], None]:
    def fill(obj: Obj, status: Obj) -> None:
        _default(status, "phase", phase)
    return fill


def _load_balancer(obj: Obj, status: Obj) -> None:
    _map(status, "loadBalancer", create=True)


def _hpa_v2_status(obj: Obj, status: Obj) -> None:
    if status.get("desiredReplicas") is None:
        status["desiredReplicas"] = 0
    status.setdefault("currentMetrics", None)  # Go emits `currentMetrics: null` (no omitempty)


def _nothing(obj: Obj, status: Obj) -> None:
    return None


_STATUS: Final[Mapping[tuple[str, str, str], Callable[[Obj, Obj], None]]] = MappingProxyType({
    ("", "v1", "Pod"): _pod_status,
    ("", "v1", "Namespace"): _phase("Active"),
    ("", "v1", "Node"): _node_status,
    ("", "v1", "Service"): _load_balancer,
    ("", "v1", "PersistentVolume"): _phase("Pending"),
    ("", "v1", "PersistentVolumeClaim"): _phase("Pending"),
    ("", "v1", "ReplicationController"): _zeros("replicas"),
    ("", "v1", "ResourceQuota"): _nothing,
    ("apps", "v1", "Deployment"): _nothing,
    ("apps", "v1", "ReplicaSet"): _zeros("replicas"),
    ("apps", "v1", "StatefulSet"): _zeros("replicas", "availableReplicas"),
    ("apps", "v1", "DaemonSet"): _zeros("currentNumberScheduled", "numberMisscheduled",
                                        "desiredNumberScheduled", "numberReady"),
    ("batch", "v1", "Job"): _nothing,
    ("batch", "v1", "CronJob"): _nothing,
    ("autoscaling", "v1", "HorizontalPodAutoscaler"): _zeros("currentReplicas", "desiredReplicas"),
    ("autoscaling", "v2", "HorizontalPodAutoscaler"): _hpa_v2_status,
    ("networking.k8s.io", "v1", "Ingress"): _load_balancer,
    ("policy", "v1", "PodDisruptionBudget"): _zeros("disruptionsAllowed", "currentHealthy",
                                                    "desiredHealthy", "expectedPods"),
})


def default_status(group: str, version: str, kind: str, obj: dict[str, Any]) -> None:
    """Fill the status a new object starts with: the fields Go always emits (non-omitempty
    counters, ``{}`` structs) and the Python client requires, plus Pod phase ``Pending`` with its
    QoS class and Namespace phase ``Active``.

    Only unset fields are filled, so it is also safe after status writes (e.g. a kubelet's Node
    status without ``nodeInfo``). Call it after ``apply_defaults`` (the QoS class needs requests
    already copied from limits). Kinds without a status are left alone.
    """
    fill = _STATUS.get((group, version, kind))
    if fill is None or not isinstance(obj, dict):
        return
    status = _map(obj, "status", create=True)
    if status is not None:
        fill(obj, status)
