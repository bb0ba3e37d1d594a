"""DingTalk's callback encryption and signature (HTTP event subscription, 事件订阅).

Both sides live here: the simulator encrypts and signs what it pushes, the
connector checks and decrypts it. The scheme (DingTalk's published
``DingCallbackCrypto`` demo classes; PROTOCOLS 5.1 names only the
``signature``/``timestamp``/``nonce`` query and the ``{"encrypt"}`` body):

* ``aes_key`` is the 43-character EncodingAESKey; the AES-256 key is its
  base64 decoding (with one ``=`` appended), the CBC IV the key's first 16 bytes.
* plaintext = 16 random bytes + the message length (4 bytes, big-endian) +
  the message (UTF-8) + the owner key (the app key for an in-house app's
  event subscription, the corp id for a registered callback), PKCS#7 padded
  to a 32-byte block; ``encrypt`` is the base64 of the ciphertext.
* signature = hex SHA-1 of the sorted concatenation of token, timestamp,
  nonce and encrypt.
* the receiver answers ``{"msg_signature", "timeStamp", "nonce", "encrypt"}``
  holding the encrypted text ``success``.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import string
import struct
import time

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32          # DingTalk pads to 32 bytes, not AES's 16
_NONCE_CHARS = string.ascii_letters + string.digits


class CallbackCryptoError(ValueError):
    """The delivery does not verify or does not decrypt (forged, corrupted or for another app)."""


def make_aes_key(seed: bytes) -> str:
    """A valid 43-character EncodingAESKey derived from ``seed`` (simulator and test defaults)."""
    return base64.b64encode(hashlib.sha256(seed).digest()).decode("ascii").rstrip("=")


class DingTalkCrypto:
    """Encrypt, decrypt and sign DingTalk callback messages.

    Args:
        token: the callback token set in the developer console.
        aes_key: the 43-character EncodingAESKey.
        owner_key: app key (event subscription of an in-house app), corp id or suite key.

    Raises:
        CallbackCryptoError: the AES key is not 43 base64 characters for 32 bytes.
    """

    def __init__(self, token: str, aes_key: str, owner_key: str) -> None:
        try:
            key = base64.b64decode(aes_key + "=", validate=True)
        except (binascii.Error, ValueError) as exc:
            raise CallbackCryptoError(f"the callback aes_key is not base64: {exc}") from None
        if len(aes_key) != 43 or len(key) != 32:
            raise CallbackCryptoError("the callback aes_key must be 43 characters (32 bytes once decoded)")
        self.token = token
        self.key = key
        self.owner_key = owner_key

    def signature(self, timestamp: str, nonce: str, encrypt: str) -> str:
        """Hex SHA-1 of token, timestamp, nonce and encrypt, sorted and joined."""
        return hashlib.sha1("".join(sorted([self.token, timestamp, nonce, encrypt])).encode("utf-8")).hexdigest()

    def _cipher(self) -> Cipher:
        return Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16]))

    def encrypt(self, message: str, random16: bytes | None = None) -> str:
        """The base64 ``encrypt`` value for a message."""
        msg = message.encode("utf-8")
        plain = (random16 or os.urandom(16)) + struct.pack(">I", len(msg)) + msg + self.owner_key.encode("utf-8")
        pad = BLOCK - len(plain) % BLOCK
        plain += bytes([pad]) * pad
        enc = self._cipher().encryptor()
        return base64.b64encode(enc.update(plain) + enc.finalize()).decode("ascii")

    def decrypt(self, encrypt: str) -> str:
        """The message inside an ``encrypt`` value.

        Raises:
            CallbackCryptoError: bad base64, padding, length or owner key.
        """
        try:
            data = base64.b64decode(encrypt, validate=False)
        except (binascii.Error, ValueError) as exc:
            raise CallbackCryptoError(f"encrypt is not base64: {exc}") from None
        if not data or len(data) % 16:
            raise CallbackCryptoError("encrypt is not a whole number of AES blocks")
        dec = self._cipher().decryptor()
        plain = dec.update(data) + dec.finalize()
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise CallbackCryptoError("bad padding: wrong aes_key or corrupted message")
        plain = plain[:-pad]
        if len(plain) < 20:
            raise CallbackCryptoError("message too short")
        (length,) = struct.unpack(">I", plain[16:20])
        msg, owner = plain[20:20 + length], plain[20 + length:]
        if len(msg) != length:
            raise CallbackCryptoError("message length does not match")
        if owner.decode("utf-8", "replace") != self.owner_key:
            raise CallbackCryptoError("the message is for another app or corp (owner key differs)")
        return msg.decode("utf-8")

    def open(self, signature: str, timestamp: str, nonce: str, encrypt: str) -> str:
        """Check the signature, then decrypt.

        Raises:
            CallbackCryptoError: the signature does not match, or decryption fails.
        """
        expected = self.signature(timestamp, nonce, encrypt)
        given = signature.encode("utf-8", "replace")    # compare_digest refuses str that is not ASCII
        if not given or not hmac.compare_digest(expected.encode("ascii"), given):
            raise CallbackCryptoError("callback signature does not match")
        return self.decrypt(encrypt)

    def seal(self, message: str, timestamp: str | None = None, nonce: str | None = None) -> dict[str, str]:
        """``{"msg_signature", "timeStamp", "nonce", "encrypt"}`` for a message (the receiver's answer)."""
        timestamp = timestamp or str(int(time.time() * 1000))
        nonce = nonce or "".join(secrets.choice(_NONCE_CHARS) for _ in range(8))
        encrypt = self.encrypt(message)
        return {"msg_signature": self.signature(timestamp, nonce, encrypt), "timeStamp": timestamp,
                "nonce": nonce, "encrypt": encrypt}
