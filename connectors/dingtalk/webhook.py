"""DingTalk HTTP event subscription deliveries: verify, decrypt, and turn into webhook events.

DingTalk POSTs ``<url>?signature=..&timestamp=..&nonce=..`` (older apps:
``msg_signature`` / ``timeStamp``) with ``{"encrypt": "..."}``: the signature is in
the query string, which the hub passes to the webhook methods as ``query``.
Every delivery must be answered with the encrypted ``success`` within 1500 ms.
"""
from __future__ import annotations

import json
import logging
from typing import Any, Mapping

from connectors.dingtalk.client import text_option
from connectors.dingtalk.crypto import CallbackCryptoError, DingTalkCrypto
from hub.connector import WebhookEvent, WebhookRejected

log = logging.getLogger(__name__)

INSTANCE_EVENTS = ("bpms_instance_change", "bpms_task_change")


def callback_crypto(options: dict[str, Any], app_key: str) -> DingTalkCrypto:
    """The crypto for this app's callbacks (options callback_token, callback_aes_key, callback_owner_key).

    Raises:
        WebhookRejected: no token / aes_key configured, or the aes_key is malformed.
    """
    token, aes_key = text_option(options, "callback_token"), text_option(options, "callback_aes_key")
    if not token or not aes_key:
        raise WebhookRejected("dingtalk: callback_token and callback_aes_key must be configured to accept callbacks")
    try:
        return DingTalkCrypto(token, aes_key, text_option(options, "callback_owner_key") or app_key)
    except CallbackCryptoError as exc:
        raise WebhookRejected(f"dingtalk: {exc}") from None


def signature_params(query: Mapping[str, str] | None) -> dict[str, str]:
    """signature, timestamp and nonce of a delivery's query string (either spelling)."""
    q = {k.lower(): v for k, v in (query or {}).items()}
    return {"signature": q.get("msg_signature") or q.get("signature") or "",
            "timestamp": q.get("timestamp") or "", "nonce": q.get("nonce") or ""}


def open_delivery(crypto: DingTalkCrypto, query: Mapping[str, str] | None, body: bytes) -> str:
    """The decrypted text of an authentic delivery (whether it reads as an event is :func:`read_event`'s call).

    Raises:
        WebhookRejected: missing parameters, a signature that does not match, or undecryptable content.
    """
    params = signature_params(query)
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):     # RecursionError: nested too deep to read
        raise WebhookRejected("dingtalk: the callback body is not JSON") from None
    encrypt = doc.get("encrypt") if isinstance(doc, dict) else None
    if not encrypt or not isinstance(encrypt, str) or not all(params.values()):
        raise WebhookRejected("dingtalk: callback without encrypt, signature, timestamp or nonce")
    try:
        return crypto.open(params["signature"], params["timestamp"], params["nonce"], encrypt)
    except CallbackCryptoError as exc:
        raise WebhookRejected(f"dingtalk: {exc}") from None


def read_event(plain: str) -> dict[str, Any]:
    """The event of a decrypted callback.

    Raises:
        ValueError: the content is not a JSON object. The delivery is authentic all the same: it is
            stored and answered, and the worker keeps it as an ``error`` row with this reason.
    """
    try:
        event = json.loads(plain)
    except (ValueError, RecursionError):
        event = None
    if not isinstance(event, dict):
        raise ValueError("dingtalk: the decrypted callback is not a JSON object")
    return event


def is_check_url(plain: str) -> bool:
    """The URL-verification handshake DingTalk sends when the callback URL is registered."""
    try:
        return read_event(plain).get("EventType") == "check_url"
    except ValueError:
        return False


def event_key(event: dict[str, Any]) -> str | None:
    """A stable id for a callback (DingTalk sends none): a redelivery gets the same one."""
    kind, iid = event.get("EventType"), event.get("processInstanceId")
    if kind not in INSTANCE_EVENTS or not iid:
        return None
    stamp = event.get("finishTime") or event.get("createTime") or ""
    return f"{kind}:{iid}:{event.get('type', '')}:{event.get('taskId', '')}:{stamp}"


def to_events(event: dict[str, Any]) -> list[WebhookEvent]:
    """``bpms_instance_change`` / ``bpms_task_change`` -> one event asking to fetch the instance."""
    key = event_key(event)
    if key is None:
        log.info("ignoring DingTalk callback %s", event.get("EventType"))
        return []
    return [WebhookEvent(entity="approval", fetch_ids=[str(event["processInstanceId"])], event_key=key)]
