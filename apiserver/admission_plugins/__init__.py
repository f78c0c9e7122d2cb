"""The admission plugins after NamespaceLifecycle, in kube-apiserver's order.

    NamespaceLifecycle (admission.py) → LimitRanger → ServiceAccount → PodSecurity →
    DefaultStorageClass + DefaultIngressClass → ImagePolicy → MutatingAdmissionWebhook →
    ValidatingAdmissionWebhook → ResourceQuota

Mutating plugins change ``op.obj`` in place; any plugin refuses a write by raising a StatusError.
ResourceQuota comes last so it only reserves usage for writes every other plugin accepted (a
later refusal still hands the reservation back through ``Operation.rollbacks``).
"""

from __future__ import annotations

from typing import Any, Callable

from apimachinery.registry import Registry, ResourceType

from ..storage import Storage
from ..strategy import Strategy
from ..watchcache import ResourceCache
from .common import Lookups
from .defaultclass import DefaultClasses
from .imagepolicy import ImagePolicy
from .limitranger import LimitRanger
from .podsecurity import PodSecurity
from .resourcequota import ResourceQuotaAdmission
from .serviceaccount import ServiceAccountAdmission
from .webhooks import AdmissionWebhooks

__all__ = ["AdmissionWebhooks", "DefaultClasses", "ImagePolicy", "LimitRanger", "Lookups", "PodSecurity", "ResourceQuotaAdmission",
           "ServiceAccountAdmission", "standard_plugins"]


def standard_plugins(*, storage: Storage, registry: Registry, caches: dict[tuple[str, str], ResourceCache],
                     strategies: Callable[[ResourceType], Strategy]) -> list[Any]:
    """LimitRanger … ResourceQuota, sharing one cache-first lookup helper."""
    lookups = Lookups(storage=storage, registry=registry, caches=caches)
    return [
        LimitRanger(lookups=lookups),
        ServiceAccountAdmission(lookups=lookups, strategies=strategies),
        PodSecurity(lookups=lookups),
        DefaultClasses(lookups=lookups),
        ImagePolicy(lookups=lookups),
        AdmissionWebhooks(mutating=True, lookups=lookups),
        AdmissionWebhooks(mutating=False, lookups=lookups),
        ResourceQuotaAdmission(lookups=lookups),
    ]
