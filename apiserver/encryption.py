"""Encryption at rest: an EncryptionConfiguration-like file selects resources and AES-GCM keys.

    apiVersion: apiserver.config.k8s.io/v1
    kind: EncryptionConfiguration
    resources:
      - resources: [secrets]
        providers:
          - aesgcm:
              keys:
                - {name: key2, secret: <base64 of 32 random bytes>}
                - {name: key1, secret: <...>}
          - identity: {}

The first provider encrypts new writes; every listed provider can decrypt, which is how keys are
rotated: put the new key first, then rewrite the objects (any update does), then drop the old key.
Stored values are ``k8s:enc:aesgcm:v1:<key name>:<12-byte nonce><ciphertext+tag>`` as upstream
writes them; the object's storage key is authenticated data, so a value copied under another key
does not decrypt.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from typing import Any

import yaml
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from apimachinery import errors

from .storage import ROOT, IdentityTransformer

PREFIX = b"k8s:enc:aesgcm:v1:"


@dataclass(frozen=True, slots=True)
class _Key:
    name: str
    aead: AESGCM


class AESGCMProvider:
    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise ValueError("aesgcm provider needs at least one key")
        for name, secret in keys:
            if len(secret) not in (16, 24, 32):
                raise ValueError(f"aesgcm key {name!r} must be 16, 24 or 32 bytes")
        self.keys = [_Key(name, AESGCM(secret)) for name, secret in keys]

    def encrypt(self, key: bytes, data: bytes) -> bytes:
        k = self.keys[0]
        nonce = os.urandom(12)
        return PREFIX + k.name.encode() + b":" + nonce + k.aead.encrypt(nonce, data, key)

    def decrypt(self, key: bytes, data: bytes) -> bytes | None:
        if not data.startswith(PREFIX):
            return None
        name, sep, rest = data[len(PREFIX):].partition(b":")
        if not sep:
            return None
        for k in self.keys:
            if k.name.encode() == name:
                try:
                    return k.aead.decrypt(rest[:12], rest[12:], key)
                except InvalidTag:
                    raise errors.internal_error("stored data could not be decrypted (wrong key or tampered)") from None
        raise errors.internal_error(f"no decryption key named {name.decode(errors='replace')!r} is configured")


class EncryptionTransformer:
    """Chooses a provider list per resource from the storage key (``/registry/<resource>/...``)."""

    def __init__(self, rules: list[tuple[set[str], list[AESGCMProvider | None]]]) -> None:
        self.rules = rules  # resource names ("secrets", "configmaps", "deployments.apps", "*") -> providers
        self._identity = IdentityTransformer()

    def _providers(self, key: bytes) -> list[AESGCMProvider | None] | None:
        resource = key[len(ROOT):].split(b"/", 1)[0].decode() if key.startswith(ROOT) else ""
        for names, providers in self.rules:
            if resource in names or "*" in names or "*.*" in names:
                return providers
        return None

    def to_storage(self, key: bytes, data: bytes) -> bytes:
        providers = self._providers(key)
        if not providers or providers[0] is None:
            return data
        return providers[0].encrypt(key, data)

    def stale(self, key: bytes, data: bytes) -> bool:
        providers = self._providers(key)
        primary = providers[0] if providers else None
        if primary is None:
            return data.startswith(PREFIX)  # encrypted, but now written as plain text
        return not data.startswith(PREFIX + primary.keys[0].name.encode() + b":")

    def from_storage(self, key: bytes, data: bytes) -> bytes:
        if not data.startswith(PREFIX):
            return data  # written before encryption was configured (identity), or not encrypted
        for provider in self._providers(key) or []:
            if provider is not None:
                plain = provider.decrypt(key, data)
                if plain is not None:
                    return plain
        raise errors.internal_error("stored data is encrypted but no aesgcm provider is configured for it")


def load_config(path: str) -> EncryptionTransformer:
    with open(path, encoding="utf-8") as f:
        doc: Any = yaml.safe_load(f)
    if not isinstance(doc, dict) or not isinstance(doc.get("resources"), list):
        raise ValueError(f"{path}: expected an EncryptionConfiguration with a resources list")
    rules = []
    for entry in doc["resources"]:
        names = set(entry.get("resources") or [])
        providers: list[AESGCMProvider | None] = []
        for p in entry.get("providers") or []:
            if "aesgcm" in p:
                keys = [(k["name"], base64.b64decode(k["secret"])) for k in p["aesgcm"].get("keys") or []]
                providers.append(AESGCMProvider(keys))
            elif "identity" in p:
                providers.append(None)
            else:
                raise ValueError(f"{path}: unsupported provider {sorted(p)}; use aesgcm or identity")
        if not names or not providers:
            raise ValueError(f"{path}: each entry needs resources and providers")
        rules.append((names, providers))
    return EncryptionTransformer(rules)


def new_config(resources: list[str] | None = None) -> str:
    """A fresh configuration with one random AES-256-GCM key (what `pilot up` writes)."""
    secret = base64.b64encode(os.urandom(32)).decode()
    return yaml.safe_dump({
        "apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration",
        "resources": [{"resources": resources or ["secrets"],
                       "providers": [{"aesgcm": {"keys": [{"name": "key1", "secret": secret}]}}, {"identity": {}}]}],
    }, sort_keys=False)
