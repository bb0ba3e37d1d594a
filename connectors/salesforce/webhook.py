"""Salesforce outbound messages (the "Outbound Message" action of a workflow rule or flow) as webhooks.

The org POSTs a SOAP 1.1 envelope (``text/xml``)::

    <soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
                      xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
     <soapenv:Body>
      <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
       <OrganizationId>00D...</OrganizationId>
       <ActionId>04k...</ActionId>
       <SessionId xsi:nil="true"/>
       <EnterpriseUrl>https://.../services/Soap/c/60.0/00D...</EnterpriseUrl>
       <PartnerUrl>https://.../services/Soap/u/60.0/00D...</PartnerUrl>
       <Notification>
        <Id>04l...</Id>
        <sObject xsi:type="sf:Account" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
         <sf:Id>001...</sf:Id>
         <sf:Name>Acme</sf:Name>
        </sObject>
       </Notification>
      </notifications>
     </soapenv:Body>
    </soapenv:Envelope>

and expects ``200`` with ``notificationsResponse``/``Ack`` ``true``; any other answer makes it
send the same message again (same notification Ids) for up to 24 hours. Outbound messages are
not signed, so the endpoint URL carries a shared token (``.../webhooks/crm?token=...``; a proxy
may send ``X-Triad-Token`` instead), and ``organization_id``, when configured, must match.

Connector options: ``webhook_token`` (required), ``organization_id``, ``webhook_records``
(``fetch``, the default: the notification is a signal and the records are read back by Id
through REST, complete and current, with relationship fields such as ``Owner.Name`` that a
message cannot carry; ``message``: use the message's fields as they are, which then must
include every field the mapping reads), ``webhook_objects`` (sObject -> entity, default
Account/Opportunity/Order/Contract/Payment__c -> customer/opportunity/order/contract/payment).
"""
from __future__ import annotations

import hashlib
import hmac
import re
import xml.etree.ElementTree as ET
from typing import Any, Iterable, Mapping
from xml.sax.saxutils import escape

from hub.connector import StreamSpec, WebhookEvent, WebhookRejected
from hub.secrets import reveal

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
OM_NS = "http://soap.sforce.com/2005/09/outbound"
SF_NS = "urn:sobject.enterprise.soap.sforce.com"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
DEFAULT_OBJECTS = {"Account": "customer", "Opportunity": "opportunity", "Order": "order", "Contract": "contract",
                   "Payment__c": "payment"}
ACK = (f'<?xml version="1.0" encoding="UTF-8"?>\n<soapenv:Envelope xmlns:soapenv="{SOAP_NS}">'
       f'<soapenv:Body><notificationsResponse xmlns="{OM_NS}"><Ack>true</Ack></notificationsResponse>'
       f'</soapenv:Body></soapenv:Envelope>').encode("utf-8")
_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")


class Message:
    """One parsed ``notifications`` element."""

    def __init__(self, organization_id: str, action_id: str, notifications: list[tuple[str, str, dict]]) -> None:
        self.organization_id = organization_id
        self.action_id = action_id
        self.notifications = notifications        # (notification id, sObject type, fields)


def parse_message(body: bytes) -> Message:
    """Read an outbound message envelope.

    Raises:
        ValueError: not XML, a DTD (refused: no entity expansion), or not a ``notifications`` envelope.
    """
    upper = body.upper()
    if b"<!DOCTYPE" in upper or b"<!ENTITY" in upper:
        raise ValueError("a SOAP message must not carry a DTD")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise ValueError(f"not XML: {exc}") from None
    note = root.find(f"{{{SOAP_NS}}}Body/{{{OM_NS}}}notifications")
    if note is None:
        raise ValueError("no soapenv:Body/notifications element (not a Salesforce outbound message)")
    out = []
    for n in note.findall(f"{{{OM_NS}}}Notification"):
        nid = (n.findtext(f"{{{OM_NS}}}Id") or "").strip()
        obj = n.find(f"{{{OM_NS}}}sObject")
        if obj is None:
            raise ValueError(f"notification {nid or '?'} has no sObject")
        sobject_type = (obj.get(f"{{{XSI_NS}}}type") or "").split(":")[-1]
        fields: dict[str, Any] = {}
        for el in obj:
            name = el.tag.rsplit("}", 1)[-1]
            fields[name] = None if el.get(f"{{{XSI_NS}}}nil") == "true" else (el.text or "")
        out.append((nid, sobject_type, fields))
    return Message(note.findtext(f"{{{OM_NS}}}OrganizationId", "").strip(),
                   note.findtext(f"{{{OM_NS}}}ActionId", "").strip(), out)


def verify(options: Mapping[str, Any], name: str, headers: Mapping[str, str], body: bytes,
           query: Mapping[str, str] | None) -> None:
    """Check the shared token (URL ``token`` or ``X-Triad-Token``) and, if configured, the org id.

    Raises:
        WebhookRejected: no token configured, a wrong or missing token, or another org's message.
    """
    token = reveal(options.get("webhook_token"))
    if not token:
        raise WebhookRejected(f"connector {name} has no webhook_token configured")
    h = {k.lower(): v for k, v in headers.items()}
    given = (query or {}).get("token") or h.get("x-triad-token") or ""
    if not hmac.compare_digest(str(token).encode(), str(given).encode()):
        raise WebhookRejected("bad or missing token (?token= in the outbound message's endpoint URL)")
    org = str(options.get("organization_id") or "")
    if org:
        try:
            sent = parse_message(body).organization_id
        except ValueError:
            return                      # stored, and reported as unreadable by the worker
        if sent[:15] != org[:15]:      # 15- and 18-character forms of one id
            raise WebhookRejected(f"message from organization {sent or '?'}, expected {org}")


def parse(options: Mapping[str, Any], body: bytes) -> list[WebhookEvent]:
    """The message's notifications as events, one per sObject type (ids to fetch, or the records)."""
    msg = parse_message(body)
    objects = {**DEFAULT_OBJECTS, **(options.get("webhook_objects") or {})}
    lower = {k.lower(): v for k, v in objects.items()}
    by_object: dict[str, WebhookEvent] = {}
    fetch = str(options.get("webhook_records", "fetch")).lower() != "message"
    for nid, sobject_type, fields in msg.notifications:
        entity = lower.get(sobject_type.lower())
        if entity is None:
            raise ValueError(f"notification {nid}: no entity for sObject {sobject_type or '?'} "
                             f"(set webhook_objects: {{{sobject_type}: <entity>}})")
        ev = by_object.setdefault(sobject_type, WebhookEvent(entity=entity, event_key=nid or None))
        if fetch:
            rec_id = fields.get("Id")
            if not rec_id:
                raise ValueError(f"notification {nid}: the sObject carries no Id")
            ev.fetch_ids.append(rec_id)
        else:
            ev.records.append(fields)
    return list(by_object.values())


_SESSION_ID = re.compile(rb"(<(?:[\w.-]+:)?SessionId\b[^>]*>)[^<]*(</(?:[\w.-]+:)?SessionId\s*>)")


def without_session_id(body: bytes) -> bytes:
    """The message without the live session id an org sends when "Send Session ID" is ticked: a
    credential, not kept in the inbox (the records are read back with the connector's own login)."""
    return _SESSION_ID.sub(rb"\1\2", body)


def event_key(body: bytes) -> str | None:
    """The notification Ids identify a message: a redelivery carries the same ones."""
    try:
        ids = sorted(nid for nid, _, _ in parse_message(body).notifications if nid)
    except ValueError:
        return None
    if not ids:
        return None
    return ids[0] if len(ids) == 1 else "om:" + hashlib.sha256(",".join(ids).encode()).hexdigest()


def fetch_records(connector: Any, stream: StreamSpec, ids: list[str]) -> list[dict[str, Any]]:
    """Live records by Id, exactly as a read gives them (same SELECT list), 200 Ids per query."""
    from connectors.salesforce.connector import _strip_attributes
    bad = [i for i in ids if not _ID.match(i)]
    if bad:
        raise ValueError(f"not Salesforce ids: {', '.join(bad[:5])}")
    desc = connector.client.describe(stream.source)
    ts_field = stream.updated_at or "SystemModstamp"
    select = ", ".join(connector._select(stream, desc, ts_field))
    out: list[dict[str, Any]] = []
    for i in range(0, len(ids), 200):
        chunk = ", ".join(f"'{x}'" for x in ids[i:i + 200])
        soql = f"SELECT {select} FROM {desc['name']} WHERE Id IN ({chunk}) ORDER BY {ts_field}, Id"
        for page in connector.client.query_pages(soql):
            out += [_strip_attributes(r) for r in page.get("records", []) if not r.get("IsDeleted")]
    return out


def envelope(organization_id: str, sobject_type: str, records: Iterable[Mapping[str, Any]], *,
             action_id: str = "04k000000000001AAA", notification_ids: Iterable[str] | None = None,
             base_url: str = "https://example.my.salesforce.com") -> bytes:
    """An outbound message as the org sends it (for the simulator side of tests and benchmarks)."""
    records = list(records)
    nids = list(notification_ids) if notification_ids is not None else [
        "04l" + hashlib.sha1(f"{r.get('Id')}:{r.get('SystemModstamp')}".encode()).hexdigest()[:15] for r in records]
    parts = [f'<?xml version="1.0" encoding="UTF-8"?>\n<soapenv:Envelope xmlns:soapenv="{SOAP_NS}" '
             f'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="{XSI_NS}"><soapenv:Body>'
             f'<notifications xmlns="{OM_NS}"><OrganizationId>{escape(organization_id)}</OrganizationId>'
             f'<ActionId>{escape(action_id)}</ActionId><SessionId xsi:nil="true"/>'
             f'<EnterpriseUrl>{escape(base_url)}/services/Soap/c/60.0/{escape(organization_id)}</EnterpriseUrl>'
             f'<PartnerUrl>{escape(base_url)}/services/Soap/u/60.0/{escape(organization_id)}</PartnerUrl>']
    for nid, rec in zip(nids, records):
        parts.append(f'<Notification><Id>{escape(nid)}</Id><sObject xsi:type="sf:{escape(sobject_type)}" '
                     f'xmlns:sf="{SF_NS}">')
        for k, v in rec.items():
            if isinstance(v, (dict, list)) or k == "attributes":
                continue                   # relationship and child data never travel in a message
            if v is None:
                parts.append(f'<sf:{k} xsi:nil="true"/>')
            else:
                text = ("true" if v else "false") if isinstance(v, bool) else str(v)
                parts.append(f"<sf:{k}>{escape(text)}</sf:{k}>")
        parts.append("</sObject></Notification>")
    parts.append("</notifications></soapenv:Body></soapenv:Envelope>")
    return "".join(parts).encode("utf-8")
