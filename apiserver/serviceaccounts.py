"""Service-account tokens: signed JWTs issued through TokenRequest and checked on every request.

A token is an ES256-signed JWT (the key pair comes from ``--service-account-signing-key-file``, which
every API server replica shares) whose claims name the service account and optionally the pod it
is bound to. A token is accepted only if its signature verifies with our key and algorithm (never
``none``, never a symmetric algorithm), it has not expired, its audience is ours, and the service
account (and bound pod) still exist with the same uid — deleting either revokes the token.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from apimachinery import errors
from apimachinery.errors import StatusError
from apimachinery.registry import Registry

from .auth import UserInfo
from .storage import Storage

ISSUER = "https://kubernetes.default.svc.cluster.local"
DEFAULT_AUDIENCES = (ISSUER,)
LEEWAY = 60


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_private_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("the service-account signing key must be an EC (P-256) private key")
    return key


def generate_private_key_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class TokenIssuer:
    def __init__(self, key: ec.EllipticCurvePrivateKey, *, issuer: str = ISSUER) -> None:
        self.key = key
        self.public = key.public_key()
        self.issuer = issuer
        der = self.public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.kid = _b64url(_sha256(der))[:32]

    def issue(self, sa: dict[str, Any], *, audiences: list[str], expiration_seconds: int,
              bound: dict[str, Any] | None = None) -> tuple[str, int]:
        now = int(time.time())
        exp = now + expiration_seconds
        meta = sa["metadata"]
        k8s: dict[str, Any] = {"namespace": meta["namespace"],
                               "serviceaccount": {"name": meta["name"], "uid": meta["uid"]}}
        if bound is not None:
            k8s[bound["kind"].lower()] = {"name": bound["name"], "uid": bound["uid"]}
        claims = {"aud": audiences, "exp": exp, "iat": now, "nbf": now, "iss": self.issuer,
                  "sub": f"system:serviceaccount:{meta['namespace']}:{meta['name']}", "kubernetes.io": k8s}
        header = {"alg": "ES256", "kid": self.kid, "typ": "JWT"}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        der = self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return f"{signing_input}.{_b64url(signature)}", exp

    def verify(self, token: str, *, audiences: tuple[str, ...] = DEFAULT_AUDIENCES) -> dict[str, Any] | None:
        """The token's claims if it is ours, intact, current and for our audience; else None."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            header = json.loads(_unb64url(parts[0]))
            claims = json.loads(_unb64url(parts[1]))
            signature = _unb64url(parts[2])
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(header, dict) or header.get("alg") != "ES256" or not isinstance(claims, dict):
            return None
        if len(signature) != 64:
            return None
        der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
        try:
            self.public.verify(der, f"{parts[0]}.{parts[1]}".encode(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return None
        now = time.time()
        if claims.get("iss") != self.issuer:
            return None
        if not isinstance(claims.get("exp"), int) or claims["exp"] + LEEWAY < now:
            return None
        if isinstance(claims.get("nbf"), int) and claims["nbf"] - LEEWAY > now:
            return None
        aud = claims.get("aud")
        aud_list = aud if isinstance(aud, list) else [aud]
        if not any(a in audiences for a in aud_list):
            return None
        return claims


def _sha256(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(data)
    return digest.finalize()


class ServiceAccountAuthenticator:
    def __init__(self, issuer: TokenIssuer, storage: Storage, registry: Registry) -> None:
        self.issuer = issuer
        self.storage = storage
        self.registry = registry

    async def authenticate_token(self, token: str) -> UserInfo | None:
        if token.count(".") != 2:
            return None
        claims = self.issuer.verify(token)
        if claims is None:
            return None
        k8s = claims.get("kubernetes.io") or {}
        ns = k8s.get("namespace", "")
        sa_claim = k8s.get("serviceaccount") or {}
        sa_type = self.registry.get("", "v1", "serviceaccounts")
        pod_type = self.registry.get("", "v1", "pods")
        assert sa_type is not None and pod_type is not None
        try:
            sa = await self.storage.get(sa_type, ns, sa_claim.get("name", ""))
        except StatusError:
            return None
        if sa["metadata"].get("uid") != sa_claim.get("uid"):
            return None
        extra: dict[str, tuple[str, ...]] = {}
        pod_claim = k8s.get("pod")
        if pod_claim:
            try:
                pod = await self.storage.get(pod_type, ns, pod_claim.get("name", ""))
            except StatusError:
                return None
            if pod["metadata"].get("uid") != pod_claim.get("uid") or pod["metadata"].get("deletionTimestamp"):
                return None
            extra["authentication.kubernetes.io/pod-name"] = (pod_claim["name"],)
            extra["authentication.kubernetes.io/pod-uid"] = (pod_claim["uid"],)
        return UserInfo(f"system:serviceaccount:{ns}:{sa_claim['name']}", sa_claim["uid"],
                        ("system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"), extra)


async def token_request(issuer: TokenIssuer | None, storage: Storage, registry: Registry, namespace: str, name: str,
                        body: dict[str, Any]) -> dict[str, Any]:
    """serviceaccounts/{name}/token: mint a token for the service account (bound to a pod if asked)."""
    if issuer is None:
        raise errors.service_unavailable("service-account token issuing is not configured on this API server "
                                         "(--service-account-signing-key-file)")
    sa_type = registry.get("", "v1", "serviceaccounts")
    assert sa_type is not None
    sa = await storage.get(sa_type, namespace, name)
    spec = dict(body.get("spec") or {})
    audiences = list(spec.get("audiences") or DEFAULT_AUDIENCES)
    expiration = spec.get("expirationSeconds") or 3600
    if not isinstance(expiration, int) or expiration < 600:
        raise errors.StatusError(code=422, reason="Invalid",
                                 message="spec.expirationSeconds: Invalid value: "
                                         f"{expiration}: may not specify a duration less than 10 minutes")
    expiration = min(expiration, 48 * 3600)
    bound = None
    ref = spec.get("boundObjectRef")
    if ref:
        if ref.get("kind") != "Pod":
            raise errors.bad_request("boundObjectRef.kind: only Pod is supported")
        pod_type = registry.get("", "v1", "pods")
        assert pod_type is not None
        pod = await storage.get(pod_type, namespace, ref.get("name", ""))
        if ref.get("uid") and ref["uid"] != pod["metadata"]["uid"]:
            raise errors.conflict(resource="pods", name=ref.get("name", ""),
                                  detail="the UID in the bound object reference does not match")
        bound = {"kind": "Pod", "name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]}
    token, exp = issuer.issue(sa, audiences=audiences, expiration_seconds=expiration, bound=bound)
    spec["audiences"] = audiences
    spec["expirationSeconds"] = expiration
    return {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": None},
            "spec": spec,
            "status": {"token": token, "expirationTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp))}}
