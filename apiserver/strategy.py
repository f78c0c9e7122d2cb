"""Per-resource rules for create, update and status: what the server sets, keeps and checks.

Like Kubernetes' registry strategies: on create the server sets uid, creationTimestamp and
generation and resets status where status is a subresource; on update it keeps what clients may
not change (uid, creationTimestamp, status on the main resource, spec on /status) and bumps
generation when the spec changed; validation answers 422 with field causes.
"""

from __future__ import annotations

import base64
from typing import Any, Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apimachinery import meta as m
from apimachinery.defaults import apply_defaults, default_status
from apimachinery import validation as v
from apimachinery.cron import CronError, Schedule
from apimachinery.gofmt import GoVerbatim
from apimachinery.quantity import Quantity, QuantityError
from apimachinery.registry import ResourceType
from apimachinery.selectors import LabelSelector
from apimachinery.validation import FieldError, Path

# Resources whose names must be DNS-1123 labels (the rest: subdomains), as upstream validates them.
_LABEL_NAMED = {"namespaces", "services"}
_IMMUTABLE_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds")

# Field selectors each resource supports besides metadata.name and metadata.namespace.
FIELD_LABELS: dict[str, tuple[str, ...]] = {
    "pods": ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
             "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"),
    "events": ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
               "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
               "reason", "reportingComponent", "source", "type"),
    "nodes": ("spec.unschedulable",),
    "namespaces": ("status.phase",),
    "secrets": ("type",),
    "replicasets": ("status.replicas",),
    "jobs": ("status.successful",),
    "persistentvolumeclaims": ("spec.volumeName",),
    "services": ("spec.clusterIP", "spec.type"),
}


def field_value(obj: dict[str, Any], path: str) -> str | None:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    if cur is None:
        # Kubernetes selects on empty strings for absent scalar fields (spec.nodeName= means unbound).
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    if isinstance(cur, (str, int)):
        return str(cur)
    return None


def _fold_string_data(rt: ResourceType, obj: dict[str, Any]) -> None:
    """A Secret's write-only ``stringData`` is merged into ``data`` (base64), as upstream does."""
    if rt.group != "" or rt.plural != "secrets":
        return
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = obj.get("data") if isinstance(obj.get("data"), dict) else {}
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        obj["data"] = data


def _generate_job_selector(job: dict[str, Any]) -> None:
    """Upstream's Job strategy on create: unless ``spec.manualSelector``, the pods of the Job are
    selected by its uid (``batch.kubernetes.io/controller-uid``), and the template carries that and
    the Job's name (in both label forms), so ``kubectl logs job/NAME`` finds exactly its pods."""
    spec = job.setdefault("spec", {})
    if spec.get("manualSelector") is True:
        return
    meta = job["metadata"]
    uid, name = meta["uid"], meta.get("name", "")
    template = spec.setdefault("template", {})
    labels = template.setdefault("metadata", {}).setdefault("labels", {})
    for key, value in (("job-name", name), ("batch.kubernetes.io/job-name", name),
                       ("controller-uid", uid), ("batch.kubernetes.io/controller-uid", uid)):
        labels.setdefault(key, value)  # labels the user set stay (validation refuses a mismatch)
    selector = spec.setdefault("selector", {})
    selector.setdefault("matchLabels", {}).setdefault("batch.kubernetes.io/controller-uid", uid)


def supported_fields(rt: ResourceType) -> tuple[str, ...]:
    return ("metadata.name", "metadata.namespace", *FIELD_LABELS.get(rt.plural, ()))


def _spec_of(obj: dict[str, Any]) -> Any:
    return {k: val for k, val in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


class Strategy:
    def __init__(self, rt: ResourceType) -> None:
        self.rt = rt

    # ------------------------------------------------------------------ create

    def prepare_create(self, obj: dict[str, Any]) -> None:
        meta = obj.setdefault("metadata", {})
        meta["uid"] = m.new_uid()
        meta["creationTimestamp"] = m.now_rfc3339()
        for key in ("deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion", "selfLink"):
            meta.pop(key, None)
        if self.rt.has_spec_generation:
            meta["generation"] = 1
        elif "generation" in meta:
            meta["generation"] = 1
        if self.rt.status_subresource and self.rt.plural not in ("namespaces",):
            obj.pop("status", None)
        obj["apiVersion"] = self.rt.api_version
        obj["kind"] = self.rt.kind
        _fold_string_data(self.rt, obj)
        # create=True adds the namespace's "kubernetes" finalizer (the namespace controller removes it).
        apply_defaults(self.rt.group, self.rt.version, self.rt.kind, obj, create=True)
        default_status(self.rt.group, self.rt.version, self.rt.kind, obj)
        if (self.rt.group, self.rt.kind) == ("batch", "Job"):
            _generate_job_selector(obj)

    # ------------------------------------------------------------------ update

    def prepare_update(self, new: dict[str, Any], old: dict[str, Any]) -> None:
        new_meta = new.setdefault("metadata", {})
        old_meta = old["metadata"]
        for key in _IMMUTABLE_META:
            if key in old_meta:
                new_meta[key] = old_meta[key]
            else:
                new_meta.pop(key, None)
        new["apiVersion"] = self.rt.api_version
        new["kind"] = self.rt.kind
        if self.rt.status_subresource:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        _fold_string_data(self.rt, new)
        apply_defaults(self.rt.group, self.rt.version, self.rt.kind, new)
        generation = old_meta.get("generation")
        if generation is not None:
            changed = _spec_of(new) != _spec_of(old)
            # Setting a deletionTimestamp also bumps generation upstream; spec changes always do.
            new_meta["generation"] = generation + 1 if changed else generation
        elif self.rt.has_spec_generation:
            new_meta["generation"] = 1

    def prepare_status_update(self, new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
        """A write to /status: only status (and, as upstream allows, labels/annotations are kept) changes."""
        merged = m.deep_copy(old)
        if "status" in new:
            merged["status"] = new["status"]
        else:
            merged.pop("status", None)
        return merged

    def prepare_subresource_update(self, subresource: str, new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
        """A write to a subresource that owns part of the object: that part of ``new``, the rest of ``old``."""
        if subresource == "ephemeralcontainers":
            merged = m.deep_copy(old)
            containers = (new.get("spec") or {}).get("ephemeralContainers")
            spec = merged.setdefault("spec", {})
            if containers:
                spec["ephemeralContainers"] = containers
            else:
                spec.pop("ephemeralContainers", None)
            apply_defaults(self.rt.group, self.rt.version, self.rt.kind, merged)
            return merged
        return self.prepare_status_update(new, old)

    def validate_subresource_update(self, subresource: str, new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
        if subresource == "ephemeralcontainers":
            return validate_ephemeral_containers_update(new, old)
        return self.validate(new, old)

    # ------------------------------------------------------------------ validation

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
        meta = obj.get("metadata") or {}
        name_fn = v.name_is_dns_label if self.rt.plural in _LABEL_NAMED else v.name_is_dns_subdomain
        if self.rt.plural == "services":
            name_fn = v.name_is_dns1035_label
        elif self.rt.group == "rbac.authorization.k8s.io":
            name_fn = v.is_valid_path_segment_name  # RBAC names may contain ':' (system:node, ...)
        errs = list(v.validate_object_meta(meta, namespaced=self.rt.namespaced, name_fn=name_fn))
        if old is not None:
            old_meta = old.get("metadata") or {}
            if meta.get("name") != old_meta.get("name"):
                errs.append(FieldError.invalid(Path.of("metadata", "name"), meta.get("name"), "field is immutable"))
        validator = _KIND_VALIDATORS.get((self.rt.group, self.rt.kind))
        if validator is not None:
            errs.extend(validator(obj, old))
        return errs


# ---------------------------------------------------------------------- per-kind checks

def _containers(spec: dict[str, Any], path: Path) -> list[FieldError]:
    errs: list[FieldError] = []
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        return [FieldError.required(path.child("containers"), "")]
    seen: set[str] = set()
    for i, c in enumerate(containers):
        cp = path.child("containers").index(i)
        if not isinstance(c, dict):
            errs.append(FieldError.invalid(cp, c, "must be an object"))
            continue
        name = c.get("name")
        if not name:
            errs.append(FieldError.required(cp.child("name"), ""))
        else:
            for msg in v.is_dns1123_label(str(name)):
                errs.append(FieldError.invalid(cp.child("name"), name, msg))
            if name in seen:
                errs.append(FieldError.duplicate(cp.child("name"), name))
            seen.add(name)
        if not c.get("image"):
            errs.append(FieldError.required(cp.child("image"), ""))
        for j, port in enumerate(c.get("ports") or []):
            if not isinstance(port, dict):
                continue
            pp = cp.child("ports").index(j)
            for field in ("containerPort", "hostPort"):
                num = port.get(field)
                if field == "hostPort" and num in (None, 0):
                    continue
                if not isinstance(num, int) or isinstance(num, bool) or not 1 <= num <= 65535:
                    errs.append(FieldError.invalid(pp.child(field), num, "must be between 1 and 65535, inclusive"))
        if isinstance(c.get("resources"), dict):
            errs.extend(_resources(c["resources"], cp.child("resources")))
    return errs


def _quantities(values: Any, path: Path, errs: list[FieldError]) -> dict[str, Quantity]:
    """The quantities of a requests/limits map; a value that is not one is an error in ``errs``
    (upstream's decoder refuses it, with the same words)."""
    out: dict[str, Quantity] = {}
    for name, value in (values.items() if isinstance(values, dict) else ()):
        try:
            out[str(name)] = Quantity(value)
        except QuantityError as err:
            errs.append(FieldError.invalid(path.key(str(name)), value, str(err)))
    return out


def _resources(resources: dict[str, Any], path: Path) -> list[FieldError]:
    """ValidateResourceRequirements: quantities only, none negative, and no request over its limit."""
    errs: list[FieldError] = []
    limits = _quantities(resources.get("limits"), path.child("limits"), errs)
    requests = _quantities(resources.get("requests"), path.child("requests"), errs)
    for field, values in (("limits", limits), ("requests", requests)):
        for name, q in values.items():
            if q.sign() < 0:
                errs.append(FieldError.invalid(path.child(field).key(name), str(q), "must be greater than or equal to 0"))
    for name, q in requests.items():
        limit = limits.get(name)
        if limit is not None and q.nanos > limit.nanos:
            errs.append(FieldError.invalid(path.child("requests"), str(q),
                                           f"must be less than or equal to {name} limit of {limit}"))
    return errs


def _validate_pod(obj: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [FieldError.required(Path.of("spec"), "")]
    errs = _containers(spec, Path.of("spec"))
    if old is None and spec.get("ephemeralContainers"):
        errs.append(FieldError.forbidden(Path.of("spec", "ephemeralContainers"), "cannot be set on create"))
    if old is not None:
        old_spec = old.get("spec") or {}
        # A pod's spec is immutable but for a few fields (images, activeDeadlineSeconds, tolerations additions).
        mutable = ("containers", "initContainers", "activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds")
        strip = lambda s: {k: val for k, val in s.items() if k not in mutable}  # noqa: E731
        if strip(spec) != strip(old_spec):
            errs.append(FieldError.forbidden(Path.of("spec"), "pod updates may not change fields other than "
                                             "`spec.containers[*].image`,`spec.initContainers[*].image`,"
                                             "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
                                             "existing tolerations),`spec.terminationGracePeriodSeconds` (allow it "
                                             "to be set to 1 if it was previously negative)"))
    return errs


# Fields of a container that an ephemeral container may not set (it gets no ports, probes, hooks or resources).
_EPHEMERAL_FORBIDDEN = ("ports", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle", "resources",
                        "resizePolicy", "restartPolicy")


def validate_ephemeral_containers_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    """A write to pods/ephemeralcontainers: containers may be added, never changed or removed."""
    if (m.annotations(old) or {}).get("kubernetes.io/config.mirror") is not None:
        return [FieldError.forbidden(Path.of(""), "static pods do not support ephemeral containers")]
    spec = new.get("spec") or {}
    path = Path.of("spec", "ephemeralContainers")
    containers = spec.get("ephemeralContainers") or []
    if not isinstance(containers, list):
        return [FieldError.invalid(path, containers, "must be a list")]
    existing = {c.get("name"): c for c in (old.get("spec") or {}).get("ephemeralContainers") or []
                if isinstance(c, dict)}
    pod_containers = {c.get("name") for key in ("containers", "initContainers")
                      for c in spec.get(key) or [] if isinstance(c, dict)}
    errs: list[FieldError] = []
    seen: set[str] = set()
    for i, c in enumerate(containers):
        cp = path.index(i)
        if not isinstance(c, dict):
            errs.append(FieldError.invalid(cp, c, "must be an object"))
            continue
        name = c.get("name")
        if not name or not isinstance(name, str):
            errs.append(FieldError.required(cp.child("name"), ""))
            continue
        for msg in v.is_dns1123_label(name):
            errs.append(FieldError.invalid(cp.child("name"), name, msg))
        if name in pod_containers or name in seen:
            errs.append(FieldError.duplicate(cp.child("name"), name))
        seen.add(name)
        if name in existing:
            if existing[name] != c:
                errs.append(FieldError.forbidden(cp, f'existing ephemeral containers "{name}" may not be changed'))
            continue
        if not c.get("image"):
            errs.append(FieldError.required(cp.child("image"), ""))
        for field in _EPHEMERAL_FORBIDDEN:
            if c.get(field):
                errs.append(FieldError.forbidden(cp.child(field), "cannot be set for an Ephemeral Container"))
        target = c.get("targetContainerName")
        if target and target not in pod_containers:
            errs.append(FieldError.not_found(cp.child("targetContainerName"), target))
    for name in existing:
        if name not in seen:
            errs.append(FieldError.forbidden(path, f'existing ephemeral containers "{name}" may not be removed'))
    return errs


def _validate_workload(obj: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [FieldError.required(Path.of("spec"), "")]
    errs: list[FieldError] = []
    selector = spec.get("selector")
    template = spec.get("template")
    if not isinstance(selector, dict) or not selector:
        errs.append(FieldError.required(Path.of("spec", "selector"), ""))
    if not isinstance(template, dict):
        errs.append(FieldError.required(Path.of("spec", "template"), ""))
        return errs
    labels = (template.get("metadata") or {}).get("labels") or {}
    if isinstance(selector, dict) and selector:
        try:
            sel = LabelSelector.from_structured(selector)
            if not sel.matches(labels):
                errs.append(FieldError.invalid(Path.of("spec", "template", "metadata", "labels"), labels,
                                               "`selector` does not match template `labels`"))
        except Exception as exc:  # noqa: BLE001 - a bad selector is a validation error
            errs.append(FieldError.invalid(Path.of("spec", "selector"), selector, str(exc)))
        if old is not None and (old.get("spec") or {}).get("selector") != selector:
            errs.append(FieldError.invalid(Path.of("spec", "selector"), selector, "field is immutable"))
    replicas = spec.get("replicas")
    if replicas is not None and (not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0):
        errs.append(FieldError.invalid(Path.of("spec", "replicas"), replicas, "must be greater than or equal to 0"))
    pod_spec = template.get("spec")
    if not isinstance(pod_spec, dict):
        errs.append(FieldError.required(Path.of("spec", "template", "spec"), ""))
    else:
        errs.extend(_containers(pod_spec, Path.of("spec", "template", "spec")))
        errs.extend(_restart_policy(pod_spec, ("Always",)))
    return errs


def _is_zero(val: Any) -> bool:
    return val in (0, "0", "0%")


def _validate_deployment(obj: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
    errs = _validate_workload(obj, old)
    strategy = (obj.get("spec") or {}).get("strategy")
    if not isinstance(strategy, dict):
        return errs
    stype = strategy.get("type") or "RollingUpdate"
    path = Path.of("spec", "strategy")
    if stype not in ("RollingUpdate", "Recreate"):
        errs.append(FieldError.not_supported(path.child("type"), stype, ["Recreate", "RollingUpdate"]))
    ru = strategy.get("rollingUpdate")
    if stype == "Recreate" and ru is not None:
        errs.append(FieldError.forbidden(path.child("rollingUpdate"),
                                         "may not be specified when strategy `type` is 'Recreate'"))
    elif stype == "RollingUpdate" and isinstance(ru, dict):
        surge = ru.get("maxSurge", "25%")
        unavailable = ru.get("maxUnavailable", "25%")
        if _is_zero(surge) and _is_zero(unavailable):
            errs.append(FieldError.invalid(path.child("rollingUpdate").child("maxUnavailable"), unavailable,
                                           "may not be 0 when maxSurge is 0"))
    return errs


def _restart_policy(pod_spec: dict[str, Any], allowed: tuple[str, ...]) -> list[FieldError]:
    """Upstream: workload templates allow only Always, Job templates only OnFailure/Never (unset defaults to Always)."""
    policy = pod_spec.get("restartPolicy") or "Always"
    path = Path.of("spec", "template", "spec", "restartPolicy")
    if policy in allowed:
        return []
    if allowed == ("Always",):
        return [FieldError.not_supported(path, policy, list(allowed))]
    return [FieldError.required(path, "valid values: " + ", ".join(f'"{a}"' for a in allowed))]


def _non_negative(spec: dict[str, Any], field: str) -> list[FieldError]:
    val = spec.get(field)
    if val is not None and (not isinstance(val, int) or isinstance(val, bool) or val < 0):
        return [FieldError.invalid(Path.of("spec", field), val, "must be greater than or equal to 0")]
    return []


def _validate_job(obj: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [FieldError.required(Path.of("spec"), "")]
    errs: list[FieldError] = []
    for field in ("parallelism", "completions", "backoffLimit"):
        errs.extend(_non_negative(spec, field))
    template = spec.get("template")
    if not isinstance(template, dict):
        errs.append(FieldError.required(Path.of("spec", "template"), ""))
        return errs
    pod_spec = template.get("spec")
    if not isinstance(pod_spec, dict):
        errs.append(FieldError.required(Path.of("spec", "template", "spec"), ""))
    else:
        errs.extend(_containers(pod_spec, Path.of("spec", "template", "spec")))
        errs.extend(_restart_policy(pod_spec, ("OnFailure", "Never")))
    selector = spec.get("selector")
    if isinstance(selector, dict) and selector:  # generated on create unless manualSelector
        labels = (template.get("metadata") or {}).get("labels") or {}
        try:
            if not LabelSelector.from_structured(selector).matches(labels):
                errs.append(FieldError.invalid(Path.of("spec", "template", "metadata", "labels"), labels,
                                               "`selector` does not match template `labels`"))
        except Exception as exc:  # noqa: BLE001 - a bad selector is a validation error
            errs.append(FieldError.invalid(Path.of("spec", "selector"), selector, str(exc)))
    if old is not None:
        old_spec = old.get("spec") or {}
        if old_spec.get("template") != template:
            errs.append(FieldError.invalid(Path.of("spec", "template"), template, "field is immutable"))
        if old_spec.get("selector") is not None and old_spec.get("selector") != spec.get("selector"):
            errs.append(FieldError.invalid(Path.of("spec", "selector"), spec.get("selector"), "field is immutable"))
    return errs


def _validate_service(obj: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
    spec = obj.get("spec") or {}
    errs: list[FieldError] = []
    stype = spec.get("type", "ClusterIP")
    if stype not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        errs.append(FieldError.not_supported(Path.of("spec", "type"), stype,
                                             ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]))
    ports = spec.get("ports") or []
    if stype != "ExternalName" and not ports and spec.get("clusterIP") != "None":
        errs.append(FieldError.required(Path.of("spec", "ports"), ""))
    port_names: set[str] = set()
    port_keys: set[tuple[str, int]] = set()
    for i, port in enumerate(ports):
        p = Path.of("spec", "ports").index(i)
        num = port.get("port") if isinstance(port, dict) else None
        if not isinstance(num, int) or isinstance(num, bool) or not 1 <= num <= 65535:
            errs.append(FieldError.invalid(p.child("port"), num, "must be between 1 and 65535, inclusive"))
        if len(ports) > 1 and isinstance(port, dict) and not port.get("name"):
            errs.append(FieldError.required(p.child("name"), ""))
        pname = port.get("name") if isinstance(port, dict) else None
        if pname:
            if pname in port_names:
                errs.append(FieldError.duplicate(p.child("name"), pname))
            port_names.add(pname)
        if isinstance(num, int) and isinstance(port, dict):
            protocol = str(port.get("protocol") or "TCP")
            if (protocol, num) in port_keys:
                # Upstream keys its check on a ServicePort holding just these two, printed with %#v.
                errs.append(FieldError.duplicate(p, GoVerbatim(
                    f'core.ServicePort{{Name:"", Protocol:"{protocol}", AppProtocol:(*string)(nil), Port:{num}, '
                    'TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}')))
            port_keys.add((protocol, num))
    if old is not None:
        old_ip = (old.get("spec") or {}).get("clusterIP")
        if old_ip and spec.get("clusterIP") not in (None, "", old_ip):
            errs.append(FieldError.invalid(Path.of("spec", "clusterIP"), spec.get("clusterIP"), "field is immutable"))
    return errs


def _validate_config_data(obj: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
    errs: list[FieldError] = []
    for field in ("data", "binaryData", "stringData"):
        data = obj.get(field)
        if not isinstance(data, dict):
            continue
        for key in data:
            for msg in v.is_config_map_key(str(key)):
                errs.append(FieldError.invalid(Path.of(field).key(str(key)), key, msg))
    if obj.get("kind") == "Secret" and obj.get("type") == "kubernetes.io/tls":
        data = {**(obj.get("data") or {}), **(obj.get("stringData") or {})}
        for key in ("tls.crt", "tls.key"):
            if key not in data:
                errs.append(FieldError.required(Path.of("data").key(key), ""))
    return errs


def _validate_cronjob(obj: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [FieldError.required(Path.of("spec"), "")]
    schedule = spec.get("schedule")
    path = Path.of("spec", "schedule")
    if not isinstance(schedule, str) or not schedule:
        return [FieldError.required(path, "")]
    errs: list[FieldError] = []
    if "TZ" in schedule:
        errs.append(FieldError.invalid(path, schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
    else:
        try:
            Schedule.parse(schedule)
        except CronError as exc:
            errs.append(FieldError.invalid(path, schedule, str(exc)))
    zone = spec.get("timeZone")
    if zone is not None:
        try:
            ZoneInfo(str(zone))
        except (ZoneInfoNotFoundError, ValueError):
            errs.append(FieldError.invalid(Path.of("spec", "timeZone"), zone, f"unknown time zone {zone}"))
    return errs


def _validate_ingress(obj: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
    errs: list[FieldError] = []
    rules = (obj.get("spec") or {}).get("rules") or []
    for i, rule in enumerate(rules if isinstance(rules, list) else []):
        paths = ((rule.get("http") or {}).get("paths") or []) if isinstance(rule, dict) else []
        for j, item in enumerate(paths if isinstance(paths, list) else []):
            p = Path.of("spec", "rules").index(i).child("http").child("paths").index(j)
            kind = item.get("pathType") if isinstance(item, dict) else None
            if kind is None:
                errs.append(FieldError.required(p.child("pathType"), "pathType must be specified"))
            elif kind not in ("Exact", "Prefix", "ImplementationSpecific"):
                errs.append(FieldError.not_supported(p.child("pathType"), kind,
                                                     ["Exact", "ImplementationSpecific", "Prefix"]))
    return errs


_KIND_VALIDATORS: dict[tuple[str, str], Callable[[dict[str, Any], dict[str, Any] | None], list[FieldError]]] = {
    ("", "Pod"): _validate_pod,
    ("apps", "Deployment"): _validate_deployment,
    ("apps", "ReplicaSet"): _validate_workload,
    ("apps", "StatefulSet"): _validate_workload,
    ("apps", "DaemonSet"): _validate_workload,
    ("", "Service"): _validate_service,
    ("batch", "Job"): _validate_job,
    ("batch", "CronJob"): _validate_cronjob,
    ("networking.k8s.io", "Ingress"): _validate_ingress,
    ("", "ConfigMap"): _validate_config_data,
    ("", "Secret"): _validate_config_data,
}
