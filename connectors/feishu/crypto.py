"""Feishu event encryption (optional Encrypt Key) and request signature.

PROTOCOLS 5.2 could not capture the encrypted format; this follows Feishu's
official SDK (``lark-oapi``: ``AESCipher`` and the event dispatcher), which the
tests use as the reference receiver:

* key = SHA-256 of the Encrypt Key; AES-256-CBC; the base64 ``encrypt`` value is
  a random 16-byte IV followed by the ciphertext of the PKCS#7-padded JSON;
  the body is ``{"encrypt": "..."}``.
* with an Encrypt Key set, events carry ``X-Lark-Request-Timestamp``,
  ``X-Lark-Request-Nonce`` and ``X-Lark-Signature`` = hex SHA-256 of
  timestamp + nonce + encrypt key + the raw body.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import os

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


class EventCryptoError(ValueError):
    """The event does not decrypt or its signature does not match."""


def _key(encrypt_key: str) -> bytes:
    return hashlib.sha256(encrypt_key.encode("utf-8")).digest()


def encrypt(encrypt_key: str, plaintext: str, iv: bytes | None = None) -> str:
    """The base64 ``encrypt`` value of a JSON text."""
    iv = iv or os.urandom(16)
    padder = padding.PKCS7(128).padder()
    data = padder.update(plaintext.encode("utf-8")) + padder.finalize()
    enc = Cipher(algorithms.AES(_key(encrypt_key)), modes.CBC(iv)).encryptor()
    return base64.b64encode(iv + enc.update(data) + enc.finalize()).decode("ascii")


def decrypt(encrypt_key: str, value: str) -> str:
    """The JSON text inside an ``encrypt`` value.

    Raises:
        EventCryptoError: bad base64, length or padding (a wrong key, most often).
    """
    try:
        raw = base64.b64decode(value)
    except (binascii.Error, ValueError) as exc:
        raise EventCryptoError(f"encrypt is not base64: {exc}") from None
    if len(raw) < 32 or len(raw) % 16:
        raise EventCryptoError("encrypt has an invalid length")
    dec = Cipher(algorithms.AES(_key(encrypt_key)), modes.CBC(raw[:16])).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        data = unpadder.update(dec.update(raw[16:]) + dec.finalize()) + unpadder.finalize()
        return data.decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise EventCryptoError("encrypt does not decrypt with this Encrypt Key") from None


def signature(timestamp: str, nonce: str, encrypt_key: str, body: bytes) -> str:
    """``X-Lark-Signature`` for a raw body."""
    return hashlib.sha256((timestamp + nonce + encrypt_key).encode("utf-8") + body).hexdigest()
