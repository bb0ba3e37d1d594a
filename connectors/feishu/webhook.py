"""Feishu event deliveries: decryption, signature and Verification Token checks, challenge, parsing.

Accepted shapes: event schema 2.0 (``{"schema": "2.0", "header": {"event_id", "event_type", "token", ...},
"event": {...}}``), the v1 ``event_callback`` envelope (``{"uuid", "token", "type", "event": {...}}``)
and the ``url_verification`` challenge (``{"challenge", "token", "type"}``), each possibly wrapped as
``{"encrypt": "..."}`` when the app has an Encrypt Key (option ``encrypt_key``). With an Encrypt Key,
events (not the challenge) must carry a valid ``X-Lark-Signature``, as Feishu's SDK checks.
"""
from __future__ import annotations

import hmac
import json
import logging
from typing import Any, Mapping

from connectors.dingtalk.client import text_option
from connectors.feishu import crypto
from hub.connector import WebhookEvent, WebhookRejected

log = logging.getLogger(__name__)

INSTANCE_EVENTS = {"approval.instance.status_changed_v4", "approval_instance",
                   "approval.task.status_changed_v4", "approval_task"}


def _json(text: str | bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):     # RecursionError: nested too deep to read
        raise WebhookRejected(f"feishu: {what} is not JSON") from None
    if not isinstance(doc, dict):
        raise WebhookRejected(f"feishu: {what} is not an object")
    return doc


def _part(doc: dict[str, Any], key: str) -> dict[str, Any]:
    """``header`` or ``event`` of a delivery; {} when missing or not an object."""
    part = doc.get(key)
    return part if isinstance(part, dict) else {}


def _same(given: Any, expected: str) -> bool:
    # as bytes: compare_digest refuses str that is not ASCII
    return isinstance(given, str) and hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


def event_type(doc: dict[str, Any]) -> str:
    if doc.get("schema"):
        return str(_part(doc, "header").get("event_type") or "")
    if doc.get("type") == "event_callback":
        return str(_part(doc, "event").get("type") or "")
    return str(doc.get("type") or "")


def open_event(options: dict[str, Any], headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """The plaintext document of an authentic delivery.

    Raises:
        WebhookRejected: no Verification Token configured, a token or signature that does not
            match, or an encrypted body without (or with the wrong) Encrypt Key.
    """
    expected = text_option(options, "verification_token")
    if not expected:
        raise WebhookRejected("feishu: verification_token must be configured to accept events")
    encrypt_key = text_option(options, "encrypt_key")
    doc = _json(body, "the event body")
    if "encrypt" in doc:
        if not encrypt_key:
            raise WebhookRejected("feishu: the event is encrypted but no encrypt_key is configured")
        try:
            doc = _json(crypto.decrypt(encrypt_key, str(doc["encrypt"])), "the decrypted event")
        except crypto.EventCryptoError as exc:
            raise WebhookRejected(f"feishu: {exc}") from None
    token = _part(doc, "header").get("token") if doc.get("schema") else doc.get("token")
    if not _same(token, expected):
        raise WebhookRejected("feishu: the Verification Token does not match")
    if encrypt_key and event_type(doc) != "url_verification":
        h = {k.lower(): v for k, v in headers.items()}
        given = h.get("x-lark-signature", "")
        if not _same(given, crypto.signature(h.get("x-lark-request-timestamp", ""),
                                             h.get("x-lark-request-nonce", ""), encrypt_key, body)):
            raise WebhookRejected("feishu: X-Lark-Signature does not match")
    return doc


def without_token(body: bytes) -> bytes:
    """A verified delivery as the inbox keeps it: the Verification Token (``header.token``, v1 ``token``)
    taken out. An encrypted body is kept as it is: its token reads only with the Encrypt Key."""
    doc = _json(body, "the event body")
    if "encrypt" in doc:
        return body
    header = _part(doc, "header")
    if "token" not in doc and "token" not in header:
        return body
    doc.pop("token", None)
    header.pop("token", None)
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


def stored_event(options: dict[str, Any], body: bytes) -> dict[str, Any]:
    """The plaintext document of a stored delivery (verified before it was stored, its token taken out since).

    Raises:
        WebhookRejected: the body is not a JSON object, or is encrypted with another Encrypt Key.
    """
    doc = _json(body, "the event body")
    if "encrypt" not in doc:
        return doc
    try:
        return _json(crypto.decrypt(text_option(options, "encrypt_key") or "", str(doc["encrypt"])),
                     "the decrypted event")
    except crypto.EventCryptoError as exc:
        raise WebhookRejected(f"feishu: {exc}") from None


def event_key(doc: dict[str, Any]) -> str | None:
    """Feishu's event id: ``header.event_id`` (schema 2.0) or ``uuid`` (v1)."""
    key = _part(doc, "header").get("event_id") or doc.get("uuid")
    return str(key) if key else None


def to_events(doc: dict[str, Any]) -> list[WebhookEvent]:
    """Instance and task status events -> one event asking to fetch the instance."""
    kind = event_type(doc)
    code = _part(doc, "event").get("instance_code")
    if kind not in INSTANCE_EVENTS or not code:
        log.info("ignoring Feishu event %s", kind or "(no type)")
        return []
    return [WebhookEvent(entity="approval", fetch_ids=[str(code)], event_key=event_key(doc))]
