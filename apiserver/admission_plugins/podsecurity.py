"""PodSecurity: the Pod Security Standards (baseline, restricted) chosen per namespace by label.

Namespace labels, as upstream's pod-security admission reads them::

    pod-security.kubernetes.io/enforce: privileged | baseline | restricted   # reject violating pods
    pod-security.kubernetes.io/warn: ...                                      # Warning header only
    pod-security.kubernetes.io/audit: ...                                     # accepted, not acted on
    pod-security.kubernetes.io/<mode>-version: v1.32 | latest                 # accepted; always "latest"

Pods (create, and updates that change a container image) violating the enforce level are
rejected with upstream's message::

    pods "x" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false
    (container "c" must set securityContext.allowPrivilegeEscalation=false), ...

Workloads (Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs, CronJobs, ReplicationControllers,
PodTemplates) are never rejected: violations of their pod template give ``would violate
PodSecurity ...`` warnings, as upstream. The warn level gives the same warning for pods. Namespace
creates/updates with an unknown level are 422; tightening ``enforce`` warns about existing pods that
would violate it.

The checks and their texts follow k8s.io/pod-security-admission/policy at 1.32; results are ordered
as upstream orders them (baseline check IDs sorted, then restricted ones; a restricted check
replaces the baseline check it overrides).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from apimachinery import errors
from apimachinery.validation import FieldError, Path

from ..handlers import Operation
from .common import Lookups, containers, forbidden, is_pod, pod_template, security_context

PREFIX = "pod-security.kubernetes.io/"
LEVELS = ("privileged", "baseline", "restricted")
MODES = ("enforce", "audit", "warn")

Result = tuple[str, str] | None  # (forbidden reason, detail) or None when allowed
Check = Callable[[dict[str, Any], dict[str, Any]], Result]


def _plural(singular: str, plural: str, n: int) -> str:
    return singular if n == 1 else plural


def _jq(items: list[str] | set[str]) -> str:
    from apimachinery.gofmt import go_quote

    return ", ".join(go_quote(str(i)) for i in items)


def _names(items: list[str], noun: str = "container") -> str:
    return f"{_plural(noun, noun + 's', len(items))} {_jq(items)}"


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


# ---------------------------------------------------------------------- baseline checks

def check_apparmor(meta: dict[str, Any], spec: dict[str, Any]) -> Result:
    setters: list[str] = []
    bad: set[str] = set()
    allowed_types = ("RuntimeDefault", "Localhost")
    profile = security_context(spec).get("appArmorProfile")
    if isinstance(profile, dict) and profile.get("type") not in allowed_types:
        setters.append("pod")
        bad.add(str(profile.get("type")))
    bad_containers = []
    for c in containers(spec):
        p = security_context(c).get("appArmorProfile")
        if isinstance(p, dict) and p.get("type") not in allowed_types:
            bad_containers.append(str(c.get("name", "")))
            bad.add(str(p.get("type")))
    if bad_containers:
        setters.append(_names(bad_containers))
    values = sorted(bad)
    annotations = meta.get("annotations") or {}
    forbidden_annotations = sorted(
        f"{k}={_jq([v])}" for k, v in annotations.items()
        if isinstance(k, str) and k.startswith("container.apparmor.security.beta.kubernetes.io/")
        and not (v == "" or v == "runtime/default" or str(v).startswith("localhost/")))
    if forbidden_annotations:
        values += forbidden_annotations
        setters.append(_plural("annotation", "annotations", len(forbidden_annotations)))
    if setters:
        return (_plural("forbidden AppArmor profile", "forbidden AppArmor profiles", len(values)),
                f"{' and '.join(setters)} must not set AppArmor profile type to {_jq(values)}")
    return None


BASELINE_CAPABILITIES = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                         "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}


def _caps(c: dict[str, Any]) -> dict[str, Any] | None:
    caps = security_context(c).get("capabilities")
    return caps if isinstance(caps, dict) else None


def check_capabilities_baseline(meta: dict[str, Any], spec: dict[str, Any]) -> Result:
    bad_containers: list[str] = []
    bad_caps: set[str] = set()
    for c in containers(spec):
        caps = _caps(c)
        if caps is None:
            continue
        extra = {str(a) for a in caps.get("add") or [] if str(a) not in BASELINE_CAPABILITIES}
        if extra:
            bad_containers.append(str(c.get("name", "")))
            bad_caps |= extra
    if bad_containers:
        return ("non-default capabilities",
                f"{_names(bad_containers)} must not include {_jq(sorted(bad_caps))} in securityContext.capabilities.add")
    return None


def check_host_namespaces(meta: dict[str, Any], spec: dict[str, Any]) -> Result:
    used = sorted(k for k in ("hostIPC", "hostNetwork", "hostPID") if spec.get(k) is True)
    return ("host namespaces", ", ".join(used)) if used else None


def check_host_path_volumes(meta: dict[str, Any], spec: dict[str, Any]) -> Result:
    bad = [str(v.get("name", "")) for v in spec.get("volumes") or [] if isinstance(v, dict) and v.get("hostPath") is not None]
    return ("hostPath volumes", _names(bad, "volume")) if bad else None


def check_host_ports(meta: dict[str, Any], spec: dict[str, Any]) -> Result:
    bad_containers: list[str] = []
    ports: set[int] = set()
    for c in containers(spec):
        found = [p.get("hostPort") for p in c.get("ports") or [] if isinstance(p, dict) and p.get("hostPort")]
        if found:
            bad_containers.append(str(c.get("name", "")))
            ports |= {int(p) for p in found if isinstance(p, int)}
    if bad_containers:
        port_list = sorted(str(p) for p in ports)  # upstream sorts them as strings
        return ("hostPort", f"{_names(bad_containers)} {_plural('uses', 'use', len(bad_containers))} "
                            f"{_plural('hostPort', 'hostPorts', len(port_list))} {', '.join(port_list)}")
    return None


def check_privileged(meta: dict[str, Any], spec: dict[str, Any]) -> Result:
    bad = [str(c.get("name", "")) for c in containers(spec) if security_context(c).get("privileged") is True]
    return ("privileged", f"{_names(bad)} must not set securityContext.privileged=true") if bad else None


def check_proc_mount(meta: dict[str, Any], spec: dict[str, Any]) -> Result:
    bad: list[str] = []
    types: set[str] = set()
    for c in containers(spec):
        pm = security_context(c).get("procMount")
        if pm is not None and pm != "Default":
            bad.append(str(c.get("name", "")))
            types.add(str(pm))
    if bad:
        return ("procMount", f"{_names(bad)} must not set securityContext.procMount to {_jq(sorted(types))}")
    return None


SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t"}


def check_selinux(meta: dict[str, Any], spec: dict[str, Any]) -> Result:
    bad_types: set[str] = set()
    flags = {"user": False, "role": False}

    def valid(opts: dict[str, Any]) -> bool:
        ok = True
        if str(opts.get("type") or "") not in SELINUX_TYPES:
            ok = False
            bad_types.add(str(opts.get("type")))
        for key in ("user", "role"):
            if opts.get(key):
                ok = False
                flags[key] = True
        return ok

    setters: list[str] = []
    opts = security_context(spec).get("seLinuxOptions")
    if isinstance(opts, dict) and not valid(opts):
        setters.append("pod")
    bad_containers = []
    for c in containers(spec):
        o = security_context(c).get("seLinuxOptions")
        if isinstance(o, dict) and not valid(o):
            bad_containers.append(str(c.get("name", "")))
    if bad_containers:
        setters.append(_names(bad_containers))
    if not setters:
        return None
    data: list[str] = []
    if bad_types:
        data.append(f"{_plural('type', 'types', len(bad_types))} {_jq(sorted(bad_types))}")
    if flags["user"]:
        data.append("user may not be set")
    if flags["role"]:
        data.append("role may not be set")
    return ("seLinuxOptions", f"{' and '.join(setters)} set forbidden securityContext.seLinuxOptions: {'; '.join(data)}")


def _seccomp_type(holder: dict[str, Any]) -> tuple[bool, Any]:
    profile = security_context(holder).get("seccompProfile")
    return (True, profile.get("type")) if isinstance(profile, dict) else (False, None)


def _valid_seccomp(t: Any) -> bool:
    return t in ("RuntimeDefault", "Localhost")


def check_seccomp_baseline(meta: dict[str, Any], spec: dict[str, Any]) -> Result:
    setters: list[str] = []
    bad: set[str] = set()
    is_set, t = _seccomp_type(spec)
    if is_set and not _valid_seccomp(t):
        setters.append("pod")
        bad.add(str(t))
    bad_containers = []
    for c in containers(spec):
        is_set, t = _seccomp_type(c)
        if is_set and not _valid_seccomp(t):
            bad_containers.append(str(c.get("name", "")))
            bad.add(str(t))
    if bad_containers:
        setters.append(_names(bad_containers))
    if setters:
        return ("seccompProfile", f"{' and '.join(setters)} must not set securityContext.seccompProfile.type to "
                                  f"{_jq(sorted(bad))}")
    return None


SAFE_SYSCTLS = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
                "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start",
                "net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
                "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"}


def check_sysctls(meta: dict[str, Any], spec: dict[str, Any]) -> Result:
    bad = [str(s.get("name")) for s in security_context(spec).get("sysctls") or []
           if isinstance(s, dict) and s.get("name") not in SAFE_SYSCTLS]
    return ("forbidden sysctls", ", ".join(bad)) if bad else None


def check_host_process(meta: dict[str, Any], spec: dict[str, Any]) -> Result:
    def host_process(holder: dict[str, Any]) -> bool:
        win = security_context(holder).get("windowsOptions")
        return isinstance(win, dict) and win.get("hostProcess") is True

    setters = ["pod"] if host_process(spec) else []
    bad = [str(c.get("name", "")) for c in containers(spec) if host_process(c)]
    if bad:
        setters.append(_names(bad))
    if setters:
        return ("hostProcess", f"{' and '.join(setters)} must not set securityContext.windowsOptions.hostProcess=true")
    return None


# ---------------------------------------------------------------------- restricted checks

def check_allow_privilege_escalation(meta: dict[str, Any], spec: dict[str, Any]) -> Result:
    bad = [str(c.get("name", "")) for c in containers(spec)
           if security_context(c).get("allowPrivilegeEscalation") is not False]
    if bad:
        return ("allowPrivilegeEscalation != false",
                f"{_names(bad)} must set securityContext.allowPrivilegeEscalation=false")
    return None


def check_capabilities_restricted(meta: dict[str, Any], spec: dict[str, Any]) -> Result:
    missing_drop: list[str] = []
    adding: list[str] = []
    caps_added: set[str] = set()
    for c in containers(spec):
        caps = _caps(c)
        if caps is None:
            missing_drop.append(str(c.get("name", "")))
            continue
        if "ALL" not in [str(d) for d in caps.get("drop") or []]:
            missing_drop.append(str(c.get("name", "")))
        extra = {str(a) for a in caps.get("add") or [] if str(a) != "NET_BIND_SERVICE"}
        if extra:
            adding.append(str(c.get("name", "")))
            caps_added |= extra
    details = []
    if missing_drop:
        details.append(f'{_names(missing_drop)} must set securityContext.capabilities.drop=["ALL"]')
    if adding:
        details.append(f"{_names(adding)} must not include {_jq(sorted(caps_added))} in securityContext.capabilities.add")
    return ("unrestricted capabilities", "; ".join(details)) if details else None


_ALLOWED_VOLUME_SOURCES = ("configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                           "projected", "secret")
_RESTRICTED_VOLUME_SOURCES = ("hostPath", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "nfs", "iscsi",
                              "glusterfs", "rbd", "flexVolume", "cinder", "cephfs", "flocker", "fc", "azureFile",
                              "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk", "portworxVolume",
                              "scaleIO", "storageos")


def check_restricted_volumes(meta: dict[str, Any], spec: dict[str, Any]) -> Result:
    bad: list[str] = []
    types: set[str] = set()
    for v in spec.get("volumes") or []:
        if not isinstance(v, dict) or any(v.get(k) is not None for k in _ALLOWED_VOLUME_SOURCES):
            continue
        bad.append(str(v.get("name", "")))
        types.add(next((k for k in _RESTRICTED_VOLUME_SOURCES if v.get(k) is not None), "unknown"))
    if bad:
        return ("restricted volume types",
                f"{_names(bad, 'volume')} {_plural('uses', 'use', len(bad))} "
                f"{_plural('restricted volume type', 'restricted volume types', len(types))} {_jq(sorted(types))}")
    return None


def check_run_as_non_root(meta: dict[str, Any], spec: dict[str, Any]) -> Result:
    setters: list[str] = []
    pod_value = _bool(security_context(spec).get("runAsNonRoot"))
    if pod_value is False:
        setters.append("pod")
    explicit_bad: list[str] = []
    implicit_bad: list[str] = []
    for c in containers(spec):
        value = _bool(security_context(c).get("runAsNonRoot"))
        if value is not None:
            if not value:
                explicit_bad.append(str(c.get("name", "")))
        elif pod_value is not True:
            implicit_bad.append(str(c.get("name", "")))
    if explicit_bad:
        setters.append(_names(explicit_bad))
    if setters:
        return ("runAsNonRoot != true", f"{' and '.join(setters)} must not set securityContext.runAsNonRoot=false")
    if implicit_bad:
        return ("runAsNonRoot != true", f"pod or {_names(implicit_bad)} must set securityContext.runAsNonRoot=true")
    return None


def check_run_as_user(meta: dict[str, Any], spec: dict[str, Any]) -> Result:
    def root(holder: dict[str, Any]) -> bool:
        uid = security_context(holder).get("runAsUser")
        return isinstance(uid, int) and not isinstance(uid, bool) and uid == 0

    setters = ["pod"] if root(spec) else []
    bad = [str(c.get("name", "")) for c in containers(spec) if root(c)]
    if bad:
        setters.append(_names(bad))
    return ("runAsUser=0", f"{' and '.join(setters)} must not set runAsUser=0") if setters else None


def check_seccomp_restricted(meta: dict[str, Any], spec: dict[str, Any]) -> Result:
    setters: list[str] = []
    bad: set[str] = set()
    pod_set, t = _seccomp_type(spec)
    pod_ok = False
    if pod_set:
        if not _valid_seccomp(t):
            setters.append("pod")
            bad.add(str(t))
        else:
            pod_ok = True
    explicit_bad: list[str] = []
    implicit_bad: list[str] = []
    for c in containers(spec):
        is_set, ct = _seccomp_type(c)
        if is_set:
            if not _valid_seccomp(ct):
                explicit_bad.append(str(c.get("name", "")))
                bad.add(str(ct))
        elif not pod_ok:
            implicit_bad.append(str(c.get("name", "")))
    if explicit_bad:
        setters.append(_names(explicit_bad))
    if setters:
        return ("seccompProfile", f"{' and '.join(setters)} must not set securityContext.seccompProfile.type to "
                                  f"{_jq(sorted(bad))}")
    if implicit_bad:
        return ("seccompProfile", f'pod or {_names(implicit_bad)} must set securityContext.seccompProfile.type to '
                                  f'"RuntimeDefault" or "Localhost"')
    return None


# (ID, check); upstream runs baseline IDs sorted, then restricted IDs sorted.
BASELINE: tuple[tuple[str, Check], ...] = (
    ("appArmorProfile", check_apparmor),
    ("capabilities_baseline", check_capabilities_baseline),
    ("hostNamespaces", check_host_namespaces),
    ("hostPathVolumes", check_host_path_volumes),
    ("hostPorts", check_host_ports),
    ("privileged", check_privileged),
    ("procMount", check_proc_mount),
    ("seLinuxOptions", check_selinux),
    ("seccompProfile_baseline", check_seccomp_baseline),
    ("sysctls", check_sysctls),
    ("windowsHostProcess", check_host_process),
)
RESTRICTED: tuple[tuple[str, Check], ...] = (
    ("allowPrivilegeEscalation", check_allow_privilege_escalation),
    ("capabilities_restricted", check_capabilities_restricted),
    ("restrictedVolumes", check_restricted_volumes),
    ("runAsNonRoot", check_run_as_non_root),
    ("runAsUser", check_run_as_user),
    ("seccompProfile_restricted", check_seccomp_restricted),
)
OVERRIDDEN_BY_RESTRICTED = {"capabilities_baseline", "hostPathVolumes", "seccompProfile_baseline"}


def evaluate(level: str, meta: dict[str, Any], spec: dict[str, Any]) -> list[tuple[str, str]]:
    """The failed checks of ``level`` for a pod (metadata, spec), in upstream's order."""
    if level == "privileged":
        return []
    checks = list(BASELINE)
    if level == "restricted":
        checks = [c for c in checks if c[0] not in OVERRIDDEN_BY_RESTRICTED] + list(RESTRICTED)
    failed = []
    for _, check in checks:
        result = check(meta, spec)
        if result is not None:
            failed.append(result)
    return failed


def forbidden_detail(failed: list[tuple[str, str]]) -> str:
    return ", ".join(f"{reason} ({detail})" if detail else reason for reason, detail in failed)


# ---------------------------------------------------------------------- namespace policy

@dataclass(frozen=True)
class Policy:
    enforce: str = "privileged"
    warn: str = "privileged"
    audit: str = "privileged"


def policy_errors(labels: dict[str, Any]) -> list[FieldError]:
    errs = []
    for mode in MODES:
        key = PREFIX + mode
        if key in labels and labels[key] not in LEVELS:
            errs.append(FieldError.invalid(Path.of("metadata", "labels").key(key), labels[key],
                                           "must be one of privileged, baseline, restricted"))
        vkey = key + "-version"
        if vkey in labels and not _valid_version(labels[vkey]):
            errs.append(FieldError.invalid(Path.of("metadata", "labels").key(vkey), labels[vkey],
                                           "must be 'latest' or of the form 'v1.<minor>'"))
    return errs


def _valid_version(value: Any) -> bool:
    if value == "latest":
        return True
    if not isinstance(value, str) or not value.startswith("v1."):
        return False
    return value[3:].isdigit()


def policy_of(namespace: dict[str, Any] | None) -> Policy:
    """The namespace's levels; an unknown level is evaluated as ``restricted``, as upstream does."""
    labels = ((namespace or {}).get("metadata") or {}).get("labels") or {}

    def level(mode: str) -> str:
        value = labels.get(PREFIX + mode)
        if value is None:
            return "privileged"
        return value if value in LEVELS else "restricted"

    return Policy(enforce=level("enforce"), warn=level("warn"), audit=level("audit"))


def _label(level: str) -> str:
    return f"{level}:latest"


# ---------------------------------------------------------------------- the plugin

class PodSecurity:
    def __init__(self, *, lookups: Lookups) -> None:
        self.lookups = lookups
        self.pods_type = lookups.type("", "v1", "pods")

    async def admit(self, op: Operation) -> None:
        rt = op.info.rt
        if op.verb not in ("create", "update") or op.info.subresource or not isinstance(op.obj, dict):
            return
        if rt.group == "" and rt.plural == "namespaces":
            self._admit_namespace(op)
            return
        template = pod_template(rt, op.obj)
        if template is None:
            return
        if op.verb == "update" and not _significant_update(rt, op):
            return
        namespace = await self.lookups.namespace(op)
        policy = policy_of(namespace)
        if policy.enforce == "privileged" and policy.warn == "privileged":
            return
        meta, spec = template
        if is_pod(rt):
            failed = evaluate(policy.enforce, meta, spec)
            if failed:
                raise forbidden(op, f'violates PodSecurity "{_label(policy.enforce)}": {forbidden_detail(failed)}')
        elif policy.enforce != "privileged":
            failed = evaluate(policy.enforce, meta, spec)
            if failed:
                op.warnings.append(f'would violate PodSecurity "{_label(policy.enforce)}": {forbidden_detail(failed)}')
        if policy.warn != "privileged" and policy.warn != policy.enforce:
            failed = evaluate(policy.warn, meta, spec)
            if failed:
                op.warnings.append(f'would violate PodSecurity "{_label(policy.warn)}": {forbidden_detail(failed)}')

    def _admit_namespace(self, op: Operation) -> None:
        labels = ((op.obj or {}).get("metadata") or {}).get("labels") or {}
        errs = policy_errors(labels)
        if errs:
            raise errors.invalid(kind="Namespace", name=(op.obj or {}).get("metadata", {}).get("name", ""), causes=errs)
        if op.verb != "update":
            return
        new_level = policy_of(op.obj).enforce
        old_level = policy_of(op.old).enforce
        if new_level == "privileged" or LEVELS.index(new_level) <= LEVELS.index(old_level):
            return  # unchanged or relaxed: nothing new can violate it
        cache = self.lookups.cache(self.pods_type)
        if cache is None:
            return
        pods, _ = cache.list(op.info.name, lambda _p: True)
        lines = []
        for pod in pods:
            spec = pod.get("spec")
            if not isinstance(spec, dict):
                continue
            failed = evaluate(new_level, pod.get("metadata") or {}, spec)
            if failed:
                lines.append(f"{pod['metadata'].get('name', '')}: {', '.join(r for r, _ in failed)}")
        if lines:
            op.warnings.append(f'existing pods in namespace "{op.info.name}" violate the new PodSecurity enforce '
                               f'level "{_label(new_level)}"')
            op.warnings.extend(lines[:10])
            if len(lines) > 10:
                op.warnings.append(f"(and {len(lines) - 10} other pods)")


def _significant_update(rt: Any, op: Operation) -> bool:
    """Re-evaluate an update only if the pod (template) could have become less secure.

    For pods, only images (and seccomp annotations) may change after create, as upstream's
    ``isSignificantPodUpdate`` reasons; for workloads, any change of the template counts.
    """
    new = pod_template(rt, op.obj)
    old = pod_template(rt, op.old)
    if new is None or old is None:
        return True
    if not is_pod(rt):
        return new != old
    new_spec, old_spec = new[1], old[1]
    new_images = [c.get("image") for c in containers(new_spec)]
    old_images = [c.get("image") for c in containers(old_spec)]
    return new_images != old_images or len(new_images) != len(old_images)
