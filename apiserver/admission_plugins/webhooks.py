"""Admission webhooks: MutatingWebhookConfiguration and ValidatingWebhookConfiguration
(admissionregistration.k8s.io/v1), so operators can extend admission without changing the server.

For every write, the webhooks whose ``rules`` (operations, apiGroups, apiVersions, resources incl.
``pods/status``-style subresources and ``*``, scope), ``namespaceSelector`` and ``objectSelector``
match are sent an ``admission.k8s.io/v1`` AdmissionReview over HTTPS, verified against the
webhook's ``caBundle`` (or the system trust store without one):

* ``clientConfig.url``: POSTed as given (plus ``?timeout=<n>s``, as kube-apiserver adds it);
* ``clientConfig.service``: the Service's ClusterIP and ``port`` (default 443) at ``path``, with
  TLS server name ``<name>.<namespace>.svc``; a Service without a ClusterIP is a call failure.

Mutating webhooks run first, one after the other, in configuration-name order; a
``patchType: JSONPatch`` response patch (base64) is applied to the object, which is then
defaulted again. Validating webhooks run concurrently. A denial is answered like upstream:
``admission webhook "x.example.com" denied the request: <message>`` with the webhook's code
(400 unless it gave one of 400 or more). A webhook that cannot be called (connection, TLS,
timeout after ``timeoutSeconds``, a malformed response) fails the request with 500 ``failed
calling webhook ...`` when ``failurePolicy`` is Fail (the default) and is skipped when it is
Ignore. ``response.warnings`` become Warning headers.

Configurations are read from the API server's watch caches, so a new webhook takes effect on each
replica once its cache has seen it (within milliseconds), and requests cost no store reads. The
configuration objects themselves are never sent to webhooks (a broken webhook cannot lock its own
fix out), and they are defaulted and validated here (422 with field causes).

Not supported: ``matchConditions`` (CEL; refused at create), ``reinvocationPolicy: IfNeeded``
(accepted, each mutating webhook runs once), ``matchPolicy: Equivalent`` conversion between API
versions (each resource is served in one version here), and ``admissionReviewVersions`` without
``v1``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import os
import ssl
import uuid
from typing import Any
from urllib.parse import urlsplit

import orjson

from apimachinery import errors
from apimachinery.defaults import apply_defaults
from apimachinery.errors import StatusError
from apimachinery.patch import json_patch
from apimachinery.selectors import LabelSelector, validate_label_selector
from apimachinery.validation import FieldError, Path, is_dns1123_subdomain

from ..handlers import Operation
from .common import Lookups

log = logging.getLogger(__name__)

GROUP = "admissionregistration.k8s.io"
MUTATING = "mutatingwebhookconfigurations"
VALIDATING = "validatingwebhookconfigurations"
OPERATIONS = ("*", "CONNECT", "CREATE", "DELETE", "UPDATE")
SCOPES = ("*", "Cluster", "Namespaced")
MAX_RESPONSE = 3 * 1024 * 1024


# ---------------------------------------------------------------------- configuration objects

def default_configuration(obj: dict[str, Any], *, mutating: bool) -> None:
    """Upstream's v1 defaults for each webhook of a configuration."""
    for hook in obj.get("webhooks") or []:
        if not isinstance(hook, dict):
            continue
        hook.setdefault("failurePolicy", "Fail")
        hook.setdefault("matchPolicy", "Equivalent")
        if hook.get("namespaceSelector") is None:
            hook["namespaceSelector"] = {}
        if hook.get("objectSelector") is None:
            hook["objectSelector"] = {}
        hook.setdefault("timeoutSeconds", 10)
        if mutating:
            hook.setdefault("reinvocationPolicy", "Never")
        for rule in hook.get("rules") or []:
            if isinstance(rule, dict):
                rule.setdefault("scope", "*")
        service = (hook.get("clientConfig") or {}).get("service")
        if isinstance(service, dict):
            service.setdefault("port", 443)


def _star_exclusive(values: list[Any], path: Path, errs: list[FieldError]) -> None:
    if "*" in values and len(values) > 1:
        errs.append(FieldError.invalid(path, values, "if '*' is present, must not specify other values"))


def _validate_rule(rule: Any, path: Path) -> list[FieldError]:
    errs: list[FieldError] = []
    if not isinstance(rule, dict):
        return [FieldError.invalid(path, rule, "must be an object")]
    for key in ("operations", "apiGroups", "apiVersions", "resources"):
        values = rule.get(key)
        if not isinstance(values, list) or not values:
            errs.append(FieldError.required(path.child(key), ""))
            continue
        _star_exclusive(values, path.child(key), errs)
        for i, value in enumerate(values):
            if not isinstance(value, str):
                errs.append(FieldError.invalid(path.child(key).index(i), value, "must be a string"))
            elif key == "operations" and value not in OPERATIONS:
                errs.append(FieldError.not_supported(path.child(key).index(i), value, OPERATIONS))
            elif key in ("apiVersions", "resources") and not value:
                errs.append(FieldError.required(path.child(key).index(i), ""))
    scope = rule.get("scope", "*")
    if scope not in SCOPES:
        errs.append(FieldError.not_supported(path.child("scope"), scope, SCOPES))
    return errs


def _validate_client_config(config: Any, path: Path) -> list[FieldError]:
    if not isinstance(config, dict):
        return [FieldError.required(path, "exactly one of url or service is required")]
    errs: list[FieldError] = []
    url, service = config.get("url"), config.get("service")
    if (url is None) == (service is None):
        errs.append(FieldError.required(path, "exactly one of url or service is required"))
    if url is not None:
        p = path.child("url")
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or not url:
            errs.append(FieldError.invalid(p, url, "must be a valid URL"))
        elif parts.scheme != "https":
            errs.append(FieldError.invalid(p, url, "'https' is the only allowed URL scheme"))
        elif not parts.hostname:
            errs.append(FieldError.invalid(p, url, "host must be specified"))
        elif parts.username or parts.password:
            errs.append(FieldError.invalid(p, url, "user information is not permitted in the URL"))
        elif parts.fragment:
            errs.append(FieldError.invalid(p, url, "fragments are not permitted in the URL"))
        elif parts.query:
            errs.append(FieldError.invalid(p, url, "query parameters are not permitted in the URL"))
    if service is not None:
        p = path.child("service")
        if not isinstance(service, dict):
            errs.append(FieldError.invalid(p, service, "must be an object"))
        else:
            for key in ("name", "namespace"):
                if not service.get(key):
                    errs.append(FieldError.required(p.child(key), f"service {key} is required"))
            path_value = service.get("path")
            if path_value is not None and (not isinstance(path_value, str) or not path_value.startswith("/")):
                errs.append(FieldError.invalid(p.child("path"), path_value, "must start with a '/'"))
            port = service.get("port", 443)
            if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
                errs.append(FieldError.invalid(p.child("port"), port,
                                               "port is not valid: must be between 1 and 65535, inclusive"))
    bundle = config.get("caBundle")
    if bundle is not None:
        try:
            base64.b64decode(str(bundle), validate=True)
        except (binascii.Error, ValueError):
            errs.append(FieldError.invalid(path.child("caBundle"), "<bytes>",
                                           "must be base64-encoded PEM certificates"))
    return errs


def validate_configuration(obj: dict[str, Any], *, mutating: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    hooks = obj.get("webhooks")
    if hooks is None:
        return errs
    if not isinstance(hooks, list):
        return [FieldError.invalid(Path.of("webhooks"), hooks, "must be a list")]
    seen: set[str] = set()
    for i, hook in enumerate(hooks):
        base = Path.of("webhooks").index(i)
        if not isinstance(hook, dict):
            errs.append(FieldError.invalid(base, hook, "must be an object"))
            continue
        name = hook.get("name")
        if not name or not isinstance(name, str):
            errs.append(FieldError.required(base.child("name"), ""))
        else:
            problems = is_dns1123_subdomain(name)
            if problems:
                errs.extend(FieldError.invalid(base.child("name"), name, msg) for msg in problems)
            elif name.count(".") < 2:
                errs.append(FieldError.invalid(base.child("name"), name,
                                               "should be a domain with at least three segments separated by dots"))
            if name in seen:
                errs.append(FieldError.duplicate(base.child("name"), name))
            seen.add(name)
        errs.extend(_validate_client_config(hook.get("clientConfig"), base.child("clientConfig")))
        rules = hook.get("rules") or []
        if not isinstance(rules, list):
            errs.append(FieldError.invalid(base.child("rules"), rules, "must be a list"))
            rules = []
        for j, rule in enumerate(rules):
            errs.extend(_validate_rule(rule, base.child("rules").index(j)))
        for key, allowed in (("failurePolicy", ("Fail", "Ignore")), ("matchPolicy", ("Equivalent", "Exact"))):
            if hook.get(key) not in allowed:
                errs.append(FieldError.not_supported(base.child(key), hook.get(key), allowed))
        if mutating and hook.get("reinvocationPolicy") not in ("IfNeeded", "Never"):
            errs.append(FieldError.not_supported(base.child("reinvocationPolicy"), hook.get("reinvocationPolicy"),
                                                 ("IfNeeded", "Never")))
        side_effects = hook.get("sideEffects")
        if side_effects is None:
            errs.append(FieldError.required(base.child("sideEffects"), "must specify one of None, NoneOnDryRun"))
        elif side_effects not in ("None", "NoneOnDryRun"):
            errs.append(FieldError.not_supported(base.child("sideEffects"), side_effects, ("None", "NoneOnDryRun")))
        versions = hook.get("admissionReviewVersions")
        if not isinstance(versions, list) or not versions:
            errs.append(FieldError.required(base.child("admissionReviewVersions"), "must specify one of v1, v1beta1"))
        elif "v1" not in versions:
            errs.append(FieldError.invalid(base.child("admissionReviewVersions"), versions,
                                           "must include v1 (this server sends admission.k8s.io/v1 reviews only)"))
        timeout = hook.get("timeoutSeconds")
        if not isinstance(timeout, int) or isinstance(timeout, bool) or not 1 <= timeout <= 30:
            errs.append(FieldError.invalid(base.child("timeoutSeconds"), timeout,
                                           "the timeout value must be between 1 and 30 seconds"))
        for key in ("namespaceSelector", "objectSelector"):
            selector = hook.get(key)
            if not isinstance(selector, dict):
                errs.append(FieldError.invalid(base.child(key), selector, "must be a label selector object"))
            else:
                errs.extend(validate_label_selector(selector, base.child(key)))
        if hook.get("matchConditions"):
            errs.append(FieldError.forbidden(base.child("matchConditions"),
                                             "matchConditions (CEL) are not supported by this server"))
    return errs


# ---------------------------------------------------------------------- matching

def _split_resource(value: str) -> tuple[str, str]:
    res, _, sub = value.partition("/")
    return res, sub


def rule_matches(rule: dict[str, Any], op: Operation) -> bool:
    rt = op.info.rt
    operation = op.verb.upper()
    operations = rule.get("operations") or []
    if "*" not in operations and operation not in operations:
        return False
    groups = rule.get("apiGroups") or []
    if "*" not in groups and rt.group not in groups:
        return False
    versions = rule.get("apiVersions") or []
    if "*" not in versions and rt.version not in versions:
        return False
    scope = rule.get("scope") or "*"
    if scope == "Cluster" and op.info.namespace:
        return False
    if scope == "Namespaced" and (not rt.namespaced or not op.info.namespace):
        return False
    for value in rule.get("resources") or []:
        res, sub = _split_resource(str(value))
        if (res == "*" or res == rt.plural) and (sub == "*" or sub == op.info.subresource):
            return True
    return False


def _labels(obj: dict[str, Any] | None) -> dict[str, str]:
    labels = ((obj or {}).get("metadata") or {}).get("labels")
    return labels if isinstance(labels, dict) else {}


def _selector(value: Any) -> LabelSelector:
    try:
        return LabelSelector.from_structured(value if isinstance(value, dict) else {})
    except StatusError:
        return LabelSelector.nothing()  # validated at create; a broken one matches nothing


# ---------------------------------------------------------------------- the plugin

class CallError(Exception):
    """The webhook could not be called or answered nonsense (``ErrCallingWebhook``): failurePolicy applies."""


class AdmissionWebhooks:
    def __init__(self, *, mutating: bool, lookups: Lookups) -> None:
        self.mutating = mutating
        self.lookups = lookups
        self.plural = MUTATING if mutating else VALIDATING
        self._session: Any = None
        self._ssl: dict[str, ssl.SSLContext] = {}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def admit(self, op: Operation) -> None:
        rt = op.info.rt
        if rt.group == GROUP:
            if rt.plural == self.plural and op.verb in ("create", "update") and isinstance(op.obj, dict) \
                    and not op.info.subresource:
                default_configuration(op.obj, mutating=self.mutating)
                errs = validate_configuration(op.obj, mutating=self.mutating)
                if errs:
                    raise errors.invalid(kind=rt.kind, group=GROUP,
                                         name=(op.obj.get("metadata") or {}).get("name", ""), causes=errs)
            return  # webhook configurations are never sent to webhooks
        if op.verb not in ("create", "update", "delete"):
            return
        hooks = await self._matching(op)
        if not hooks:
            return
        if self.mutating:
            for hook in hooks:
                await self._run(op, hook)
        else:
            results = await asyncio.gather(*(self._run(op, hook) for hook in hooks), return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    raise result

    def _configurations(self) -> list[dict[str, Any]]:
        cache = self.lookups.caches.get((GROUP, self.plural))
        if cache is None:
            return []
        return sorted(cache.objects.values(), key=lambda c: (c.get("metadata") or {}).get("name", ""))

    async def _matching(self, op: Operation) -> list[dict[str, Any]]:
        candidates = [hook for config in self._configurations() for hook in config.get("webhooks") or []
                      if isinstance(hook, dict)
                      and any(isinstance(r, dict) and rule_matches(r, op) for r in hook.get("rules") or [])]
        if not candidates:
            return []
        out = []
        ns_labels: dict[str, str] | None = None
        for hook in candidates:
            objsel = _selector(hook.get("objectSelector"))
            if not (objsel.matches(_labels(op.obj)) or (op.old is not None and objsel.matches(_labels(op.old)))):
                continue
            nssel = _selector(hook.get("namespaceSelector"))
            if not nssel.empty:
                rt = op.info.rt
                if rt.group == "" and rt.plural == "namespaces":
                    labels = _labels(op.obj if op.obj is not None else op.old)
                elif not op.info.namespace:
                    labels = None  # cluster-scoped objects ignore namespaceSelector
                else:
                    if ns_labels is None:
                        ns_type = self.lookups.type("", "v1", "namespaces")
                        ns_labels = _labels(await self.lookups.get(ns_type, "", op.info.namespace))
                    labels = ns_labels
                if labels is not None and not nssel.matches(labels):
                    continue
            out.append(hook)
        return out

    # .................................................................. one call

    async def _run(self, op: Operation, hook: dict[str, Any]) -> None:
        name = str(hook.get("name", ""))
        if op.dry_run and hook.get("sideEffects") not in ("None", "NoneOnDryRun"):
            raise errors.bad_request(f"admission webhook {name!r} does not support dry run")
        try:
            response = await self._call(op, hook)
        except CallError as exc:
            text = f"failed calling webhook \"{name}\": {exc}"
            if hook.get("failurePolicy") == "Ignore":
                log.warning("%s; failing open (failurePolicy Ignore)", text)
                return
            log.warning("%s; failing closed", text)
            raise errors.internal_error(text) from None
        for warning in response.get("warnings") or []:
            if isinstance(warning, str) and warning:
                op.warnings.append(warning)
        if not response.get("allowed"):
            raise _denied(name, response.get("status"))
        patch = response.get("patch")
        if patch and self.mutating and isinstance(op.obj, dict):
            self._apply_patch(op, name, response.get("patchType"), patch)

    def _apply_patch(self, op: Operation, name: str, patch_type: Any, patch: Any) -> None:
        if patch_type != "JSONPatch":
            raise errors.internal_error(f"admission webhook \"{name}\" returned a patch of unsupported patchType "
                                        f"{patch_type!r} (only JSONPatch)")
        try:
            ops = orjson.loads(base64.b64decode(str(patch), validate=True))
        except (binascii.Error, ValueError, orjson.JSONDecodeError) as exc:
            raise errors.internal_error(f"admission webhook \"{name}\" returned a patch that is not base64 JSON: "
                                        f"{exc}") from None
        try:
            patched = json_patch(op.obj, ops)
        except StatusError as err:
            raise errors.internal_error(f"admission webhook \"{name}\" returned a patch that does not apply: "
                                        f"{err.message}") from None
        if not isinstance(patched, dict):
            raise errors.internal_error(f"admission webhook \"{name}\" patched the object into a non-object")
        assert op.obj is not None
        before, after = op.obj.get("metadata") or {}, patched.get("metadata")
        for key in ("name", "namespace"):
            # The request was authorized for this name and namespace; a patch may not move the object.
            if not isinstance(after, dict) or after.get(key) != before.get(key):
                raise errors.internal_error(f"admission webhook \"{name}\" may not change metadata.{key}")
        op.obj.clear()  # in place: the handler holds this dict
        op.obj.update(patched)
        rt = op.info.rt
        apply_defaults(rt.group, rt.version, rt.kind, op.obj)

    def _review(self, op: Operation, uid: str) -> dict[str, Any]:
        rt = op.info.rt
        gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
        gvr = {"group": rt.group, "version": rt.version, "resource": rt.plural}
        options_kind = {"create": "CreateOptions", "update": "UpdateOptions", "delete": "DeleteOptions"}[op.verb]
        options = {k: v for k, v in (op.options or {}).items() if k not in ("apiVersion", "kind", "dryRun")}
        request: dict[str, Any] = {
            "uid": uid, "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr,
            "name": (op.info.name or ((op.obj or op.old or {}).get("metadata") or {}).get("name", "")),
            "operation": op.verb.upper(),
            "userInfo": {"username": op.user.name, "uid": op.user.uid, "groups": list(op.user.groups)},
            "object": op.obj if op.verb != "delete" else None,
            "oldObject": op.old if op.verb != "create" else None,
            "dryRun": bool(op.dry_run),
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": options_kind, **options},
        }
        if op.info.namespace:
            request["namespace"] = op.info.namespace
        if op.info.subresource:
            request["subResource"] = op.info.subresource
            request["requestSubResource"] = op.info.subresource
        return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}

    async def _endpoint(self, hook: dict[str, Any]) -> tuple[str, str | None]:
        """(URL to POST, TLS server name to verify if it differs from the URL's host)."""
        config = hook.get("clientConfig") or {}
        timeout = int(hook.get("timeoutSeconds") or 10)
        if config.get("url"):
            return f"{config['url']}?timeout={timeout}s", None
        service = config.get("service") or {}
        namespace, name = service.get("namespace", ""), service.get("name", "")
        svc_type = self.lookups.type("", "v1", "services")
        svc = await self.lookups.get(svc_type, namespace, name)
        if svc is None:
            raise CallError(f"failed to call webhook: service \"{namespace}/{name}\" not found")
        ip = (svc.get("spec") or {}).get("clusterIP")
        if not ip or ip == "None":
            raise CallError(f"failed to call webhook: service \"{namespace}/{name}\" has no cluster IP")
        host = f"[{ip}]" if ":" in ip else ip
        path = service.get("path") or ""
        return f"https://{host}:{service.get('port', 443)}{path}?timeout={timeout}s", f"{name}.{namespace}.svc"

    def _ssl_context(self, hook: dict[str, Any]) -> ssl.SSLContext:
        bundle = str((hook.get("clientConfig") or {}).get("caBundle") or "")
        ctx = self._ssl.get(bundle)
        if ctx is None:
            if bundle:
                try:
                    pem = base64.b64decode(bundle).decode("ascii")
                    ctx = ssl.create_default_context(cadata=pem)
                except (ValueError, ssl.SSLError, UnicodeDecodeError) as exc:
                    raise CallError(f"failed to call webhook: invalid caBundle: {exc}") from None
            else:
                ctx = ssl.create_default_context()
            if len(self._ssl) > 256:
                self._ssl.clear()
            self._ssl[bundle] = ctx
        return ctx

    async def _call(self, op: Operation, hook: dict[str, Any]) -> dict[str, Any]:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession()
        uid = str(uuid.uuid4())
        url, server_name = await self._endpoint(hook)
        ctx = self._ssl_context(hook)
        timeout = aiohttp.ClientTimeout(total=float(hook.get("timeoutSeconds") or 10))
        body = orjson.dumps(self._review(op, uid))
        try:
            async with self._session.post(url, data=body, ssl=ctx, timeout=timeout, server_hostname=server_name,
                                          headers={"Content-Type": "application/json",
                                                   "Accept": "application/json"}) as resp:
                raw = await resp.content.read(MAX_RESPONSE + 1)
                if len(raw) > MAX_RESPONSE:
                    raise CallError("failed to call webhook: the response is larger than 3 MiB")
                if resp.status != 200:
                    excerpt = raw[:200].decode("utf-8", "replace")
                    raise CallError(f"failed to call webhook: the server responded with the status code "
                                    f"{resp.status}: {excerpt}")
        except asyncio.TimeoutError:
            raise CallError(f"failed to call webhook: Post \"{url}\": context deadline exceeded") from None
        except aiohttp.ClientConnectorCertificateError as exc:
            raise CallError(f"failed to call webhook: Post \"{url}\": tls: failed to verify certificate: "
                            f"{exc.certificate_error}") from None
        except aiohttp.ClientConnectorError as exc:
            errno = getattr(exc.os_error, "errno", None)
            reason = f"connect: {os.strerror(errno).lower()}" if errno else str(exc.os_error or exc)
            raise CallError(f"failed to call webhook: Post \"{url}\": dial tcp {exc.host}:{exc.port}: {reason}") from None
        except aiohttp.ClientError as exc:
            raise CallError(f"failed to call webhook: Post \"{url}\": {exc}") from None
        except ssl.SSLError as exc:
            raise CallError(f"failed to call webhook: Post \"{url}\": tls: {exc}") from None
        try:
            review = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise CallError(f"received invalid webhook response: {exc}") from None
        response = review.get("response") if isinstance(review, dict) else None
        if not isinstance(review, dict) or review.get("kind") != "AdmissionReview" or \
                review.get("apiVersion") != "admission.k8s.io/v1":
            raise CallError("received invalid webhook response: expected webhook response of "
                            "admission.k8s.io/v1, Kind=AdmissionReview")
        if not isinstance(response, dict):
            raise CallError("received invalid webhook response: response is missing")
        if response.get("uid") != uid:
            raise CallError(f"received invalid webhook response: expected response.uid={uid!r}, "
                            f"got {response.get('uid')!r}")
        return response


def _denied(name: str, status: Any) -> StatusError:
    """``webhookerrors.ToStatusErr``: the webhook's Status, its message prefixed, at least 400."""
    status = status if isinstance(status, dict) else {}
    code = status.get("code")
    code = code if isinstance(code, int) and not isinstance(code, bool) and code >= 400 else 400
    denied = f"admission webhook \"{name}\" denied the request"
    if status.get("message"):
        message = f"{denied}: {status['message']}"
    elif status.get("reason"):
        message = f"{denied}: {status['reason']}"
    else:
        message = f"{denied} without explanation"
    details = status.get("details")
    return StatusError(code=code, reason=str(status.get("reason") or ""), message=message,
                       details=errors.StatusDetails.from_dict(details) if isinstance(details, dict) else None)
