"""The API server process: HTTPS, authentication, authorization, routing, discovery, health.

    pilot apiserver --etcd-servers http://127.0.0.1:2379,... --bind 127.0.0.1:6443 \\
        --tls-cert-file server.crt --tls-private-key-file server.key --token-auth-file tokens.csv

Stateless: any number of replicas can serve one store. All state goes through ``Storage``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import ssl
import sys
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import orjson
import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from apimachinery import errors, tables
from apimachinery.errors import StatusError
from apimachinery.registry import Registry, ResourceType
from kvstore.client import EtcdClient, Unavailable

from . import componentstatus, impersonation, discovery, openapi, requestinfo
from .admission import AdmissionChain, NamespaceLifecycle
from .admission_plugins import standard_plugins as standard_admission_plugins
from .allocator import Allocator
from .auth import (ANONYMOUS, AlwaysAllow, Attributes, Authenticator, AuthorizerChain, Decision,
                   TokenFileAuthenticator, UserInfo, bearer_token, user_from_certificate)
from .audit import AuditLog
from .crd import CRD_GROUP, CRDManager, CRDStrategy
from .encryption import load_config as load_encryption_config
from .handlers import SUBRESOURCE_WRITES, Handlers
from .health import HealthEndpoints
from .kubernetes_service import KubernetesService
from .storage import Storage, Transformer, object_key
from .serviceaccounts import ServiceAccountAuthenticator, TokenIssuer, load_private_key, token_request
from .strategy import Strategy
from .nodeauth import NodeAuthorizer
from .rbac import RBAC_GROUP, EscalationCheck, PrivilegedGroups, RBACAuthorizer, Rule
from .rbac import default_objects as default_rbac_objects
from .rbac import reconcile as reconcile_rbac_default
from .watchcache import ResourceCache

if TYPE_CHECKING:
    from .metricsapi import MetricsAPI

log = logging.getLogger("apiserver")

PUBLIC_PATHS = {"/healthz", "/livez", "/readyz", "/version", "/version/"}
HandlerFn = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _status_response(err: StatusError) -> web.Response:
    headers = {}
    if err.retry_after_seconds:
        headers["Retry-After"] = str(err.retry_after_seconds)
    return web.Response(status=err.code, body=orjson.dumps(err.to_status()), content_type="application/json",
                        headers=headers)


def _verb(request: web.Request, info: requestinfo.RequestInfo) -> str:
    method = request.method
    if method == "GET":
        if info.is_collection:
            return "watch" if request.query.get("watch", "").lower() in ("1", "true") else "list"
        return "get"
    return {"POST": "create", "PUT": "update", "PATCH": "patch",
            "DELETE": "deletecollection" if info.is_collection else "delete"}.get(method, method.lower())


class APIServer:
    def __init__(self, *, client: EtcdClient, authenticators: list[Authenticator], authorization_mode: str = "RBAC",
                 service_cidr: str = "10.96.0.0/12", node_ports: tuple[int, int] = (30000, 32767),
                 advertise: str = "127.0.0.1:6443", token_issuer: TokenIssuer | None = None,
                 transformer: Transformer | None = None, audit: AuditLog | None = None,
                 identity_lease_duration: float = 15.0, identity_lease_renew_interval: float = 5.0,
                 endpoint_reconciler: str = "lease") -> None:
        self.registry = Registry()
        self.client = client
        self.metrics = CollectorRegistry()
        store_latency = Histogram("etcd_request_duration_seconds", "Store request latency by operation",
                                  ["operation"], registry=self.metrics,
                                  buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
        self.storage = Storage(client, transformer, lambda op, s: store_latency.labels(op).observe(s))
        self.token_issuer = token_issuer
        self.audit = audit
        self.authenticators = list(authenticators)
        if token_issuer is not None:
            self.authenticators.append(ServiceAccountAuthenticator(token_issuer, self.storage, self.registry))
        self.rbac = RBACAuthorizer(self._rbac_objects)
        if authorization_mode == "AlwaysAllow":
            self.authorizer = AuthorizerChain([AlwaysAllow()])
        else:
            self.authorizer = AuthorizerChain([NodeAuthorizer(self._cached_pod), PrivilegedGroups(), self.rbac])
        self.advertise = advertise
        self.caches: dict[tuple[str, str], ResourceCache] = {}
        self._proxy_session: aiohttp.ClientSession | None = None
        self._kubelet_session: aiohttp.ClientSession | None = None
        self._strategies: dict[tuple[str, str, str], Strategy] = {}
        services = self.registry.get("", "v1", "services")
        assert services is not None
        self.allocator = Allocator(client, cidr=service_cidr, node_ports=node_ports,
                                   first_ip_owner=object_key(services, "default", "kubernetes"))
        # The default/kubernetes Service, this replica's identity Lease and the Service's endpoints.
        self.kubernetes_service = KubernetesService(
            storage=self.storage, registry=self.registry, caches=self.caches, strategy=self.strategy,
            allocator=self.allocator, advertise=advertise, lease_duration=identity_lease_duration,
            renew_interval=identity_lease_renew_interval, manage_endpoints=endpoint_reconciler == "lease")
        self.crds = CRDManager(registry=self.registry, storage=self.storage, client=client, caches=self.caches)
        namespaces = self.registry.get("", "v1", "namespaces")
        assert namespaces is not None
        # NamespaceLifecycle, LimitRanger, ServiceAccount, PodSecurity, image policy, mutating and
        # validating webhooks, ResourceQuota (last: it reserves usage only for writes all others accepted).
        plugins: list[Any] = [NamespaceLifecycle(self.storage, namespaces),
                              *standard_admission_plugins(storage=self.storage, registry=self.registry,
                                                          caches=self.caches, strategies=self.strategy)]
        if authorization_mode != "AlwaysAllow":
            plugins.insert(-1, EscalationCheck(self.rbac, self.authorizer.authorize, self._rbac_objects))
        self.admission = AdmissionChain(plugins)
        self.handlers = Handlers(registry=self.registry, storage=self.storage, caches=self.caches,
                                 strategies=self.strategy, allocator=self.allocator, admit=self.admission,
                                 protobuf=_protobuf_decoder(), table=self._table, committed=self.admission.committed)
        self._requests = Counter("apiserver_request_total", "API requests", ["verb", "resource", "code"],
                                 registry=self.metrics)
        self._latency = Histogram("apiserver_request_duration_seconds", "API request latency", ["verb", "resource"],
                                  registry=self.metrics,
                                  buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
        watchers = Gauge("apiserver_registered_watchers", "Open watch streams", registry=self.metrics)
        watchers.set_function(lambda: self.handlers.watchers)
        self._ready = False
        self._shutting_down = False
        self._metrics_api: MetricsAPI | None = None
        self.health = HealthEndpoints(
            etcd=lambda: self.client.get(b"health"),
            informers_synced=lambda: bool(self.caches) and all(c.ready.is_set() for c in self.caches.values()),
            bootstrapped=lambda: self._ready, shutting_down=lambda: self._shutting_down)

    def _cached_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        cache = self.caches.get(("", "pods"))
        if cache is None:
            return None
        return cache.objects.get(object_key(cache.rt, namespace, name))

    def _rbac_objects(self, plural: str) -> list[dict[str, Any]]:
        cache = self.caches.get((RBAC_GROUP, plural))
        return list(cache.objects.values()) if cache is not None else []

    def strategy(self, rt: ResourceType) -> Strategy:
        custom = self.crds.strategy(rt)
        if custom is not None:
            return custom
        key = (rt.group, rt.version, rt.plural)
        if key not in self._strategies:
            cls = CRDStrategy if (rt.group, rt.plural) == (CRD_GROUP, "customresourcedefinitions") else Strategy
            self._strategies[key] = cls(rt)
        return self._strategies[key]

    def _table(self, rt: ResourceType, objects: list[dict[str, Any]], include: str,
               list_meta: dict[str, Any]) -> dict[str, Any]:
        now = datetime.now(timezone.utc)
        columns = self.crds.printer_columns(rt)
        if columns is not None:
            return tables.custom_columns_table(rt, objects, columns, now=now, include_object=include,
                                               list_meta=list_meta)
        return tables.to_table(rt, objects, now=now, include_object=include, list_meta=list_meta)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        # Bootstrap writes first, then the caches list: on a fresh store their event windows then
        # begin after the bootstrap objects, so a watch from an old resourceVersion ("1", as clients
        # use to test expiry) is answered 410 as upstream's is, instead of depending on which of
        # the first list and the first write reached the store first.
        await self._bootstrap()
        for rt in self.registry.all():
            if rt.virtual or (rt.group, rt.plural) in self.caches or self.handlers.storage_type(rt).group != rt.group:
                continue  # (a kind stored as another group's, events.k8s.io Events, shares that cache)
            cache = ResourceCache(rt, self.storage, self.client)
            self.caches[(rt.group, rt.plural)] = cache
            cache.start()
        self.crds.start(self.caches[(CRD_GROUP, "customresourcedefinitions")])
        self._gc_task = asyncio.get_running_loop().create_task(_freeze_heap())
        # Authorization reads RBAC objects from the caches: be ready only once they hold the defaults.
        wanted = {(o["kind"], o["metadata"]["name"]) for o in default_rbac_objects()}
        deadline = asyncio.get_running_loop().time() + 60
        while asyncio.get_running_loop().time() < deadline:
            have = {(o["kind"], o["metadata"]["name"]) for plural in ("clusterroles", "clusterrolebindings")
                    for o in self._rbac_objects(plural)}
            if wanted <= have:
                break
            await asyncio.sleep(0.05)
        self._ready = True
        self.kubernetes_service.start()

    async def _bootstrap(self) -> None:
        """Create what every cluster has: system namespaces and the default RBAC roles and bindings.

        Several replicas may race here: a create that finds the object already there is fine.
        """
        ns_type = self.registry.get("", "v1", "namespaces")
        assert ns_type is not None
        objects: list[tuple[ResourceType, dict[str, Any]]] = [
            (ns_type, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
            for name in ("default", "kube-system", "kube-public", "kube-node-lease")]
        for obj in default_rbac_objects():
            rt = self.registry.get(RBAC_GROUP, "v1", "clusterroles" if obj["kind"] == "ClusterRole" else "clusterrolebindings")
            assert rt is not None
            objects.append((rt, obj))

        async def ensure(rt: ResourceType, obj: dict[str, Any]) -> None:
            for attempt in range(50):
                try:
                    try:
                        candidate = dict(obj, metadata=dict(obj["metadata"]))
                        self.strategy(rt).prepare_create(candidate)
                        await self.storage.create(rt, candidate)
                    except StatusError as err:
                        if err.code != 409:
                            raise
                        if rt.group == RBAC_GROUP:
                            await self._reconcile_default(rt, obj)
                    return
                except StatusError as err:
                    if err.code < 500:  # a refusal, not the store being away: retrying cannot help
                        raise
                    retry: BaseException = err
                except Exception as exc:  # noqa: BLE001 - the store may still be electing a leader
                    retry = exc
                # The store is electing or catching up (a whole cluster restarted): wait, do not exit.
                log.warning("bootstrap of %s %s failed (%r); retrying", rt.plural, obj["metadata"]["name"], retry)
                await asyncio.sleep(0.2 * (attempt + 1))
            raise RuntimeError(f"bootstrap of {rt.plural} {obj['metadata']['name']} did not succeed")

        # All at once, not one after the other: each is a write through Raft (an fsynced commit, 20-30 ms
        # while a whole cluster starts), and the API server is not ready until they are done; sent
        # together, the store's proposer commits them in a few batches. They do not depend on each other.
        await asyncio.gather(*(ensure(rt, obj) for rt, obj in objects))

    async def _reconcile_default(self, rt: ResourceType, default: dict[str, Any]) -> None:
        """Bring an existing bootstrap role/binding up to date with this version's defaults."""
        async def update(current: dict[str, Any]) -> dict[str, Any] | None:
            return reconcile_rbac_default(current, default)

        await self.storage.guaranteed_update(rt, "", default["metadata"]["name"], update)

    def proxy_session(self) -> aiohttp.ClientSession:
        """The HTTP client of the {pods,services,nodes}/proxy subresources (backends' TLS unverified)."""
        if self._proxy_session is None or self._proxy_session.closed:
            self._proxy_session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=False, limit=0), auto_decompress=False,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        return self._proxy_session

    def kubelet_session(self) -> aiohttp.ClientSession:
        """The HTTP client of pods/log, exec, attach and portforward to the kubelets (TLS unverified)."""
        if self._kubelet_session is None or self._kubelet_session.closed:
            self._kubelet_session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=False, limit=0),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        return self._kubelet_session

    async def stop(self) -> None:
        self._shutting_down = True
        for session in (self._proxy_session, self._kubelet_session):
            if session is not None:
                await session.close()
        if self._metrics_api is not None:
            await self._metrics_api.close()
        await self.kubernetes_service.stop()
        self._gc_task.cancel()
        await self.admission.close()
        await self.crds.stop()
        for cache in list(self.caches.values()):
            await cache.stop()

    # ------------------------------------------------------------------ app

    def app(self) -> web.Application:
        app = web.Application(client_max_size=4 * 1024 * 1024, middlewares=[self._middleware])
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    async def authenticate_token(self, token: str) -> UserInfo | None:
        for authenticator in self.authenticators:
            user = await authenticator.authenticate_token(token)
            if user is not None:
                return user
        return None

    @web.middleware
    async def _middleware(self, request: web.Request, handler: HandlerFn) -> web.StreamResponse:
        started = time.perf_counter()
        received = time.time()
        verb, resource, code = request.method, "", 500
        try:
            path = request.path
            user = user_from_certificate(request.transport.get_extra_info("peercert")
                                         if request.transport is not None else None)
            token = bearer_token(request) if user is None else None
            if token:
                user = await self.authenticate_token(token)
            if user is None:
                if request.headers.get("Authorization") or path not in PUBLIC_PATHS:
                    raise errors.unauthorized()
                user = ANONYMOUS
            if impersonation.requested(request.headers):
                real = user
                user = await impersonation.impersonate(real, request.headers, self.authorizer.authorize)
                headers = request.headers.copy()
                for key in [k for k in headers if k.lower().startswith("impersonate-")]:
                    headers.popall(key, None)
                request = request.clone(headers=headers)
                request["impersonator"] = real
            request["user"] = user
            response = await handler(request)
            code = response.status
            resource = request.get("resource", "")
            verb = request.get("verb", verb)
            return response
        except StatusError as err:
            code = err.code
            return _status_response(err)
        except Unavailable as exc:  # the store could not be reached in time: retryable, not a bug
            code = 503
            return _status_response(errors.service_unavailable(f"the storage is unavailable: {exc.message}"))
        except (web.HTTPException,) as exc:
            code = exc.status
            raise
        except Exception as exc:  # noqa: BLE001 - a bug: answer 500, keep serving
            log.exception("internal error on %s %s", request.method, request.path)
            return _status_response(errors.internal_error(exc))
        finally:
            elapsed = time.perf_counter() - started
            resource = request.get("resource", resource)
            verb = request.get("verb", verb)
            self._requests.labels(verb, resource, str(code)).inc()
            if self.audit is not None:
                impersonator = request.get("impersonator")
                self.audit.record(verb=verb.lower(), uri=request.path_qs, user=impersonator or request.get("user"),
                                  impersonated_user=request.get("user") if impersonator else None,
                                  source_ip=request.remote or "", user_agent=request.headers.get("User-Agent", ""),
                                  info=request.get("info"), code=code, received=received, completed=time.time())
            if verb != "watch":
                self._latency.labels(verb, resource).observe(elapsed)
            log.info("%s %s %s %d %.1fms %s", request.method, request.path_qs, getattr(request.get("user"), "name", "-"),
                     code, elapsed * 1000, request.headers.get("User-Agent", ""))

    async def _authorize_path(self, request: web.Request) -> None:
        user: UserInfo = request["user"]
        verb = request.method.lower()
        if verb == "head":
            verb = "get"
        attrs = Attributes(user=user, verb=verb, resource_request=False, path=request.path)
        decision, reason = await self.authorizer.authorize(attrs)
        if decision is not Decision.ALLOW:
            raise errors.forbidden_path(user=user.name, verb=verb, path=request.path, reason=reason)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if not self._ready and path not in PUBLIC_PATHS and not path.startswith(("/healthz", "/livez", "/readyz")):
            # Until the default RBAC objects are in the caches every request would be denied.
            raise errors.service_unavailable("the API server is starting; retry shortly")
        is_resource = path.startswith(("/api/", "/apis/")) and requestinfo.parse(self.registry, path.rstrip("/")) is not None
        if not is_resource and self._ready:
            await self._authorize_path(request)
        if self.health.handles(path):
            return await self.health.respond(request)
        if path.rstrip("/") == "/version":
            return web.json_response(discovery.VERSION_INFO)
        if path == "/metrics":
            return web.Response(body=generate_latest(self.metrics),
                                headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})
        if path.startswith("/openapi/"):
            return self._openapi(path)
        trimmed = path.rstrip("/") or "/"
        if trimmed in ("/api", "/apis"):
            accept = request.headers.get("Accept", "")
            if discovery.wants_aggregated(accept):
                return web.Response(body=orjson.dumps(discovery.aggregated(self.registry, core=trimmed == "/api")),
                                    headers={"Content-Type": discovery.AGGREGATED_CONTENT_TYPE})
            if trimmed == "/api":
                return web.json_response(discovery.api_versions(self.advertise))
            return web.json_response(discovery.api_group_list(self.registry))
        parts = [p for p in trimmed.split("/") if p]
        if parts[:1] == ["api"] and len(parts) == 2:
            doc = discovery.resource_list(self.registry, "", parts[1])
            return self._doc_or_404(doc)
        if parts[:1] == ["apis"] and len(parts) == 2:
            return self._doc_or_404(discovery.api_group(self.registry, parts[1]))
        if parts[:1] == ["apis"] and len(parts) == 3:
            return self._doc_or_404(discovery.resource_list(self.registry, parts[1], parts[2]))
        info = requestinfo.parse(self.registry, trimmed)
        if info is None:
            raise errors.not_found_url()
        verb = _verb(request, info)
        request["verb"] = verb
        request["info"] = info
        request["resource"] = info.rt.plural
        await self._authorize(request, info, verb)
        return await self._resource(request, info, verb)

    def _doc_or_404(self, doc: dict[str, Any] | None) -> web.Response:
        if doc is None:
            raise errors.not_found_url()
        return web.json_response(doc)

    def _openapi(self, path: str) -> web.Response:
        if path.rstrip("/") == "/openapi/v3":
            return web.json_response(openapi.root_document(self.registry, self.crds.schema))
        rest = path[len("/openapi/v3/"):].strip("/").split("/")
        doc = None
        if rest[:1] == ["api"] and len(rest) == 2:
            doc = openapi.group_version_document(self.registry, "", rest[1], self.crds.schema)
        elif rest[:1] == ["apis"] and len(rest) == 3:
            doc = openapi.group_version_document(self.registry, rest[1], rest[2], self.crds.schema)
        if doc is None:
            raise errors.not_found_url()
        return web.json_response(doc)

    async def _authorize(self, request: web.Request, info: requestinfo.RequestInfo, verb: str) -> None:
        user: UserInfo = request["user"]
        attrs = Attributes(user=user, verb=verb, resource_request=True, path=request.path,
                           api_group=info.rt.group, api_version=info.rt.version, resource=info.rt.plural,
                           subresource=info.subresource, namespace=info.namespace, name=info.name)
        decision, reason = await self.authorizer.authorize(attrs)
        if decision is not Decision.ALLOW:
            raise errors.forbidden(user=user.name, verb=verb, resource=info.rt.plural, group=info.rt.group,
                                   name=info.name, namespace=info.namespace, subresource=info.subresource,
                                   reason=reason)

    async def _resource(self, request: web.Request, info: requestinfo.RequestInfo, verb: str) -> web.StreamResponse:
        h = self.handlers
        user: UserInfo = request["user"]
        rt = info.rt
        if rt.group == "metrics.k8s.io":
            if self._metrics_api is None:
                from .metricsapi import MetricsAPI  # PodMetrics/NodeMetrics from the kubelets' /stats/summary

                self._metrics_api = MetricsAPI(self)
            return await self._metrics_api.handle(request, info, verb)
        if rt.group == "" and rt.plural == "componentstatuses":
            return await self._component_statuses(request, info, verb)
        if rt.virtual:
            if verb != "create":
                raise errors.method_not_allowed(resource=rt.plural, action=verb, group=rt.group)
            return await self._review(request, info, user)
        if info.subresource:
            sub = rt.subresource(info.subresource)
            if sub is None:
                raise errors.not_found_url()
            if info.subresource in SUBRESOURCE_WRITES:
                if verb == "get":
                    return await h.get(request, info)
                if verb == "update":
                    return await h.update(request, info, user)
                if verb == "patch":
                    return await h.patch(request, info, user)
            elif info.subresource == "scale" and verb in ("get", "update", "patch"):
                return await h.scale(request, info, user)
            elif info.subresource == "binding" and verb == "create":
                return await h.binding(request, info, user)
            elif info.subresource == "eviction" and verb == "create":
                return await h.eviction(request, info, user)
            elif info.subresource == "token" and verb == "create":
                body = await h.read_object(request)
                out = await token_request(self.token_issuer, self.storage, self.registry, info.namespace, info.name, body)
                return web.Response(status=201, body=orjson.dumps(out), content_type="application/json")
            elif info.subresource == "finalize" and verb == "update":
                return await h.update(request, info, user)
            elif info.subresource == "proxy" and rt.group == "" and rt.plural in ("pods", "services", "nodes"):
                from . import proxysubresource  # HTTP through to a pod, a service endpoint or a kubelet

                return await proxysubresource.proxy(self, request, info, self.proxy_session())
            elif rt.plural == "pods" and rt.group == "" and info.subresource in ("log", "exec", "attach", "portforward"):
                from . import nodeproxy  # pods/log and pods/exec go to the kubelet of the pod's node

                return await nodeproxy.proxy(self, request, info, verb)
            raise errors.method_not_allowed(resource=f"{rt.plural}/{info.subresource}", action=verb, group=rt.group)
        if verb not in rt.verbs or (verb in ("update", "patch") and info.is_collection):
            raise errors.method_not_allowed(resource=rt.plural, action=verb, group=rt.group)
        if verb in ("list", "watch"):
            return await h.list(request, info)
        if verb == "get":
            return await h.get(request, info)
        if verb == "create":
            if not info.is_collection:
                raise errors.method_not_allowed(resource=rt.plural, action="create", group=rt.group)
            return await h.create(request, info, user)
        if verb == "update":
            return await h.update(request, info, user)
        if verb == "patch":
            return await h.patch(request, info, user)
        if verb == "delete":
            return await h.delete(request, info, user)
        if verb == "deletecollection":
            return await h.delete_collection(request, info, user)
        raise errors.method_not_allowed(resource=rt.plural, action=verb, group=rt.group)

    async def _component_statuses(self, request: web.Request, info: requestinfo.RequestInfo,
                                  verb: str) -> web.StreamResponse:
        if info.subresource or verb not in ("get", "list"):
            raise errors.method_not_allowed(resource=info.rt.plural, action=verb, group="")
        leases = self.registry.get("coordination.k8s.io", "v1", "leases")
        assert leases is not None
        statuses = componentstatus.ComponentStatuses(
            read_lease=lambda name: self.storage.get(leases, "kube-system", name),
            store_endpoints=self.client.endpoints, store_status=self.client.status)
        items = [await statuses.get(info.name)] if info.name else await statuses.all()
        resp = self.handlers.respond_objects(request, info.rt, items, single=bool(info.name))
        resp.headers["Warning"] = f'299 - "{componentstatus.DEPRECATION}"'
        return resp

    async def _review(self, request: web.Request, info: requestinfo.RequestInfo, user: UserInfo) -> web.StreamResponse:
        """SelfSubjectReview, TokenReview, and the access reviews (answered by the authorizer chain)."""
        rt = info.rt
        body = await self.handlers.read_object(request, rt)
        out = {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": {"creationTimestamp": None},
               **{k: v for k, v in body.items() if k == "spec"}}
        if rt.kind == "SelfSubjectReview":
            info_out: dict[str, Any] = {"username": user.name, "groups": list(user.groups)}
            if user.uid:
                info_out["uid"] = user.uid
            if user.extra:
                info_out["extra"] = {key: list(values) for key, values in user.extra.items()}
            out["status"] = {"userInfo": info_out}
        elif rt.kind == "TokenReview":
            token = (body.get("spec") or {}).get("token", "")
            who = await self.authenticate_token(token) if token else None
            out["status"] = ({"authenticated": True, "user": {"username": who.name, "uid": who.uid,
                                                               "groups": list(who.groups)}}
                             if who else {"authenticated": False, "error": "invalid bearer token"})
        elif rt.kind in ("SelfSubjectAccessReview", "SubjectAccessReview", "LocalSubjectAccessReview"):
            spec = body.get("spec") or {}
            subject = user
            if rt.kind != "SelfSubjectAccessReview":
                subject = UserInfo(spec.get("user", ""), spec.get("uid", ""), tuple(spec.get("groups") or ()))
            ra = spec.get("resourceAttributes")
            nra = spec.get("nonResourceAttributes") or {}
            if ra is not None:
                attrs = Attributes(user=subject, verb=ra.get("verb", ""), resource_request=True,
                                   api_group=ra.get("group", ""), api_version=ra.get("version", ""),
                                   resource=ra.get("resource", ""), subresource=ra.get("subresource", ""),
                                   namespace=ra.get("namespace", info.namespace), name=ra.get("name", ""))
            else:
                attrs = Attributes(user=subject, verb=nra.get("verb", ""), resource_request=False,
                                   path=nra.get("path", ""))
            decision, reason = await self.authorizer.authorize(attrs)
            out["status"] = {"allowed": decision is Decision.ALLOW}
            if decision is Decision.DENY:
                out["status"]["denied"] = True
            if reason:
                out["status"]["reason"] = reason
        elif rt.kind == "SelfSubjectRulesReview":
            namespace = (body.get("spec") or {}).get("namespace", "")
            if "system:masters" in user.groups:
                rules = [Rule(("*",), ("*",), ("*",)), Rule(("*",), non_resource_urls=("*",))]
            else:
                rules = self.rbac.rules_for(user, namespace)
            out["status"] = {
                "resourceRules": [{k: v for k, v in r.to_dict().items() if k != "nonResourceURLs"}
                                  for r in rules if not r.non_resource_urls],
                "nonResourceRules": [{"verbs": list(r.verbs), "nonResourceURLs": list(r.non_resource_urls)}
                                     for r in rules if r.non_resource_urls],
                "incomplete": False}
        else:
            raise errors.method_not_allowed(resource=rt.plural, action="create", group=rt.group)
        return web.Response(status=201, body=orjson.dumps(out), content_type="application/json")


async def _freeze_heap() -> None:
    """Keep the cyclic GC off the watch caches' long-lived objects (see kvstore/member.py): full
    collections over tens of thousands of cached objects dominated list latency."""
    import gc

    while True:
        await asyncio.sleep(5.0)
        gc.freeze()


def _protobuf_decoder() -> Any:
    from apimachinery import protobuf

    def decode(body: bytes, api_version: str, kind: str) -> dict[str, Any]:
        return protobuf.decode_object(body, api_version=api_version or None, kind=kind or None)

    return decode


# ---------------------------------------------------------------------- process

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pilot apiserver", description="Serve the Kubernetes API over the Pilothouse store.")
    p.add_argument("--etcd-servers", required=True, help="comma-separated store (or etcd) client URLs")
    p.add_argument("--etcd-cafile", help="CA that the store's (https) serving certificates chain to")
    p.add_argument("--etcd-certfile", help="client certificate presented to the store (with --etcd-keyfile)")
    p.add_argument("--etcd-keyfile", help="key of --etcd-certfile")
    p.add_argument("--bind", default="127.0.0.1:6443", help="HOST:PORT to listen on")
    p.add_argument("--tls-cert-file", help="serving certificate (PEM); without it the API is plain HTTP")
    p.add_argument("--tls-private-key-file", help="serving key (PEM)")
    p.add_argument("--token-auth-file", help="static tokens: token,user,uid[,\"group1,group2\"] per line")
    p.add_argument("--client-ca-file", help="authenticate clients that present a certificate signed by this CA "
                   "(PEM): the subject's CN is the user name, each O a group (needs --tls-cert-file)")
    p.add_argument("--service-account-signing-key-file", help="EC P-256 private key (PEM) that signs and verifies "
                   "service-account tokens; every replica must use the same one")
    p.add_argument("--encryption-provider-config", help="EncryptionConfiguration file: which resources are "
                   "encrypted at rest with which AES-GCM keys")
    p.add_argument("--audit-log-path", help="write an audit.k8s.io/v1 Event per request (Metadata level) here")
    p.add_argument("--authorization-mode", default="RBAC", choices=["RBAC", "AlwaysAllow"],
                   help="RBAC (system:masters may do anything) or AlwaysAllow (every authenticated request)")
    p.add_argument("--service-cluster-ip-range", default="10.96.0.0/12")
    p.add_argument("--service-node-port-range", default="30000-32767")
    p.add_argument("--advertise-address", default=None, help="HOST:PORT clients should use (default: --bind); "
                   "published in the endpoints of the default/kubernetes Service")
    p.add_argument("--endpoint-reconciler-type", default="lease", choices=["lease", "none"],
                   help="lease: every replica keeps an identity Lease and the kubernetes Service's endpoints list "
                        "the live ones; none: the endpoints are not managed")
    p.add_argument("--identity-lease-duration-seconds", type=float, default=15.0,
                   help="an API server whose identity Lease was not renewed for this long leaves the endpoints")
    p.add_argument("--identity-lease-renew-interval-seconds", type=float, default=5.0,
                   help="how often the identity Lease is renewed and the kubernetes Service reconciled")
    p.add_argument("--log-level", default=os.environ.get("PILOT_LOG_LEVEL", "INFO"))
    return p


async def serve(args: argparse.Namespace) -> None:
    host, _, port = args.bind.rpartition(":")
    authenticators: list[Authenticator] = []
    if args.token_auth_file:
        authenticators.append(TokenFileAuthenticator.from_file(args.token_auth_file))
    low, _, high = args.service_node_port_range.partition("-")
    issuer = None
    if args.service_account_signing_key_file:
        with open(args.service_account_signing_key_file, "rb") as f:
            issuer = TokenIssuer(load_private_key(f.read()))
    store_tls = None
    if args.etcd_cafile:
        store_tls = ssl.create_default_context(cafile=args.etcd_cafile)
        if args.etcd_certfile:
            store_tls.load_cert_chain(args.etcd_certfile, args.etcd_keyfile)
    client = EtcdClient(args.etcd_servers.split(","), timeout=10, ssl_context=store_tls)
    server = APIServer(client=client, authenticators=authenticators, authorization_mode=args.authorization_mode,
                       service_cidr=args.service_cluster_ip_range, node_ports=(int(low), int(high)),
                       advertise=args.advertise_address or args.bind, token_issuer=issuer,
                       transformer=load_encryption_config(args.encryption_provider_config)
                       if args.encryption_provider_config else None,
                       audit=AuditLog(args.audit_log_path) if args.audit_log_path else None,
                       identity_lease_duration=args.identity_lease_duration_seconds,
                       identity_lease_renew_interval=args.identity_lease_renew_interval_seconds,
                       endpoint_reconciler=args.endpoint_reconciler_type)
    ssl_ctx = None
    if args.tls_cert_file:
        ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_ctx.load_cert_chain(args.tls_cert_file, args.tls_private_key_file)
        if args.client_ca_file:
            ssl_ctx.load_verify_locations(args.client_ca_file)
            ssl_ctx.verify_mode = ssl.CERT_OPTIONAL  # a certificate is one way in; tokens stay another
    elif args.client_ca_file:
        raise SystemExit("--client-ca-file needs --tls-cert-file: client certificates come with TLS")
    runner = web.AppRunner(server.app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host or "127.0.0.1", int(port), ssl_context=ssl_ctx, reuse_address=True)
    await site.start()
    log.info("serving the Kubernetes API on %s://%s", "https" if ssl_ctx else "http", args.bind)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    await server.stop()
    await runner.cleanup()
    await client.close()


def main(argv: list[str] | None = None) -> None:
    from kvstore.member import setup_logging

    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging(args.log_level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    try:
        import uvloop

        uvloop.run(serve(args))
    except ImportError:  # pragma: no cover
        asyncio.run(serve(args))
