"""A container's environment and command line, resolved as the kubelet does (pure, given lookups).

* ``envFrom`` first (ConfigMaps and Secrets, with ``prefix``; keys that are not valid variable names
  are skipped and reported), then ``env`` in order, each overriding what came before;
* ``valueFrom``: ``fieldRef`` (the downward API: metadata.name/namespace/uid, labels['k'],
  annotations['k'], spec.nodeName, spec.serviceAccountName, status.hostIP(s), status.podIP(s)),
  ``resourceFieldRef`` (limits/requests of cpu, memory, ephemeral-storage with a ``divisor``; a
  missing limit reads as the node's allocatable), ``configMapKeyRef`` and ``secretKeyRef`` (a missing
  object or key is ``CreateContainerConfigError`` unless ``optional``);
* ``$(VAR)`` in values, command and args expands to a variable defined earlier; ``$$`` is a literal
  ``$``; an unknown reference is left as written.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from apimachinery.quantity import Quantity

Obj = dict[str, Any]
Lookup = Callable[[str, str, str], Obj | None]  # (kind "configmaps"|"secrets", namespace, name) → object

_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_LABEL_REF = re.compile(r"^metadata\.(labels|annotations)\['([^']+)'\]$")


class EnvError(Exception):
    """The container cannot be configured yet (``CreateContainerConfigError``)."""

    reason = "CreateContainerConfigError"


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion (``third_party/forked/golang/expansion``)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "$" and i + 1 < n:
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = text.find(")", i + 2)
                if end < 0:
                    out.append(text[i:])
                    break
                name = text[i + 2:end]
                if name in env:
                    out.append(env[name])
                else:
                    out.append(text[i:end + 1])
                i = end + 1
                continue
        out.append(ch)
        i += 1
    return "".join(out)


def _data(obj: Obj, kind: str) -> dict[str, str]:
    if kind == "secrets":
        out: dict[str, str] = {}
        for k, v in (obj.get("data") or {}).items():
            try:
                out[k] = base64.b64decode(v or "").decode("utf-8", errors="replace")
            except (ValueError, TypeError):
                continue
        for k, v in (obj.get("stringData") or {}).items():
            out[k] = str(v)
        return out
    data = {k: str(v) for k, v in (obj.get("data") or {}).items()}
    for k, v in (obj.get("binaryData") or {}).items():
        try:
            data.setdefault(k, base64.b64decode(v).decode("utf-8", errors="replace"))
        except (ValueError, TypeError):
            continue
    return data


def field_ref(pod: Obj, path: str, *, pod_ip: str, host_ip: str, node_name: str) -> str:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    match = _LABEL_REF.match(path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    simple = {
        "metadata.name": meta.get("name", ""), "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""), "spec.nodeName": spec.get("nodeName") or node_name,
        "spec.serviceAccountName": spec.get("serviceAccountName") or "default",
        "status.hostIP": host_ip, "status.hostIPs": host_ip, "status.podIP": pod_ip, "status.podIPs": pod_ip,
        "metadata.labels": "\n".join(f'{k}="{v}"' for k, v in sorted((meta.get("labels") or {}).items())),
        "metadata.annotations": "\n".join(f'{k}="{v}"' for k, v in sorted((meta.get("annotations") or {}).items())),
    }
    if path not in simple:
        raise EnvError(f"unsupported fieldRef {path!r}")
    return str(simple[path])


def resource_field_ref(container: Obj, ref: Obj, allocatable: Mapping[str, str]) -> str:
    resource = ref.get("resource", "")
    kind, _, name = resource.partition(".")
    resources = container.get("resources") or {}
    value = (resources.get(kind) or {}).get(name) if kind in ("limits", "requests") else None
    if value is None:
        if kind == "limits":
            value = allocatable.get(name, "0")
        else:
            value = "0"
    divisor = Quantity(str(ref.get("divisor") or "1"))
    try:
        q = Quantity(str(value))
    except ValueError:
        raise EnvError(f"bad quantity for {resource}") from None
    if divisor.is_zero():
        raise EnvError("resourceFieldRef divisor is zero")
    ratio = q.as_fraction() / divisor.as_fraction()
    return str(math.ceil(ratio))


def _referenced(lookup: Lookup, kind: str, namespace: str, ref: Obj) -> dict[str, str] | None:
    """The data of a referenced ConfigMap/Secret; None if it is missing and ``optional``."""
    obj = lookup(kind, namespace, ref.get("name", ""))
    if obj is None:
        if ref.get("optional"):
            return None
        raise EnvError(f'{"configmap" if kind == "configmaps" else "secret"} "{ref.get("name")}" not found')
    return _data(obj, kind)


def _env_name(name: str) -> str:
    return name.upper().replace("-", "_")


def service_link_env(services: list[Obj]) -> dict[str, str]:
    """The Docker-link-style variables of Services, as the kubelet gives a pod with
    ``enableServiceLinks`` (upstream's ``envvars.FromServices``): ``<NAME>_SERVICE_HOST``,
    ``<NAME>_SERVICE_PORT[_<PORTNAME>]``, ``<NAME>_PORT`` and ``<NAME>_PORT_<port>_<PROTO>[_PROTO|_PORT|_ADDR]``,
    for every Service with a ClusterIP (not headless, not ExternalName)."""
    env: dict[str, str] = {}
    for svc in services:
        spec = svc.get("spec") or {}
        ip = spec.get("clusterIP")
        ports = [p for p in spec.get("ports") or [] if isinstance(p, dict) and p.get("port")]
        if not ip or ip == "None" or not ports:
            continue
        prefix = _env_name(str((svc.get("metadata") or {}).get("name", "")))
        env[f"{prefix}_SERVICE_HOST"] = ip
        env[f"{prefix}_SERVICE_PORT"] = str(ports[0]["port"])
        for port in ports:
            if port.get("name"):
                env[f"{prefix}_SERVICE_PORT_{_env_name(str(port['name']))}"] = str(port["port"])
        host = f"[{ip}]" if ":" in ip else ip
        for i, port in enumerate(ports):
            proto = str(port.get("protocol") or "TCP")
            url = f"{proto.lower()}://{host}:{port['port']}"
            if i == 0:
                env[f"{prefix}_PORT"] = url
            port_prefix = f"{prefix}_PORT_{port['port']}_{proto.upper()}"
            env[port_prefix] = url
            env[f"{port_prefix}_PROTO"] = proto.lower()
            env[f"{port_prefix}_PORT"] = str(port["port"])
            env[f"{port_prefix}_ADDR"] = ip
    return env


def container_env(pod: Obj, container: Obj, *, lookup: Lookup, pod_ip: str, host_ip: str, node_name: str,
                  allocatable: Mapping[str, str], base: Mapping[str, str] | None = None) -> tuple[dict[str, str], list[str]]:
    """(environment, warnings). ``base`` is the runtime's defaults, overridable by the spec."""
    namespace = (pod.get("metadata") or {}).get("namespace", "default")
    env: dict[str, str] = dict(base or {})
    warnings: list[str] = []
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix") or ""
        for kind, key in (("configmaps", "configMapRef"), ("secrets", "secretRef")):
            ref = source.get(key)
            data = _referenced(lookup, kind, namespace, ref) if ref else None
            if data is None:
                continue
            invalid = [k for k in data if not _ENV_NAME.match(prefix + k)]
            env.update({prefix + k: v for k, v in data.items() if k not in invalid})
            if invalid:
                warnings.append(f"Keys [{', '.join(sorted(invalid))}] from the EnvFrom "
                                f"{'configMap' if kind == 'configmaps' else 'secret'} {namespace}/{ref.get('name')} "
                                "were skipped since they are considered invalid environment variable names.")
    for var in container.get("env") or []:
        name = var.get("name", "")
        if not name:
            continue
        if "value" in var and var.get("valueFrom") is None:
            env[name] = expand(str(var.get("value") or ""), env)
            continue
        src = var.get("valueFrom") or {}
        if not src:
            env[name] = ""
            continue
        if src.get("fieldRef"):
            env[name] = field_ref(pod, src["fieldRef"].get("fieldPath", ""), pod_ip=pod_ip, host_ip=host_ip,
                                  node_name=node_name)
        elif src.get("resourceFieldRef"):
            ref = src["resourceFieldRef"]
            target = container
            if ref.get("containerName"):
                target = next((c for c in (pod.get("spec") or {}).get("containers") or []
                               if c.get("name") == ref["containerName"]), container)
            env[name] = resource_field_ref(target, ref, allocatable)
        else:
            for kind, key, label in (("configmaps", "configMapKeyRef", "ConfigMap"),
                                     ("secrets", "secretKeyRef", "Secret")):
                ref = src.get(key)
                data = _referenced(lookup, kind, namespace, ref) if ref else None
                if data is None:
                    continue
                if ref.get("key") in data:
                    env[name] = data[ref["key"]]
                elif not ref.get("optional"):
                    raise EnvError(f"couldn't find key {ref.get('key')} in {label} {namespace}/{ref.get('name')}")
    return env, warnings


def container_argv(container: Obj, env: Mapping[str, str]) -> list[str]:
    """command + args with ``$(VAR)`` expanded (no command: the args alone; the image's entrypoint is unknown)."""
    command = [expand(str(c), env) for c in container.get("command") or []]
    args = [expand(str(a), env) for a in container.get("args") or []]
    return command + args
