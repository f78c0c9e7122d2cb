"""Peer frames: stored-deflate framing that any zlib reads, and AES-GCM frames that refuse tampering."""

from __future__ import annotations

import os
import zlib

import pytest

from kvstore.peerwire import InvalidPeerFrame, PeerCipher, StoredDeflate, derive_key


@pytest.mark.parametrize("size", [0, 1, 122, 0xFFFF - 1, 0xFFFF, 0xFFFF + 1, 3 * 0xFFFF + 17])
def test_stored_deflate_is_read_by_zlib(size: int) -> None:
    data = os.urandom(size)
    framed = StoredDeflate.compress(data, 3)
    assert zlib.decompress(framed) == data
    assert StoredDeflate.decompress(framed) == data
    assert StoredDeflate.decompress(zlib.compress(data, 3)) == data  # and reads what old members send


def test_stored_deflate_checksum_is_checked() -> None:
    framed = bytearray(StoredDeflate.compress(b"append_entries" * 10))
    framed[10] ^= 0x01
    with pytest.raises(zlib.error):
        zlib.decompress(bytes(framed))


@pytest.fixture(scope="module")
def key() -> bytes:
    return derive_key("s3cret")


def test_cipher_round_trip_and_timestamp(key: bytes) -> None:
    sender, receiver = PeerCipher(key), PeerCipher(key)
    token = sender.encrypt_at_time(b"hello", 1234)
    assert b"hello" not in token
    assert receiver.extract_timestamp(token) == 1234
    assert receiver.decrypt(token) == b"hello"


def test_nonces_never_repeat_within_a_cipher(key: bytes) -> None:
    cipher = PeerCipher(key)
    nonces = {cipher.encrypt_at_time(b"x", 1)[9:21] for _ in range(1000)}
    assert len(nonces) == 1000


@pytest.mark.parametrize("offset", [0, 1, 9, 20, 21, -1])
def test_any_flipped_bit_is_refused(key: bytes, offset: int) -> None:
    token = bytearray(PeerCipher(key).encrypt_at_time(b"a message from a member", 7))
    token[offset] ^= 0x40
    with pytest.raises(InvalidPeerFrame):
        PeerCipher(key).decrypt(bytes(token))


def test_other_secret_and_short_frames_are_refused(key: bytes) -> None:
    token = PeerCipher(derive_key("another secret")).encrypt_at_time(b"hi", 1)
    with pytest.raises(InvalidPeerFrame):
        PeerCipher(key).decrypt(token)
    for junk in (b"", b"\x01" * 20, token[:30]):
        with pytest.raises(InvalidPeerFrame):
            PeerCipher(key).extract_timestamp(junk) if len(junk) < 37 else PeerCipher(key).decrypt(junk)
