"""Decode Kubernetes protobuf request bodies into the same JSON-shaped dicts a JSON body gives.

Why this exists: kubectl ≥ 1.32 sends ``Content-Type: application/vnd.kubernetes.protobuf`` from
its typed client (``create namespace|deployment|configmap|secret|service|job|...``, ``create token``,
``auth can-i``, ``auth whoami``) and does not fall back to JSON on ``415``; Go programs built on
client-go's typed clientsets reportedly do the same. The API server only ever *decodes* protobuf (replies stay JSON), so this
module is a decoder only: a small generic protobuf wire reader driven by a declarative table of the
field numbers in upstream ``k8s.io/api/<group>/<version>/generated.proto`` and
``k8s.io/apimachinery/.../generated.proto`` (plus, per field, whether the Go field is a pointer).

Body layout: ``b"k8s\\x00"`` + ``runtime.Unknown{1: typeMeta{1: apiVersion, 2: kind}, 2: raw,
3: contentEncoding, 4: contentType}``, where ``raw`` is the object's own message.

Zero values: Go's gogo-protobuf marshaller writes every non-pointer field, zero or not, so a
``Namespace`` arrives with ``uid: ""``, ``generation: 0`` and an empty ``status``. We drop zero
values of non-pointer fields (much as ``omitempty`` does for JSON) and keep pointer fields whenever
they are on the wire, zero or not, because Go only writes a pointer when it is non-nil: that is how
``spec.replicas: 0`` or ``emptyDir: {}`` survive. Dropping a non-pointer zero is lossy (``paused:
false`` and a missing ``paused`` look the same) but it is exactly the information the protobuf form
carries. Elements of lists and values of maps are never dropped (``labels: {"a": ""}`` stays).

Unknown field numbers are skipped (a newer client may know newer fields), malformed input raises
``ValueError``, and an object kind missing from the table raises ``UnsupportedKindError`` (a
``ValueError``) so the API server can answer ``415 UnsupportedMediaType``.
"""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, Final

import orjson

__all__ = [
    "CONTENT_TYPE",
    "MAGIC",
    "SUPPORTED_KINDS",
    "UnsupportedKindError",
    "decode_object",
    "is_supported",
]

CONTENT_TYPE: Final = "application/vnd.kubernetes.protobuf"
MAGIC: Final = b"k8s\x00"


class UnsupportedKindError(ValueError):
    """The body is well formed but its kind is not in the table: answer 415, not 400."""


# ---------------------------------------------------------------------------------------------
# Schema table
#
# One entry per message: ``"<number>:<jsonName>:<type>"`` separated by spaces, in Go struct order
# (which is the order JSON uses). ``<type>`` is a scalar (``string``, ``bytes`` → base64 text,
# ``int32``, ``int64``, ``bool``, ``double``), a message name, or a special type (below), with
# a shape prefix:
#   ``*T``  Go pointer: keep the value even when it is zero (only written when non-nil)
#   ``[]T`` repeated (scalars may also arrive packed)
#   ``{T}`` ``map<string, T>``: repeated entry messages ``{1: key, 2: value}``
#   ``^T``  Go embedded struct with an inline JSON tag: its fields are merged into the parent
# An entry that starts with ``=`` is a wrapper whose JSON form is its single field's value
# (``ExtraValue`` is ``[]string`` in JSON). Special types: ``Time`` / ``MicroTime``
# ({1: seconds, 2: nanos}) → RFC 3339 text, zero → absent; ``IntOrString`` ({1: type, 2: intVal,
# 3: strVal}) → int or str; ``Quantity`` ({1: string}) → its text; ``RawExtension`` / ``FieldsV1``
# ({1: raw}) → the JSON they carry. Names that clash across groups carry a group prefix
# (``events.Event``). Read off k8s.io/api and k8s.io/apimachinery v0.36.3 (generated.proto for the
# numbers, types.go for pointers and inline embeds); field numbers never change upstream, newer
# releases only add fields, and fields this table lacks are skipped.

_SCALARS: Final = frozenset({"string", "bytes", "int32", "int64", "bool", "double"})
_SPECIALS: Final = frozenset({"Time", "MicroTime", "IntOrString", "Quantity", "RawExtension", "FieldsV1"})

_MESSAGE_TABLE: Final[Mapping[str, str]] = MappingProxyType({
    "Namespace": "1:metadata:ObjectMeta 2:spec:NamespaceSpec 3:status:NamespaceStatus",
    "ConfigMap": "1:metadata:ObjectMeta 4:immutable:*bool 2:data:{string} 3:binaryData:{bytes}",
    "Secret": "1:metadata:ObjectMeta 5:immutable:*bool 2:data:{bytes} 4:stringData:{string} 3:type:string",
    "Service": "1:metadata:ObjectMeta 2:spec:ServiceSpec 3:status:ServiceStatus",
    "ServiceAccount": (
        "1:metadata:ObjectMeta 2:secrets:[]ObjectReference "
        "3:imagePullSecrets:[]LocalObjectReference 4:automountServiceAccountToken:*bool"
    ),
    "Pod": "1:metadata:ObjectMeta 2:spec:PodSpec 3:status:PodStatus",
    "ResourceQuota": "1:metadata:ObjectMeta 2:spec:ResourceQuotaSpec 3:status:ResourceQuotaStatus",
    "Binding": "1:metadata:ObjectMeta 2:target:ObjectReference",
    "PriorityClass": (
        "1:metadata:ObjectMeta 2:value:int32 3:globalDefault:bool 4:description:string "
        "5:preemptionPolicy:*string"
    ),
    "Deployment": "1:metadata:ObjectMeta 2:spec:DeploymentSpec 3:status:DeploymentStatus",
    "ReplicaSet": "1:metadata:ObjectMeta 2:spec:ReplicaSetSpec 3:status:ReplicaSetStatus",
    "StatefulSet": "1:metadata:ObjectMeta 2:spec:StatefulSetSpec 3:status:StatefulSetStatus",
    "DaemonSet": "1:metadata:ObjectMeta 2:spec:DaemonSetSpec 3:status:DaemonSetStatus",
    "Job": "1:metadata:ObjectMeta 2:spec:JobSpec 3:status:JobStatus",
    "CronJob": "1:metadata:ObjectMeta 2:spec:CronJobSpec 3:status:CronJobStatus",
    "Ingress": "1:metadata:ObjectMeta 2:spec:IngressSpec 3:status:IngressStatus",
    "PodDisruptionBudget": (
        "1:metadata:ObjectMeta 2:spec:PodDisruptionBudgetSpec "
        "3:status:PodDisruptionBudgetStatus"
    ),
    "Eviction": "1:metadata:ObjectMeta 2:deleteOptions:*DeleteOptions",
    "Role": "1:metadata:ObjectMeta 2:rules:[]PolicyRule",
    "ClusterRole": "1:metadata:ObjectMeta 2:rules:[]PolicyRule 3:aggregationRule:*AggregationRule",
    "RoleBinding": "1:metadata:ObjectMeta 2:subjects:[]Subject 3:roleRef:RoleRef",
    "ClusterRoleBinding": "1:metadata:ObjectMeta 2:subjects:[]Subject 3:roleRef:RoleRef",
    "SelfSubjectAccessReview": (
        "1:metadata:ObjectMeta 2:spec:SelfSubjectAccessReviewSpec "
        "3:status:SubjectAccessReviewStatus"
    ),
    "SelfSubjectRulesReview": (
        "1:metadata:ObjectMeta 2:spec:SelfSubjectRulesReviewSpec "
        "3:status:SubjectRulesReviewStatus"
    ),
    "SubjectAccessReview": (
        "1:metadata:ObjectMeta 2:spec:SubjectAccessReviewSpec "
        "3:status:SubjectAccessReviewStatus"
    ),
    "SelfSubjectReview": "1:metadata:ObjectMeta 2:status:SelfSubjectReviewStatus",
    "TokenRequest": "1:metadata:ObjectMeta 2:spec:TokenRequestSpec 3:status:TokenRequestStatus",
    "TokenReview": "1:metadata:ObjectMeta 2:spec:TokenReviewSpec 3:status:TokenReviewStatus",
    "PersistentVolumeClaim": (
        "1:metadata:ObjectMeta 2:spec:PersistentVolumeClaimSpec "
        "3:status:PersistentVolumeClaimStatus"
    ),
    "ReplicationController": (
        "1:metadata:ObjectMeta 2:spec:ReplicationControllerSpec "
        "3:status:ReplicationControllerStatus"
    ),
    "PodTemplate": "1:metadata:ObjectMeta 2:template:PodTemplateSpec",
    "Endpoints": "1:metadata:ObjectMeta 2:subsets:[]EndpointSubset",
    "LimitRange": "1:metadata:ObjectMeta 2:spec:LimitRangeSpec",
    "Event": (
        "1:metadata:ObjectMeta 2:involvedObject:ObjectReference 3:reason:string 4:message:string "
        "5:source:EventSource 6:firstTimestamp:Time 7:lastTimestamp:Time 8:count:int32 9:type:string "
        "10:eventTime:MicroTime 11:series:*EventSeries 12:action:string 13:related:*ObjectReference "
        "14:reportingComponent:string 15:reportingInstance:string"
    ),
    "ControllerRevision": "1:metadata:ObjectMeta 2:data:RawExtension 3:revision:int64",
    "HorizontalPodAutoscaler": (
        "1:metadata:ObjectMeta 2:spec:HorizontalPodAutoscalerSpec "
        "3:status:HorizontalPodAutoscalerStatus"
    ),
    "Scale": "1:metadata:ObjectMeta 2:spec:ScaleSpec 3:status:ScaleStatus",
    "CertificateSigningRequest": (
        "1:metadata:ObjectMeta 2:spec:CertificateSigningRequestSpec "
        "3:status:CertificateSigningRequestStatus"
    ),
    "Lease": "1:metadata:ObjectMeta 2:spec:LeaseSpec",
    "events.Event": (
        "1:metadata:ObjectMeta 2:eventTime:MicroTime 3:series:*events.EventSeries "
        "4:reportingController:string 5:reportingInstance:string 6:action:string 7:reason:string "
        "8:regarding:ObjectReference 9:related:*ObjectReference 10:note:string 11:type:string "
        "12:deprecatedSource:EventSource 13:deprecatedFirstTimestamp:Time "
        "14:deprecatedLastTimestamp:Time 15:deprecatedCount:int32"
    ),
    "EndpointSlice": (
        "1:metadata:ObjectMeta 4:addressType:string 2:endpoints:[]Endpoint "
        "3:ports:[]discovery.EndpointPort"
    ),
    "NetworkPolicy": "1:metadata:ObjectMeta 2:spec:NetworkPolicySpec",
    "IngressClass": "1:metadata:ObjectMeta 2:spec:IngressClassSpec",
    "DeleteOptions": (
        "1:gracePeriodSeconds:*int64 2:preconditions:*Preconditions 3:orphanDependents:*bool "
        "4:propagationPolicy:*string 5:dryRun:[]string "
        "6:ignoreStoreReadErrorWithClusterBreakingPotential:*bool"
    ),
    "ObjectMeta": (
        "1:name:string 2:generateName:string 3:namespace:string 4:selfLink:string 5:uid:string "
        "6:resourceVersion:string 7:generation:int64 8:creationTimestamp:Time "
        "9:deletionTimestamp:*Time 10:deletionGracePeriodSeconds:*int64 11:labels:{string} "
        "12:annotations:{string} 13:ownerReferences:[]OwnerReference 14:finalizers:[]string "
        "17:managedFields:[]ManagedFieldsEntry"
    ),
    "NamespaceSpec": "1:finalizers:[]string",
    "NamespaceStatus": "1:phase:string 2:conditions:[]NamespaceCondition",
    "ServiceSpec": (
        "1:ports:[]ServicePort 2:selector:{string} 3:clusterIP:string 18:clusterIPs:[]string "
        "4:type:string 5:externalIPs:[]string 7:sessionAffinity:string 8:loadBalancerIP:string "
        "9:loadBalancerSourceRanges:[]string 10:externalName:string 11:externalTrafficPolicy:string "
        "12:healthCheckNodePort:int32 13:publishNotReadyAddresses:bool "
        "14:sessionAffinityConfig:*SessionAffinityConfig 19:ipFamilies:[]string "
        "17:ipFamilyPolicy:*string 20:allocateLoadBalancerNodePorts:*bool "
        "21:loadBalancerClass:*string 22:internalTrafficPolicy:*string "
        "23:trafficDistribution:*string"
    ),
    "ServiceStatus": "1:loadBalancer:LoadBalancerStatus 2:conditions:[]Condition",
    "ObjectReference": (
        "1:kind:string 2:namespace:string 3:name:string 4:uid:string 5:apiVersion:string "
        "6:resourceVersion:string 7:fieldPath:string"
    ),
    "LocalObjectReference": "1:name:string",
    "PodSpec": (
        "1:volumes:[]Volume 20:initContainers:[]Container 2:containers:[]Container "
        "34:ephemeralContainers:[]EphemeralContainer 3:restartPolicy:string "
        "4:terminationGracePeriodSeconds:*int64 5:activeDeadlineSeconds:*int64 6:dnsPolicy:string "
        "7:nodeSelector:{string} 8:serviceAccountName:string 9:serviceAccount:string "
        "21:automountServiceAccountToken:*bool 10:nodeName:string 11:hostNetwork:bool 12:hostPID:bool "
        "13:hostIPC:bool 27:shareProcessNamespace:*bool 14:securityContext:*PodSecurityContext "
        "15:imagePullSecrets:[]LocalObjectReference 16:hostname:string 17:subdomain:string "
        "18:affinity:*Affinity 19:schedulerName:string 22:tolerations:[]Toleration "
        "23:hostAliases:[]HostAlias 24:priorityClassName:string 25:priority:*int32 "
        "26:dnsConfig:*PodDNSConfig 28:readinessGates:[]PodReadinessGate 29:runtimeClassName:*string "
        "30:enableServiceLinks:*bool 31:preemptionPolicy:*string 32:overhead:{Quantity} "
        "33:topologySpreadConstraints:[]TopologySpreadConstraint 35:setHostnameAsFQDN:*bool "
        "36:os:*PodOS 37:hostUsers:*bool 38:schedulingGates:[]PodSchedulingGate "
        "39:resourceClaims:[]PodResourceClaim 40:resources:*ResourceRequirements "
        "41:hostnameOverride:*string 43:schedulingGroup:*PodSchedulingGroup"
    ),
    "PodStatus": (
        "17:observedGeneration:int64 1:phase:string 2:conditions:[]PodCondition 3:message:string "
        "4:reason:string 11:nominatedNodeName:string 5:hostIP:string 16:hostIPs:[]HostIP "
        "6:podIP:string 12:podIPs:[]PodIP 7:startTime:*Time "
        "10:initContainerStatuses:[]ContainerStatus 8:containerStatuses:[]ContainerStatus "
        "9:qosClass:string 13:ephemeralContainerStatuses:[]ContainerStatus 14:resize:string "
        "15:resourceClaimStatuses:[]PodResourceClaimStatus "
        "18:extendedResourceClaimStatus:*PodExtendedResourceClaimStatus "
        "19:allocatedResources:{Quantity} 20:resources:*ResourceRequirements "
        "21:nodeAllocatableResourceClaimStatuses:[]NodeAllocatableResourceClaimStatus"
    ),
    "ResourceQuotaSpec": "1:hard:{Quantity} 2:scopes:[]string 3:scopeSelector:*ScopeSelector",
    "ResourceQuotaStatus": "1:hard:{Quantity} 2:used:{Quantity}",
    "DeploymentSpec": (
        "1:replicas:*int32 2:selector:*LabelSelector 3:template:PodTemplateSpec "
        "4:strategy:DeploymentStrategy 5:minReadySeconds:int32 6:revisionHistoryLimit:*int32 "
        "7:paused:bool 9:progressDeadlineSeconds:*int32"
    ),
    "DeploymentStatus": (
        "1:observedGeneration:int64 2:replicas:int32 3:updatedReplicas:int32 "
        "7:readyReplicas:int32 4:availableReplicas:int32 5:unavailableReplicas:int32 "
        "9:terminatingReplicas:*int32 6:conditions:[]DeploymentCondition "
        "8:collisionCount:*int32"
    ),
    "ReplicaSetSpec": (
        "1:replicas:*int32 4:minReadySeconds:int32 2:selector:*LabelSelector "
        "3:template:PodTemplateSpec"
    ),
    "ReplicaSetStatus": (
        "1:replicas:int32 2:fullyLabeledReplicas:int32 4:readyReplicas:int32 "
        "5:availableReplicas:int32 7:terminatingReplicas:*int32 3:observedGeneration:int64 "
        "6:conditions:[]ReplicaSetCondition"
    ),
    "StatefulSetSpec": (
        "1:replicas:*int32 2:selector:*LabelSelector 3:template:PodTemplateSpec "
        "4:volumeClaimTemplates:[]PersistentVolumeClaim 5:serviceName:string "
        "6:podManagementPolicy:string 7:updateStrategy:StatefulSetUpdateStrategy "
        "8:revisionHistoryLimit:*int32 9:minReadySeconds:int32 "
        "10:persistentVolumeClaimRetentionPolicy:*StatefulSetPersistentVolumeClaimRetentionPolicy "
        "11:ordinals:*StatefulSetOrdinals"
    ),
    "StatefulSetStatus": (
        "1:observedGeneration:int64 2:replicas:int32 3:readyReplicas:int32 "
        "4:currentReplicas:int32 5:updatedReplicas:int32 6:currentRevision:string "
        "7:updateRevision:string 9:collisionCount:*int32 10:conditions:[]StatefulSetCondition "
        "11:availableReplicas:int32"
    ),
    "DaemonSetSpec": (
        "1:selector:*LabelSelector 2:template:PodTemplateSpec "
        "3:updateStrategy:DaemonSetUpdateStrategy 4:minReadySeconds:int32 "
        "6:revisionHistoryLimit:*int32"
    ),
    "DaemonSetStatus": (
        "1:currentNumberScheduled:int32 2:numberMisscheduled:int32 "
        "3:desiredNumberScheduled:int32 4:numberReady:int32 5:observedGeneration:int64 "
        "6:updatedNumberScheduled:int32 7:numberAvailable:int32 8:numberUnavailable:int32 "
        "9:collisionCount:*int32 10:conditions:[]DaemonSetCondition"
    ),
    "JobSpec": (
        "1:parallelism:*int32 2:completions:*int32 3:activeDeadlineSeconds:*int64 "
        "11:podFailurePolicy:*PodFailurePolicy 16:successPolicy:*SuccessPolicy 7:backoffLimit:*int32 "
        "12:backoffLimitPerIndex:*int32 13:maxFailedIndexes:*int32 4:selector:*LabelSelector "
        "5:manualSelector:*bool 6:template:PodTemplateSpec 8:ttlSecondsAfterFinished:*int32 "
        "9:completionMode:*string 10:suspend:*bool 14:podReplacementPolicy:*string 15:managedBy:*string"
    ),
    "JobStatus": (
        "1:conditions:[]JobCondition 2:startTime:*Time 3:completionTime:*Time 4:active:int32 "
        "5:succeeded:int32 6:failed:int32 11:terminating:*int32 7:completedIndexes:string "
        "10:failedIndexes:*string 8:uncountedTerminatedPods:*UncountedTerminatedPods 9:ready:*int32"
    ),
    "CronJobSpec": (
        "1:schedule:string 8:timeZone:*string 2:startingDeadlineSeconds:*int64 "
        "3:concurrencyPolicy:string 4:suspend:*bool 5:jobTemplate:JobTemplateSpec "
        "6:successfulJobsHistoryLimit:*int32 7:failedJobsHistoryLimit:*int32"
    ),
    "CronJobStatus": "1:active:[]ObjectReference 4:lastScheduleTime:*Time 5:lastSuccessfulTime:*Time",
    "IngressSpec": (
        "4:ingressClassName:*string 1:defaultBackend:*IngressBackend 2:tls:[]IngressTLS "
        "3:rules:[]IngressRule"
    ),
    "IngressStatus": "1:loadBalancer:IngressLoadBalancerStatus",
    "PodDisruptionBudgetSpec": (
        "1:minAvailable:*IntOrString 2:selector:*LabelSelector "
        "3:maxUnavailable:*IntOrString 4:unhealthyPodEvictionPolicy:*string"
    ),
    "PodDisruptionBudgetStatus": (
        "1:observedGeneration:int64 2:disruptedPods:{Time} 3:disruptionsAllowed:int32 "
        "4:currentHealthy:int32 5:desiredHealthy:int32 6:expectedPods:int32 "
        "7:conditions:[]Condition"
    ),
    "PolicyRule": (
        "1:verbs:[]string 2:apiGroups:[]string 3:resources:[]string 4:resourceNames:[]string "
        "5:nonResourceURLs:[]string"
    ),
    "AggregationRule": "1:clusterRoleSelectors:[]LabelSelector",
    "Subject": "1:kind:string 2:apiGroup:string 3:name:string 4:namespace:string",
    "RoleRef": "1:apiGroup:string 2:kind:string 3:name:string",
    "SelfSubjectAccessReviewSpec": (
        "1:resourceAttributes:*ResourceAttributes "
        "2:nonResourceAttributes:*NonResourceAttributes"
    ),
    "SubjectAccessReviewStatus": "1:allowed:bool 4:denied:bool 2:reason:string 3:evaluationError:string",
    "SelfSubjectRulesReviewSpec": "1:namespace:string",
    "SubjectRulesReviewStatus": (
        "1:resourceRules:[]ResourceRule 2:nonResourceRules:[]NonResourceRule "
        "3:incomplete:bool 4:evaluationError:string"
    ),
    "SubjectAccessReviewSpec": (
        "1:resourceAttributes:*ResourceAttributes "
        "2:nonResourceAttributes:*NonResourceAttributes 3:user:string 4:groups:[]string "
        "5:extra:{ExtraValue} 6:uid:string"
    ),
    "SelfSubjectReviewStatus": "1:userInfo:UserInfo",
    "TokenRequestSpec": (
        "1:audiences:[]string 4:expirationSeconds:*int64 "
        "3:boundObjectRef:*BoundObjectReference"
    ),
    "TokenRequestStatus": "1:token:string 2:expirationTimestamp:Time",
    "TokenReviewSpec": "1:token:string 2:audiences:[]string",
    "TokenReviewStatus": "1:authenticated:bool 2:user:UserInfo 4:audiences:[]string 3:error:string",
    "PersistentVolumeClaimSpec": (
        "1:accessModes:[]string 4:selector:*LabelSelector "
        "2:resources:VolumeResourceRequirements 3:volumeName:string "
        "5:storageClassName:*string 6:volumeMode:*string "
        "7:dataSource:*TypedLocalObjectReference "
        "8:dataSourceRef:*TypedObjectReference 9:volumeAttributesClassName:*string"
    ),
    "PersistentVolumeClaimStatus": (
        "1:phase:string 2:accessModes:[]string 3:capacity:{Quantity} "
        "4:conditions:[]PersistentVolumeClaimCondition "
        "5:allocatedResources:{Quantity} 7:allocatedResourceStatuses:{string} "
        "8:currentVolumeAttributesClassName:*string "
        "9:modifyVolumeStatus:*ModifyVolumeStatus"
    ),
    "ReplicationControllerSpec": (
        "1:replicas:*int32 4:minReadySeconds:int32 2:selector:{string} "
        "3:template:*PodTemplateSpec"
    ),
    "ReplicationControllerStatus": (
        "1:replicas:int32 2:fullyLabeledReplicas:int32 4:readyReplicas:int32 "
        "5:availableReplicas:int32 3:observedGeneration:int64 "
        "6:conditions:[]ReplicationControllerCondition"
    ),
    "PodTemplateSpec": "1:metadata:ObjectMeta 2:spec:PodSpec",
    "EndpointSubset": (
        "1:addresses:[]EndpointAddress 2:notReadyAddresses:[]EndpointAddress "
        "3:ports:[]EndpointPort"
    ),
    "LimitRangeSpec": "1:limits:[]LimitRangeItem",
    "EventSource": "1:component:string 2:host:string",
    "EventSeries": "1:count:int32 2:lastObservedTime:MicroTime",
    "HorizontalPodAutoscalerSpec": (
        "1:scaleTargetRef:CrossVersionObjectReference 2:minReplicas:*int32 "
        "3:maxReplicas:int32 4:targetCPUUtilizationPercentage:*int32"
    ),
    "HorizontalPodAutoscalerStatus": (
        "1:observedGeneration:*int64 2:lastScaleTime:*Time "
        "3:currentReplicas:int32 4:desiredReplicas:int32 "
        "5:currentCPUUtilizationPercentage:*int32"
    ),
    "ScaleSpec": "1:replicas:int32",
    "ScaleStatus": "1:replicas:int32 2:selector:string",
    "CertificateSigningRequestSpec": (
        "1:request:bytes 7:signerName:string 8:expirationSeconds:*int32 "
        "5:usages:[]string 2:username:string 3:uid:string 4:groups:[]string "
        "6:extra:{ExtraValue}"
    ),
    "CertificateSigningRequestStatus": "1:conditions:[]CertificateSigningRequestCondition 2:certificate:bytes",
    "LeaseSpec": (
        "1:holderIdentity:*string 2:leaseDurationSeconds:*int32 3:acquireTime:*MicroTime "
        "4:renewTime:*MicroTime 5:leaseTransitions:*int32 6:strategy:*string "
        "7:preferredHolder:*string"
    ),
    "events.EventSeries": "1:count:int32 2:lastObservedTime:MicroTime",
    "Endpoint": (
        "1:addresses:[]string 2:conditions:EndpointConditions 3:hostname:*string "
        "4:targetRef:*ObjectReference 5:deprecatedTopology:{string} 6:nodeName:*string 7:zone:*string "
        "8:hints:*EndpointHints"
    ),
    "discovery.EndpointPort": "1:name:*string 2:protocol:*string 3:port:*int32 4:appProtocol:*string",
    "NetworkPolicySpec": (
        "1:podSelector:LabelSelector 2:ingress:[]NetworkPolicyIngressRule "
        "3:egress:[]NetworkPolicyEgressRule 4:policyTypes:[]string"
    ),
    "IngressClassSpec": "1:controller:string 2:parameters:*IngressClassParametersReference",
    "Preconditions": "1:uid:*string 2:resourceVersion:*string",
    "OwnerReference": (
        "5:apiVersion:string 1:kind:string 3:name:string 4:uid:string 6:controller:*bool "
        "7:blockOwnerDeletion:*bool"
    ),
    "ManagedFieldsEntry": (
        "1:manager:string 2:operation:string 3:apiVersion:string 4:time:*Time "
        "6:fieldsType:string 7:fieldsV1:*FieldsV1 8:subresource:string"
    ),
    "NamespaceCondition": (
        "1:type:string 2:status:string 4:lastTransitionTime:Time 5:reason:string "
        "6:message:string"
    ),
    "ServicePort": (
        "1:name:string 2:protocol:string 6:appProtocol:*string 3:port:int32 "
        "4:targetPort:IntOrString 5:nodePort:int32"
    ),
    "SessionAffinityConfig": "1:clientIP:*ClientIPConfig",
    "LoadBalancerStatus": "1:ingress:[]LoadBalancerIngress",
    "Condition": (
        "1:type:string 2:status:string 3:observedGeneration:int64 4:lastTransitionTime:Time "
        "5:reason:string 6:message:string"
    ),
    "Volume": "1:name:string 2:volumeSource:^VolumeSource",
    "Container": (
        "1:name:string 2:image:string 3:command:[]string 4:args:[]string 5:workingDir:string "
        "6:ports:[]ContainerPort 19:envFrom:[]EnvFromSource 7:env:[]EnvVar "
        "8:resources:ResourceRequirements 23:resizePolicy:[]ContainerResizePolicy "
        "24:restartPolicy:*string 25:restartPolicyRules:[]ContainerRestartRule "
        "9:volumeMounts:[]VolumeMount 21:volumeDevices:[]VolumeDevice 10:livenessProbe:*Probe "
        "11:readinessProbe:*Probe 22:startupProbe:*Probe 12:lifecycle:*Lifecycle "
        "13:terminationMessagePath:string 20:terminationMessagePolicy:string "
        "14:imagePullPolicy:string 15:securityContext:*SecurityContext 16:stdin:bool "
        "17:stdinOnce:bool 18:tty:bool"
    ),
    "EphemeralContainer": "1:ephemeralContainerCommon:^EphemeralContainerCommon 2:targetContainerName:string",
    "PodSecurityContext": (
        "1:seLinuxOptions:*SELinuxOptions 8:windowsOptions:*WindowsSecurityContextOptions "
        "2:runAsUser:*int64 6:runAsGroup:*int64 3:runAsNonRoot:*bool "
        "4:supplementalGroups:[]int64 12:supplementalGroupsPolicy:*string 5:fsGroup:*int64 "
        "7:sysctls:[]Sysctl 9:fsGroupChangePolicy:*string 10:seccompProfile:*SeccompProfile "
        "11:appArmorProfile:*AppArmorProfile 13:seLinuxChangePolicy:*string"
    ),
    "Affinity": "1:nodeAffinity:*NodeAffinity 2:podAffinity:*PodAffinity 3:podAntiAffinity:*PodAntiAffinity",
    "Toleration": "1:key:string 2:operator:string 3:value:string 4:effect:string 5:tolerationSeconds:*int64",
    "HostAlias": "1:ip:string 2:hostnames:[]string",
    "PodDNSConfig": "1:nameservers:[]string 2:searches:[]string 3:options:[]PodDNSConfigOption",
    "PodReadinessGate": "1:conditionType:string",
    "TopologySpreadConstraint": (
        "1:maxSkew:int32 2:topologyKey:string 3:whenUnsatisfiable:string "
        "4:labelSelector:*LabelSelector 5:minDomains:*int32 "
        "6:nodeAffinityPolicy:*string 7:nodeTaintsPolicy:*string "
        "8:matchLabelKeys:[]string"
    ),
    "PodOS": "1:name:string",
    "PodSchedulingGate": "1:name:string",
    "PodResourceClaim": "1:name:string 3:resourceClaimName:*string 4:resourceClaimTemplateName:*string",
    "ResourceRequirements": "1:limits:{Quantity} 2:requests:{Quantity} 3:claims:[]ResourceClaim",
    "PodSchedulingGroup": "1:podGroupName:*string",
    "PodCondition": (
        "1:type:string 7:observedGeneration:int64 2:status:string 3:lastProbeTime:Time "
        "4:lastTransitionTime:Time 5:reason:string 6:message:string"
    ),
    "HostIP": "1:ip:string",
    "PodIP": "1:ip:string",
    "ContainerStatus": (
        "1:name:string 2:state:ContainerState 3:lastState:ContainerState 4:ready:bool "
        "5:restartCount:int32 6:image:string 7:imageID:string 8:containerID:string "
        "9:started:*bool 10:allocatedResources:{Quantity} 11:resources:*ResourceRequirements "
        "12:volumeMounts:[]VolumeMountStatus 13:user:*ContainerUser "
        "14:allocatedResourcesStatus:[]ResourceStatus 15:stopSignal:*string"
    ),
    "PodResourceClaimStatus": "1:name:string 2:resourceClaimName:*string",
    "PodExtendedResourceClaimStatus": (
        "1:requestMappings:[]ContainerExtendedResourceRequest "
        "2:resourceClaimName:string"
    ),
    "NodeAllocatableResourceClaimStatus": (
        "1:resourceClaimName:string 2:containers:[]string "
        "3:resources:{Quantity}"
    ),
    "ScopeSelector": "1:matchExpressions:[]ScopedResourceSelectorRequirement",
    "LabelSelector": "1:matchLabels:{string} 2:matchExpressions:[]LabelSelectorRequirement",
    "DeploymentStrategy": "1:type:string 2:rollingUpdate:*RollingUpdateDeployment",
    "DeploymentCondition": (
        "1:type:string 2:status:string 6:lastUpdateTime:Time 7:lastTransitionTime:Time "
        "4:reason:string 5:message:string"
    ),
    "ReplicaSetCondition": (
        "1:type:string 2:status:string 3:lastTransitionTime:Time 4:reason:string "
        "5:message:string"
    ),
    "StatefulSetUpdateStrategy": "1:type:string 2:rollingUpdate:*RollingUpdateStatefulSetStrategy",
    "StatefulSetPersistentVolumeClaimRetentionPolicy": "1:whenDeleted:string 2:whenScaled:string",
    "StatefulSetOrdinals": "1:start:int32",
    "StatefulSetCondition": (
        "1:type:string 2:status:string 3:lastTransitionTime:Time 4:reason:string "
        "5:message:string"
    ),
    "DaemonSetUpdateStrategy": "1:type:string 2:rollingUpdate:*RollingUpdateDaemonSet",
    "DaemonSetCondition": (
        "1:type:string 2:status:string 3:lastTransitionTime:Time 4:reason:string "
        "5:message:string"
    ),
    "PodFailurePolicy": "1:rules:[]PodFailurePolicyRule",
    "SuccessPolicy": "1:rules:[]SuccessPolicyRule",
    "JobCondition": (
        "1:type:string 2:status:string 3:lastProbeTime:Time 4:lastTransitionTime:Time "
        "5:reason:string 6:message:string"
    ),
    "UncountedTerminatedPods": "1:succeeded:[]string 2:failed:[]string",
    "JobTemplateSpec": "1:metadata:ObjectMeta 2:spec:JobSpec",
    "IngressBackend": "4:service:*IngressServiceBackend 3:resource:*TypedLocalObjectReference",
    "IngressTLS": "1:hosts:[]string 2:secretName:string",
    "IngressRule": "1:host:string 2:ingressRuleValue:^IngressRuleValue",
    "IngressLoadBalancerStatus": "1:ingress:[]IngressLoadBalancerIngress",
    "ResourceAttributes": (
        "1:namespace:string 2:verb:string 3:group:string 4:version:string 5:resource:string "
        "6:subresource:string 7:name:string 8:fieldSelector:*FieldSelectorAttributes "
        "9:labelSelector:*LabelSelectorAttributes"
    ),
    "NonResourceAttributes": "1:path:string 2:verb:string",
    "ResourceRule": "1:verbs:[]string 2:apiGroups:[]string 3:resources:[]string 4:resourceNames:[]string",
    "NonResourceRule": "1:verbs:[]string 2:nonResourceURLs:[]string",
    "ExtraValue": "=1:items:[]string",
    "UserInfo": "1:username:string 2:uid:string 3:groups:[]string 4:extra:{ExtraValue}",
    "BoundObjectReference": "1:kind:string 2:apiVersion:string 3:name:string 4:uid:string",
    "VolumeResourceRequirements": "1:limits:{Quantity} 2:requests:{Quantity}",
    "TypedLocalObjectReference": "1:apiGroup:*string 2:kind:string 3:name:string",
    "TypedObjectReference": "1:apiGroup:*string 2:kind:string 3:name:string 4:namespace:*string",
    "PersistentVolumeClaimCondition": (
        "1:type:string 2:status:string 3:lastProbeTime:Time "
        "4:lastTransitionTime:Time 5:reason:string 6:message:string"
    ),
    "ModifyVolumeStatus": "1:targetVolumeAttributesClassName:string 2:status:string",
    "ReplicationControllerCondition": (
        "1:type:string 2:status:string 3:lastTransitionTime:Time 4:reason:string "
        "5:message:string"
    ),
    "EndpointAddress": "1:ip:string 3:hostname:string 4:nodeName:*string 2:targetRef:*ObjectReference",
    "EndpointPort": "1:name:string 2:port:int32 3:protocol:string 4:appProtocol:*string",
    "LimitRangeItem": (
        "1:type:string 2:max:{Quantity} 3:min:{Quantity} 4:default:{Quantity} "
        "5:defaultRequest:{Quantity} 6:maxLimitRequestRatio:{Quantity}"
    ),
    "CrossVersionObjectReference": "1:kind:string 2:name:string 3:apiVersion:string",
    "CertificateSigningRequestCondition": (
        "1:type:string 6:status:string 2:reason:string 3:message:string "
        "4:lastUpdateTime:Time 5:lastTransitionTime:Time"
    ),
    "EndpointConditions": "1:ready:*bool 2:serving:*bool 3:terminating:*bool",
    "EndpointHints": "1:forZones:[]ForZone 2:forNodes:[]ForNode",
    "NetworkPolicyIngressRule": "1:ports:[]NetworkPolicyPort 2:from:[]NetworkPolicyPeer",
    "NetworkPolicyEgressRule": "1:ports:[]NetworkPolicyPort 2:to:[]NetworkPolicyPeer",
    "IngressClassParametersReference": (
        "1:apiGroup:*string 2:kind:string 3:name:string 4:scope:*string "
        "5:namespace:*string"
    ),
    "ClientIPConfig": "1:timeoutSeconds:*int32",
    "LoadBalancerIngress": "1:ip:string 2:hostname:string 3:ipMode:*string 4:ports:[]PortStatus",
    "VolumeSource": (
        "1:hostPath:*HostPathVolumeSource 2:emptyDir:*EmptyDirVolumeSource "
        "3:gcePersistentDisk:*GCEPersistentDiskVolumeSource "
        "4:awsElasticBlockStore:*AWSElasticBlockStoreVolumeSource 5:gitRepo:*GitRepoVolumeSource "
        "6:secret:*SecretVolumeSource 7:nfs:*NFSVolumeSource 8:iscsi:*ISCSIVolumeSource "
        "9:glusterfs:*GlusterfsVolumeSource "
        "10:persistentVolumeClaim:*PersistentVolumeClaimVolumeSource 11:rbd:*RBDVolumeSource "
        "12:flexVolume:*FlexVolumeSource 13:cinder:*CinderVolumeSource "
        "14:cephfs:*CephFSVolumeSource 15:flocker:*FlockerVolumeSource "
        "16:downwardAPI:*DownwardAPIVolumeSource 17:fc:*FCVolumeSource "
        "18:azureFile:*AzureFileVolumeSource 19:configMap:*ConfigMapVolumeSource "
        "20:vsphereVolume:*VsphereVirtualDiskVolumeSource 21:quobyte:*QuobyteVolumeSource "
        "22:azureDisk:*AzureDiskVolumeSource "
        "23:photonPersistentDisk:*PhotonPersistentDiskVolumeSource "
        "26:projected:*ProjectedVolumeSource 24:portworxVolume:*PortworxVolumeSource "
        "25:scaleIO:*ScaleIOVolumeSource 27:storageos:*StorageOSVolumeSource "
        "28:csi:*CSIVolumeSource 29:ephemeral:*EphemeralVolumeSource 30:image:*ImageVolumeSource"
    ),
    "ContainerPort": "1:name:string 2:hostPort:int32 3:containerPort:int32 4:protocol:string 5:hostIP:string",
    "EnvFromSource": "1:prefix:string 2:configMapRef:*ConfigMapEnvSource 3:secretRef:*SecretEnvSource",
    "EnvVar": "1:name:string 2:value:string 3:valueFrom:*EnvVarSource",
    "ContainerResizePolicy": "1:resourceName:string 2:restartPolicy:string",
    "ContainerRestartRule": "1:action:string 2:exitCodes:*ContainerRestartRuleOnExitCodes",
    "VolumeMount": (
        "1:name:string 2:readOnly:bool 7:recursiveReadOnly:*string 3:mountPath:string "
        "4:subPath:string 5:mountPropagation:*string 6:subPathExpr:string"
    ),
    "VolumeDevice": "1:name:string 2:devicePath:string",
    "Probe": (
        "1:handler:^ProbeHandler 2:initialDelaySeconds:int32 3:timeoutSeconds:int32 4:periodSeconds:int32 "
        "5:successThreshold:int32 6:failureThreshold:int32 7:terminationGracePeriodSeconds:*int64"
    ),
    "Lifecycle": "1:postStart:*LifecycleHandler 2:preStop:*LifecycleHandler 3:stopSignal:*string",
    "SecurityContext": (
        "1:capabilities:*Capabilities 2:privileged:*bool 3:seLinuxOptions:*SELinuxOptions "
        "10:windowsOptions:*WindowsSecurityContextOptions 4:runAsUser:*int64 "
        "8:runAsGroup:*int64 5:runAsNonRoot:*bool 6:readOnlyRootFilesystem:*bool "
        "7:allowPrivilegeEscalation:*bool 9:procMount:*string 11:seccompProfile:*SeccompProfile "
        "12:appArmorProfile:*AppArmorProfile"
    ),
    "EphemeralContainerCommon": (
        "1:name:string 2:image:string 3:command:[]string 4:args:[]string "
        "5:workingDir:string 6:ports:[]ContainerPort 19:envFrom:[]EnvFromSource "
        "7:env:[]EnvVar 8:resources:ResourceRequirements "
        "23:resizePolicy:[]ContainerResizePolicy 24:restartPolicy:*string "
        "25:restartPolicyRules:[]ContainerRestartRule 9:volumeMounts:[]VolumeMount "
        "21:volumeDevices:[]VolumeDevice 10:livenessProbe:*Probe "
        "11:readinessProbe:*Probe 22:startupProbe:*Probe 12:lifecycle:*Lifecycle "
        "13:terminationMessagePath:string 20:terminationMessagePolicy:string "
        "14:imagePullPolicy:string 15:securityContext:*SecurityContext 16:stdin:bool "
        "17:stdinOnce:bool 18:tty:bool"
    ),
    "SELinuxOptions": "1:user:string 2:role:string 3:type:string 4:level:string",
    "WindowsSecurityContextOptions": (
        "1:gmsaCredentialSpecName:*string 2:gmsaCredentialSpec:*string "
        "3:runAsUserName:*string 4:hostProcess:*bool"
    ),
    "Sysctl": "1:name:string 2:value:string",
    "SeccompProfile": "1:type:string 2:localhostProfile:*string",
    "AppArmorProfile": "1:type:string 2:localhostProfile:*string",
    "NodeAffinity": (
        "1:requiredDuringSchedulingIgnoredDuringExecution:*NodeSelector "
        "2:preferredDuringSchedulingIgnoredDuringExecution:[]PreferredSchedulingTerm"
    ),
    "PodAffinity": (
        "1:requiredDuringSchedulingIgnoredDuringExecution:[]PodAffinityTerm "
        "2:preferredDuringSchedulingIgnoredDuringExecution:[]WeightedPodAffinityTerm"
    ),
    "PodAntiAffinity": (
        "1:requiredDuringSchedulingIgnoredDuringExecution:[]PodAffinityTerm "
        "2:preferredDuringSchedulingIgnoredDuringExecution:[]WeightedPodAffinityTerm"
    ),
    "PodDNSConfigOption": "1:name:string 2:value:*string",
    "ResourceClaim": "1:name:string 2:request:string",
    "ContainerState": (
        "1:waiting:*ContainerStateWaiting 2:running:*ContainerStateRunning "
        "3:terminated:*ContainerStateTerminated"
    ),
    "VolumeMountStatus": (
        "1:name:string 2:mountPath:string 3:readOnly:bool 4:recursiveReadOnly:*string "
        "5:volumeStatus:*VolumeStatus"
    ),
    "ContainerUser": "1:linux:*LinuxContainerUser",
    "ResourceStatus": "1:name:string 2:resources:[]ResourceHealth",
    "ContainerExtendedResourceRequest": "1:containerName:string 2:resourceName:string 3:requestName:string",
    "ScopedResourceSelectorRequirement": "1:scopeName:string 2:operator:string 3:values:[]string",
    "LabelSelectorRequirement": "1:key:string 2:operator:string 3:values:[]string",
    "RollingUpdateDeployment": "1:maxUnavailable:*IntOrString 2:maxSurge:*IntOrString",
    "RollingUpdateStatefulSetStrategy": "1:partition:*int32 2:maxUnavailable:*IntOrString",
    "RollingUpdateDaemonSet": "1:maxUnavailable:*IntOrString 2:maxSurge:*IntOrString",
    "PodFailurePolicyRule": (
        "1:action:string 2:onExitCodes:*PodFailurePolicyOnExitCodesRequirement "
        "3:onPodConditions:[]PodFailurePolicyOnPodConditionsPattern"
    ),
    "SuccessPolicyRule": "1:succeededIndexes:*string 2:succeededCount:*int32",
    "IngressServiceBackend": "1:name:string 2:port:ServiceBackendPort",
    "IngressRuleValue": "1:http:*HTTPIngressRuleValue",
    "IngressLoadBalancerIngress": "1:ip:string 2:hostname:string 4:ports:[]IngressPortStatus",
    "FieldSelectorAttributes": "1:rawSelector:string 2:requirements:[]FieldSelectorRequirement",
    "LabelSelectorAttributes": "1:rawSelector:string 2:requirements:[]LabelSelectorRequirement",
    "ForZone": "1:name:string",
    "ForNode": "1:name:string",
    "NetworkPolicyPort": "1:protocol:*string 2:port:*IntOrString 3:endPort:*int32",
    "NetworkPolicyPeer": "1:podSelector:*LabelSelector 2:namespaceSelector:*LabelSelector 3:ipBlock:*IPBlock",
    "PortStatus": "1:port:int32 2:protocol:string 3:error:*string",
    "HostPathVolumeSource": "1:path:string 2:type:*string",
    "EmptyDirVolumeSource": "1:medium:string 2:sizeLimit:*Quantity",
    "GCEPersistentDiskVolumeSource": "1:pdName:string 2:fsType:string 3:partition:int32 4:readOnly:bool",
    "AWSElasticBlockStoreVolumeSource": "1:volumeID:string 2:fsType:string 3:partition:int32 4:readOnly:bool",
    "GitRepoVolumeSource": "1:repository:string 2:revision:string 3:directory:string",
    "SecretVolumeSource": "1:secretName:string 2:items:[]KeyToPath 3:defaultMode:*int32 4:optional:*bool",
    "NFSVolumeSource": "1:server:string 2:path:string 3:readOnly:bool",
    "ISCSIVolumeSource": (
        "1:targetPortal:string 2:iqn:string 3:lun:int32 4:iscsiInterface:string "
        "5:fsType:string 6:readOnly:bool 7:portals:[]string 8:chapAuthDiscovery:bool "
        "11:chapAuthSession:bool 10:secretRef:*LocalObjectReference 12:initiatorName:*string"
    ),
    "GlusterfsVolumeSource": "1:endpoints:string 2:path:string 3:readOnly:bool",
    "PersistentVolumeClaimVolumeSource": "1:claimName:string 2:readOnly:bool",
    "RBDVolumeSource": (
        "1:monitors:[]string 2:image:string 3:fsType:string 4:pool:string 5:user:string "
        "6:keyring:string 7:secretRef:*LocalObjectReference 8:readOnly:bool"
    ),
    "FlexVolumeSource": (
        "1:driver:string 2:fsType:string 3:secretRef:*LocalObjectReference 4:readOnly:bool "
        "5:options:{string}"
    ),
    "CinderVolumeSource": "1:volumeID:string 2:fsType:string 3:readOnly:bool 4:secretRef:*LocalObjectReference",
    "CephFSVolumeSource": (
        "1:monitors:[]string 2:path:string 3:user:string 4:secretFile:string "
        "5:secretRef:*LocalObjectReference 6:readOnly:bool"
    ),
    "FlockerVolumeSource": "1:datasetName:string 2:datasetUUID:string",
    "DownwardAPIVolumeSource": "1:items:[]DownwardAPIVolumeFile 2:defaultMode:*int32",
    "FCVolumeSource": "1:targetWWNs:[]string 2:lun:*int32 3:fsType:string 4:readOnly:bool 5:wwids:[]string",
    "AzureFileVolumeSource": "1:secretName:string 2:shareName:string 3:readOnly:bool",
    "ConfigMapVolumeSource": (
        "1:localObjectReference:^LocalObjectReference 2:items:[]KeyToPath "
        "3:defaultMode:*int32 4:optional:*bool"
    ),
    "VsphereVirtualDiskVolumeSource": (
        "1:volumePath:string 2:fsType:string 3:storagePolicyName:string "
        "4:storagePolicyID:string"
    ),
    "QuobyteVolumeSource": (
        "1:registry:string 2:volume:string 3:readOnly:bool 4:user:string 5:group:string "
        "6:tenant:string"
    ),
    "AzureDiskVolumeSource": (
        "1:diskName:string 2:diskURI:string 3:cachingMode:*string 4:fsType:*string "
        "5:readOnly:*bool 6:kind:*string"
    ),
    "PhotonPersistentDiskVolumeSource": "1:pdID:string 2:fsType:string",
    "ProjectedVolumeSource": "1:sources:[]VolumeProjection 2:defaultMode:*int32",
    "PortworxVolumeSource": "1:volumeID:string 2:fsType:string 3:readOnly:bool",
    "ScaleIOVolumeSource": (
        "1:gateway:string 2:system:string 3:secretRef:*LocalObjectReference "
        "4:sslEnabled:bool 5:protectionDomain:string 6:storagePool:string "
        "7:storageMode:string 8:volumeName:string 9:fsType:string 10:readOnly:bool"
    ),
    "StorageOSVolumeSource": (
        "1:volumeName:string 2:volumeNamespace:string 3:fsType:string 4:readOnly:bool "
        "5:secretRef:*LocalObjectReference"
    ),
    "CSIVolumeSource": (
        "1:driver:string 2:readOnly:*bool 3:fsType:*string 4:volumeAttributes:{string} "
        "5:nodePublishSecretRef:*LocalObjectReference"
    ),
    "EphemeralVolumeSource": "1:volumeClaimTemplate:*PersistentVolumeClaimTemplate",
    "ImageVolumeSource": "1:reference:string 2:pullPolicy:string",
    "ConfigMapEnvSource": "1:localObjectReference:^LocalObjectReference 2:optional:*bool",
    "SecretEnvSource": "1:localObjectReference:^LocalObjectReference 2:optional:*bool",
    "EnvVarSource": (
        "1:fieldRef:*ObjectFieldSelector 2:resourceFieldRef:*ResourceFieldSelector "
        "3:configMapKeyRef:*ConfigMapKeySelector 4:secretKeyRef:*SecretKeySelector "
        "5:fileKeyRef:*FileKeySelector"
    ),
    "ContainerRestartRuleOnExitCodes": "1:operator:string 2:values:[]int32",
    "ProbeHandler": (
        "1:exec:*ExecAction 2:httpGet:*HTTPGetAction 3:tcpSocket:*TCPSocketAction "
        "4:grpc:*GRPCAction"
    ),
    "LifecycleHandler": (
        "1:exec:*ExecAction 2:httpGet:*HTTPGetAction 3:tcpSocket:*TCPSocketAction "
        "4:sleep:*SleepAction"
    ),
    "Capabilities": "1:add:[]string 2:drop:[]string",
    "NodeSelector": "1:nodeSelectorTerms:[]NodeSelectorTerm",
    "PreferredSchedulingTerm": "1:weight:int32 2:preference:NodeSelectorTerm",
    "PodAffinityTerm": (
        "1:labelSelector:*LabelSelector 2:namespaces:[]string 3:topologyKey:string "
        "4:namespaceSelector:*LabelSelector 5:matchLabelKeys:[]string "
        "6:mismatchLabelKeys:[]string"
    ),
    "WeightedPodAffinityTerm": "1:weight:int32 2:podAffinityTerm:PodAffinityTerm",
    "ContainerStateWaiting": "1:reason:string 2:message:string",
    "ContainerStateRunning": "1:startedAt:Time",
    "ContainerStateTerminated": (
        "1:exitCode:int32 2:signal:int32 3:reason:string 4:message:string "
        "5:startedAt:Time 6:finishedAt:Time 7:containerID:string"
    ),
    "VolumeStatus": "1:image:*ImageVolumeStatus",
    "LinuxContainerUser": "1:uid:int64 2:gid:int64 3:supplementalGroups:[]int64",
    "ResourceHealth": "1:resourceID:string 2:health:string 6:message:*string",
    "PodFailurePolicyOnExitCodesRequirement": "1:containerName:*string 2:operator:string 3:values:[]int32",
    "PodFailurePolicyOnPodConditionsPattern": "1:type:string 2:status:string",
    "ServiceBackendPort": "1:name:string 2:number:int32",
    "HTTPIngressRuleValue": "1:paths:[]HTTPIngressPath",
    "IngressPortStatus": "1:port:int32 2:protocol:string 3:error:*string",
    "FieldSelectorRequirement": "1:key:string 2:operator:string 3:values:[]string",
    "IPBlock": "1:cidr:string 2:except:[]string",
    "KeyToPath": "1:key:string 2:path:string 3:mode:*int32",
    "DownwardAPIVolumeFile": (
        "1:path:string 2:fieldRef:*ObjectFieldSelector "
        "3:resourceFieldRef:*ResourceFieldSelector 4:mode:*int32"
    ),
    "VolumeProjection": (
        "1:secret:*SecretProjection 2:downwardAPI:*DownwardAPIProjection "
        "3:configMap:*ConfigMapProjection 4:serviceAccountToken:*ServiceAccountTokenProjection "
        "5:clusterTrustBundle:*ClusterTrustBundleProjection "
        "6:podCertificate:*PodCertificateProjection"
    ),
    "PersistentVolumeClaimTemplate": "1:metadata:ObjectMeta 2:spec:PersistentVolumeClaimSpec",
    "ObjectFieldSelector": "1:apiVersion:string 2:fieldPath:string",
    "ResourceFieldSelector": "1:containerName:string 2:resource:string 3:divisor:Quantity",
    "ConfigMapKeySelector": "1:localObjectReference:^LocalObjectReference 2:key:string 3:optional:*bool",
    "SecretKeySelector": "1:localObjectReference:^LocalObjectReference 2:key:string 3:optional:*bool",
    "FileKeySelector": "1:volumeName:string 2:path:string 3:key:string 4:optional:*bool",
    "ExecAction": "1:command:[]string",
    "HTTPGetAction": (
        "1:path:string 2:port:IntOrString 3:host:string 4:scheme:string "
        "5:httpHeaders:[]HTTPHeader"
    ),
    "TCPSocketAction": "1:port:IntOrString 2:host:string",
    "GRPCAction": "1:port:int32 2:service:*string",
    "SleepAction": "1:seconds:int64",
    "NodeSelectorTerm": "1:matchExpressions:[]NodeSelectorRequirement 2:matchFields:[]NodeSelectorRequirement",
    "ImageVolumeStatus": "1:imageRef:string",
    "HTTPIngressPath": "1:path:string 3:pathType:*string 2:backend:IngressBackend",
    "SecretProjection": "1:localObjectReference:^LocalObjectReference 2:items:[]KeyToPath 4:optional:*bool",
    "DownwardAPIProjection": "1:items:[]DownwardAPIVolumeFile",
    "ConfigMapProjection": "1:localObjectReference:^LocalObjectReference 2:items:[]KeyToPath 4:optional:*bool",
    "ServiceAccountTokenProjection": "1:audience:string 2:expirationSeconds:*int64 3:path:string",
    "ClusterTrustBundleProjection": (
        "1:name:*string 2:signerName:*string 3:labelSelector:*LabelSelector "
        "5:optional:*bool 4:path:string"
    ),
    "PodCertificateProjection": (
        "1:signerName:string 2:keyType:string 3:maxExpirationSeconds:*int32 "
        "4:credentialBundlePath:string 5:keyPath:string 6:certificateChainPath:string "
        "7:userAnnotations:{string}"
    ),
    "HTTPHeader": "1:name:string 2:value:string",
    "NodeSelectorRequirement": "1:key:string 2:operator:string 3:values:[]string",
})

# apiVersion → the kinds decoded there; ``Kind=message`` when the message name differs.
_KIND_TABLE: Final[Mapping[str, str]] = MappingProxyType({
    "v1": (
        "Binding ConfigMap Endpoints Event LimitRange Namespace PersistentVolumeClaim Pod PodTemplate "
        "ReplicationController ResourceQuota Secret Service ServiceAccount DeleteOptions"
    ),
    "apps/v1": "ControllerRevision DaemonSet Deployment ReplicaSet StatefulSet",
    "authentication.k8s.io/v1": "SelfSubjectReview TokenRequest TokenReview",
    "authorization.k8s.io/v1": "SelfSubjectAccessReview SelfSubjectRulesReview SubjectAccessReview",
    "autoscaling/v1": "HorizontalPodAutoscaler Scale",
    "batch/v1": "CronJob Job",
    "certificates.k8s.io/v1": "CertificateSigningRequest",
    "coordination.k8s.io/v1": "Lease",
    "discovery.k8s.io/v1": "EndpointSlice",
    "events.k8s.io/v1": "Event=events.Event",
    "meta.k8s.io/v1": "DeleteOptions",
    "networking.k8s.io/v1": "Ingress IngressClass NetworkPolicy",
    "policy/v1": "Eviction PodDisruptionBudget",
    "rbac.authorization.k8s.io/v1": "ClusterRole ClusterRoleBinding Role RoleBinding",
    "scheduling.k8s.io/v1": "PriorityClass",
})
# client-go registers the option types in every group version, so a typed client's DELETE body
# is a DeleteOptions stamped with the resource's own apiVersion (``apps/v1``, ``batch/v1``, ...).
_ANY_VERSION_KINDS: Final = frozenset({"DeleteOptions"})


# ---------------------------------------------------------------------------------------------
# Parsed schema (built once at import, read-only afterwards)


@dataclass(frozen=True, slots=True)
class _Field:
    number: int
    name: str  # JSON name (for ``^`` fields: the proto name, unused in output)
    type: str  # scalar, special or message name
    shape: str  # "" plain, "*" pointer, "[]" repeated, "{}" map, "^" inline


@dataclass(frozen=True, slots=True)
class _Message:
    name: str
    fields: tuple[_Field, ...]
    by_number: Mapping[int, _Field]
    unwrap: bool  # JSON form is the value of the only field


def _parse_table(table: Mapping[str, str]) -> Mapping[str, _Message]:
    messages: dict[str, _Message] = {}
    for name, spec in table.items():
        unwrap = spec.startswith("=")
        fields = []
        for token in spec.lstrip("=").split():
            number, json_name, type_text = token.split(":")
            shape = ""
            for prefix in ("[]", "*", "^"):
                if type_text.startswith(prefix):
                    shape, type_text = prefix, type_text[len(prefix):]
            if type_text.startswith("{") and type_text.endswith("}"):
                shape, type_text = "{}", type_text[1:-1]
            fields.append(_Field(int(number), json_name, type_text, shape))
        by_number = {f.number: f for f in fields}
        if len(by_number) != len(fields) or (unwrap and len(fields) != 1):
            raise AssertionError(f"protobuf schema: bad entry for {name}")
        messages[name] = _Message(name, tuple(fields), MappingProxyType(by_number), unwrap)
    for message in messages.values():
        for f in message.fields:
            if f.type not in _SCALARS and f.type not in _SPECIALS and f.type not in messages:
                raise AssertionError(f"protobuf schema: {message.name}.{f.name} has unknown type {f.type}")
            if f.shape == "^" and (f.type not in messages or messages[f.type].unwrap):
                raise AssertionError(f"protobuf schema: {message.name}.{f.name} cannot be inlined")
    return MappingProxyType(messages)


def _parse_kinds(table: Mapping[str, str], messages: Mapping[str, _Message]) -> Mapping[tuple[str, str], str]:
    kinds: dict[tuple[str, str], str] = {}
    for api_version, text in table.items():
        for token in text.split():
            kind, _, message = token.partition("=")
            if (message or kind) not in messages:
                raise AssertionError(f"protobuf schema: no message for {api_version}/{kind}")
            kinds[(api_version, kind)] = message or kind
    return MappingProxyType(kinds)


_MESSAGES: Final = _parse_table(_MESSAGE_TABLE)
_KINDS: Final = _parse_kinds(_KIND_TABLE, _MESSAGES)

SUPPORTED_KINDS: Final[frozenset[tuple[str, str]]] = frozenset(_KINDS)
"""(apiVersion, kind) pairs ``decode_object`` understands (DeleteOptions: in any apiVersion)."""


def is_supported(api_version: str, kind: str) -> bool:
    return (api_version, kind) in _KINDS or (kind in _ANY_VERSION_KINDS and bool(api_version))


def _message_for(api_version: str, kind: str) -> str:
    message = _KINDS.get((api_version, kind))
    if message is None and kind in _ANY_VERSION_KINDS and api_version:
        message = kind
    if message is None:
        raise UnsupportedKindError(f"protobuf decoding of {api_version}/{kind} is not supported")
    return message


# ---------------------------------------------------------------------------------------------
# Wire format

_VARINT: Final = 0
_I64: Final = 1
_LEN: Final = 2
_I32: Final = 5
_WIRE_NAMES: Final = MappingProxyType({0: "varint", 1: "64-bit", 2: "length-delimited", 3: "start-group",
                                       4: "end-group", 5: "32-bit"})
_SCALAR_WIRE: Final = MappingProxyType({"int32": _VARINT, "int64": _VARINT, "bool": _VARINT, "double": _I64})
_MAX_FIELD_NUMBER: Final = (1 << 29) - 1
_MASK64: Final = (1 << 64) - 1
# The table has no cycles and nests at most 13 messages deep, but a RawExtension may carry a whole
# protobuf object (which may carry another ...): bound the nesting so hostile input cannot exhaust
# the Python stack.
_MAX_DEPTH: Final = 64
# Go's Time and MicroTime cover years 1..9999 (RFC 3339); seconds are relative to the Unix epoch.
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MIN_SECONDS: Final = -62135596800  # 0001-01-01T00:00:00Z
_MAX_SECONDS: Final = 253402300799  # 9999-12-31T23:59:59Z

_Fields = dict[int, list[tuple[int, Any]]]


def _read_varint(data: memoryview, pos: int, where: str) -> tuple[int, int]:
    result = 0
    shift = 0
    end = len(data)
    while True:
        if pos >= end:
            raise ValueError(f"{where}: truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result & _MASK64, pos
        shift += 7
        if shift >= 70:
            raise ValueError(f"{where}: varint longer than 10 bytes")


def _scan(data: memoryview, where: str) -> _Fields:
    """Split one message into ``{field number: [(wire type, value), ...]}`` in wire order.

    Values are ints for varints and memoryviews (no copies) for everything else.
    """
    fields: _Fields = {}
    pos = 0
    end = len(data)
    while pos < end:
        key, pos = _read_varint(data, pos, where)
        number, wire = key >> 3, key & 7
        if not 0 < number <= _MAX_FIELD_NUMBER:
            raise ValueError(f"{where}: invalid field number {number}")
        value: Any
        if wire == _VARINT:
            value, pos = _read_varint(data, pos, where)
        elif wire == _LEN:
            length, pos = _read_varint(data, pos, where)
            if length > end - pos:
                raise ValueError(f"{where}: field {number} is {length} bytes long but only {end - pos} remain")
            value = data[pos:pos + length]
            pos += length
        elif wire in (_I64, _I32):
            size = 8 if wire == _I64 else 4
            if size > end - pos:
                raise ValueError(f"{where}: field {number} is truncated")
            value = data[pos:pos + size]
            pos += size
        else:
            name = _WIRE_NAMES.get(wire, "invalid")
            raise ValueError(f"{where}: field {number} uses unsupported wire type {wire} ({name})")
        fields.setdefault(number, []).append((wire, value))
    return fields


def _expect(wire: int, expected: int, where: str) -> None:
    if wire != expected:
        raise ValueError(f"{where}: wire type {_WIRE_NAMES.get(wire, wire)}, expected {_WIRE_NAMES[expected]}")


def _last(fields: _Fields, number: int, wire: int, where: str) -> Any:
    """The last occurrence of a singular scalar field (protobuf: last one wins), or None."""
    occurrences = fields.get(number)
    if not occurrences:
        return None
    for got, _ in occurrences:
        _expect(got, wire, where)
    return occurrences[-1][1]


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _text(value: memoryview) -> str:
    # Go does not check UTF-8 when unmarshalling and its JSON encoder writes U+FFFD instead.
    return str(value, "utf-8", "replace")


# ---------------------------------------------------------------------------------------------
# Special types


def _time(data: memoryview, where: str, *, micro: bool) -> str | None:
    fields = _scan(data, where)
    seconds = _signed(_last(fields, 1, _VARINT, f"{where}.seconds") or 0, 64)
    nanos = _signed(_last(fields, 2, _VARINT, f"{where}.nanos") or 0, 32)
    if seconds == 0 and nanos == 0:
        return None  # the zero Time: ``null`` in JSON, never 1970-01-01
    if not _MIN_SECONDS <= seconds <= _MAX_SECONDS:
        raise ValueError(f"{where}: timestamp {seconds}s is out of range")
    moment = _EPOCH + timedelta(seconds=seconds)
    text = (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
            f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}")
    if not micro:
        # metav1.Time is seconds precision in JSON, and Go ignores nanos when unmarshalling it.
        return f"{text}Z"
    if not 0 <= nanos < 1_000_000_000:
        raise ValueError(f"{where}: nanos {nanos} is out of range")
    return f"{text}.{nanos // 1000:06d}Z"  # MicroTime keeps microseconds


def _int_or_string(data: memoryview, where: str) -> int | str:
    fields = _scan(data, where)
    kind = _signed(_last(fields, 1, _VARINT, f"{where}.type") or 0, 64)
    if kind == 0:
        return _signed(_last(fields, 2, _VARINT, f"{where}.intVal") or 0, 32)
    if kind == 1:
        raw = _last(fields, 3, _LEN, f"{where}.strVal")
        return _text(raw) if raw is not None else ""
    raise ValueError(f"{where}: IntOrString type {kind} is neither 0 (int) nor 1 (string)")


def _quantity(data: memoryview, where: str) -> str:
    raw = _last(_scan(data, where), 1, _LEN, f"{where}.string")
    # An empty message is Go's zero Quantity, which prints as "0".
    return _text(raw) if raw is not None else "0"


def _raw_json(data: memoryview, where: str, depth: int) -> Any:
    raw = _last(_scan(data, where), 1, _LEN, f"{where}.raw")
    if raw is None or len(raw) == 0:
        return None
    if raw[:len(MAGIC)] == MAGIC:  # a nested protobuf object (RawExtension only)
        return _decode_object(raw, None, None, depth + 1)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ValueError(f"{where}: embedded object is neither JSON nor Kubernetes protobuf") from None


# ---------------------------------------------------------------------------------------------
# Generic decoding


def _decode_one(type_name: str, wire: int, value: Any, where: str, depth: int) -> Any:
    """One occurrence of a value of ``type_name`` (a singular field, list element or map value)."""
    if type_name == "string":
        _expect(wire, _LEN, where)
        return _text(value)
    if type_name == "bytes":
        _expect(wire, _LEN, where)
        return base64.b64encode(value).decode("ascii")  # Go's JSON form of []byte
    if type_name in ("int32", "int64", "bool"):
        _expect(wire, _VARINT, where)
        if type_name == "bool":
            return value != 0
        return _signed(value, 32 if type_name == "int32" else 64)
    if type_name == "double":
        _expect(wire, _I64, where)
        number = struct.unpack("<d", value)[0]
        if not math.isfinite(number):
            raise ValueError(f"{where}: {number} cannot be represented in JSON")
        return number
    _expect(wire, _LEN, where)
    if depth >= _MAX_DEPTH:
        raise ValueError(f"{where}: messages nested more than {_MAX_DEPTH} deep")
    if type_name in ("Time", "MicroTime"):
        return _time(value, where, micro=type_name == "MicroTime")
    if type_name == "IntOrString":
        return _int_or_string(value, where)
    if type_name == "Quantity":
        return _quantity(value, where)
    if type_name in ("RawExtension", "FieldsV1"):
        return _raw_json(value, where, depth)
    return _decode_message(_MESSAGES[type_name], value, where, depth + 1)


def _unpack(type_name: str, occurrences: list[tuple[int, Any]], where: str) -> list[tuple[int, Any]]:
    """Expand packed encodings of repeated numeric fields into one (wire, value) per element."""
    if type_name not in ("int32", "int64", "bool", "double"):
        return occurrences
    expanded: list[tuple[int, Any]] = []
    for wire, value in occurrences:
        if wire != _LEN:
            expanded.append((wire, value))
        elif type_name == "double":
            if len(value) % 8:
                raise ValueError(f"{where}: packed doubles are not a multiple of 8 bytes")
            expanded.extend((_I64, value[i:i + 8]) for i in range(0, len(value), 8))
        else:
            pos = 0
            while pos < len(value):
                item, pos = _read_varint(value, pos, where)
                expanded.append((_VARINT, item))
    return expanded


def _decode_map(f: _Field, occurrences: list[tuple[int, Any]], where: str, depth: int) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for wire, entry in occurrences:
        _expect(wire, _LEN, where)
        entry_fields = _scan(entry, where)
        raw_key = _last(entry_fields, 1, _LEN, f"{where} key")
        key = _text(raw_key) if raw_key is not None else ""
        values = entry_fields.get(2)
        item = f"{where}[{key!r}]"
        if values:
            # A message value may be split over several occurrences; protobuf merges them.
            wire, value = values[-1]
            if f.type not in _SCALARS and all(w == _LEN for w, _ in values):
                value = memoryview(b"".join(v for _, v in values))
            result[key] = _decode_one(f.type, wire, value, item, depth)
        else:
            # Absent value: Go's zero value of the type ("" for strings, "0" for a Quantity, ...).
            result[key] = _decode_one(f.type, _LEN, memoryview(b""), item, depth)
    return result


def _is_zero(value: Any, type_name: str) -> bool:
    if value is None or value == "" or value is False or value == {} or value == []:
        return True
    if type(value) in (int, float) and value == 0:
        return True
    return type_name == "Quantity" and value == "0"


def _decode_message(message: _Message, data: memoryview, where: str, depth: int) -> Any:
    fields = _scan(data, where)
    result: dict[str, Any] = {}
    for f in message.fields:
        occurrences = fields.get(f.number)
        if not occurrences:
            continue
        path = f"{where}.{f.name}"
        if f.shape == "{}":
            value: Any = _decode_map(f, occurrences, path, depth)
        elif f.shape == "[]":
            value = [_decode_one(f.type, wire, item, f"{path}[{i}]", depth)
                     for i, (wire, item) in enumerate(_unpack(f.type, occurrences, path))]
        else:
            wire, value = occurrences[-1]  # singular scalar: the last occurrence wins
            for got, _ in occurrences[:-1]:
                _expect(got, _SCALAR_WIRE.get(f.type, _LEN), path)
            if f.type not in _SCALARS:
                # Singular message: protobuf merges every occurrence, which is what decoding
                # their concatenation does.
                for got, _ in occurrences:
                    _expect(got, _LEN, path)
                if len(occurrences) > 1:
                    value = memoryview(b"".join(v for _, v in occurrences))
            value = _decode_one(f.type, wire, value, path, depth)
            if f.shape == "^":
                result.update(value)
                continue
            if value is None or (f.shape != "*" and _is_zero(value, f.type)):
                continue
        if f.shape in ("{}", "[]") and not value and not message.unwrap:
            continue
        result[f.name] = value
    if message.unwrap:
        return result.get(message.fields[0].name, [])
    return result


def _decode_object(data: memoryview, api_version: str | None, kind: str | None, depth: int) -> dict[str, Any]:
    if data[:len(MAGIC)] != MAGIC:
        raise ValueError("not a Kubernetes protobuf body: it does not start with the 'k8s\\x00' magic")
    envelope = _scan(data[len(MAGIC):], "runtime.Unknown")
    body_api_version = body_kind = ""
    type_meta = _last(envelope, 1, _LEN, "runtime.Unknown.typeMeta")
    if type_meta is not None:
        meta_fields = _scan(type_meta, "runtime.Unknown.typeMeta")
        raw_api_version = _last(meta_fields, 1, _LEN, "runtime.Unknown.typeMeta.apiVersion")
        raw_kind = _last(meta_fields, 2, _LEN, "runtime.Unknown.typeMeta.kind")
        body_api_version = _text(raw_api_version) if raw_api_version is not None else ""
        body_kind = _text(raw_kind) if raw_kind is not None else ""
    raw = _last(envelope, 2, _LEN, "runtime.Unknown.raw")
    for number, label in ((3, "contentEncoding"), (4, "contentType")):
        value = _last(envelope, number, _LEN, f"runtime.Unknown.{label}")
        text = _text(value) if value is not None else ""
        if text and not (number == 4 and text == CONTENT_TYPE):
            raise ValueError(f"unsupported {label} {text!r} in a protobuf body")
    final_api_version = body_api_version or api_version or ""
    final_kind = body_kind or kind or ""
    if not final_api_version or not final_kind:
        raise ValueError("protobuf body has no apiVersion/kind in its TypeMeta")
    message = _MESSAGES[_message_for(final_api_version, final_kind)]
    obj: dict[str, Any] = {"apiVersion": final_api_version, "kind": final_kind}
    if raw is not None:
        obj.update(_decode_message(message, raw, final_kind, depth + 1))
    return obj


def decode_object(body: bytes | bytearray | memoryview, *, api_version: str | None = None,
                  kind: str | None = None) -> dict[str, Any]:
    """Decode a ``application/vnd.kubernetes.protobuf`` request body into a JSON-shaped dict.

    The result always carries ``apiVersion`` and ``kind``: those of the body's TypeMeta, or, for
    the parts the body leaves empty, ``api_version`` / ``kind`` (what the URL says to expect).
    The body's own TypeMeta wins; checking it against the URL is the caller's job, as for JSON.

    Raises ``UnsupportedKindError`` (a ``ValueError``) for a kind this module cannot decode and
    ``ValueError`` for anything malformed.
    """
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise TypeError(f"protobuf body must be bytes, not {type(body).__name__}")
    return _decode_object(memoryview(body).cast("B"), api_version, kind, 0)
