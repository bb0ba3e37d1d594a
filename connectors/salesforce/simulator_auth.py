"""The simulator's login endpoints: OAuth 2.0 token (password, client_credentials,
refresh_token grants) and the legacy SOAP ``login`` call.

Bodies follow the shapes in PROTOCOLS.md section 1.1 and the saved fixtures:
a token JSON with ``access_token``/``instance_url``/``id``/``token_type``/
``issued_at``/``signature``, HTTP 400 ``{"error", "error_description"}`` on
refusal; SOAP ``loginResponse`` or an HTTP 500 ``INVALID_LOGIN`` fault.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
import time
from typing import Any
from urllib.parse import parse_qs

from connectors.salesforce.org import Org

INVALID_CLIENT_ID = {"error": "invalid_client_id", "error_description": "client identifier invalid"}
INVALID_CLIENT = {"error": "invalid_client", "error_description": "invalid client credentials"}
INVALID_GRANT = {"error": "invalid_grant", "error_description": "authentication failure"}
INVALID_REFRESH = {"error": "invalid_grant", "error_description": "expired access/refresh token"}
UNSUPPORTED = {"error": "unsupported_grant_type", "error_description": "grant type not supported"}

_SOAP_OK = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com" \
xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
   <soapenv:Body>
      <loginResponse>
         <result>
            <metadataServerUrl>{base}/services/Soap/m/{ver}/{org}</metadataServerUrl>
            <passwordExpired>false</passwordExpired>
            <sandbox>false</sandbox>
            <serverUrl>{base}/services/Soap/u/{ver}/{org}</serverUrl>
            <sessionId>{sid}</sessionId>
            <userId>{uid}</userId>
            <userInfo>
               <currencySymbol>¥</currencySymbol>
               <orgDefaultCurrencyIsoCode>CNY</orgDefaultCurrencyIsoCode>
               <organizationId>{org}</organizationId>
               <organizationMultiCurrency>true</organizationMultiCurrency>
               <organizationName>Triad Demo Org</organizationName>
               <sessionSecondsValid>{ttl}</sessionSecondsValid>
               <userEmail>{user}</userEmail>
               <userFullName>Triad Integration</userFullName>
               <userId>{uid}</userId>
               <userName>{user}</userName>
               <userTimeZone>Asia/Shanghai</userTimeZone>
               <userType>Standard</userType>
            </userInfo>
         </result>
      </loginResponse>
   </soapenv:Body>
</soapenv:Envelope>"""
_SOAP_FAULT = ('<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/'
               'soap/envelope/" xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/'
               'XMLSchema-instance"><soapenv:Body><soapenv:Fault><faultcode>INVALID_LOGIN</faultcode><faultstring>'
               'INVALID_LOGIN: Invalid username, password, security token; or user locked out.</faultstring><detail>'
               '<sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>'
               '<sf:exceptionMessage>Invalid username, password, security token; or user locked out.'
               '</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>')


def _password_ok(org: Org, username: str | None, password: str | None) -> bool:
    o = org.options
    token = o.extra.get("security_token", "")
    return username == o.user and password in (o.password, o.password + token)


def _basic(environ: dict) -> tuple[str | None, str | None]:
    header = environ.get("HTTP_AUTHORIZATION", "")
    if not header.startswith("Basic "):
        return None, None
    try:
        cid, _, secret = base64.b64decode(header[6:]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None, None
    return cid, secret


def token(org: Org, environ: dict, body: bytes, base_url: str) -> tuple[int, dict]:
    """Handle ``POST /services/oauth2/token``: (HTTP status, JSON body)."""
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    if not form:
        form = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    o = org.options
    grant = form.get("grant_type")
    cid, secret = form.get("client_id"), form.get("client_secret")
    if grant == "client_credentials" and cid is None:
        cid, secret = _basic(environ)
    if grant not in ("password", "client_credentials", "refresh_token"):
        return 400, UNSUPPORTED
    if cid != o.client_id:
        return 400, INVALID_CLIENT_ID
    if grant == "refresh_token":
        if secret not in (None, o.client_secret):
            return 400, INVALID_CLIENT
        if form.get("refresh_token") not in org.refresh_tokens:
            return 400, INVALID_REFRESH
    elif secret != o.client_secret:
        return 400, INVALID_CLIENT
    elif grant == "password" and not _password_ok(org, form.get("username"), form.get("password")):
        return 400, INVALID_GRANT
    access = org.issue_token()
    issued = str(int(time.time() * 1000))
    ident = f"{base_url}/id/{org.org_id}/{org.api_user}"
    signature = base64.b64encode(hmac.new(o.client_secret.encode(), (ident + issued).encode(),
                                          hashlib.sha256).digest()).decode()
    out: dict[str, Any] = {"access_token": access, "signature": signature, "scope": "web api",
                           "instance_url": base_url, "id": ident, "token_type": "Bearer", "issued_at": issued}
    if grant == "client_credentials":
        out["api_instance_url"] = base_url
    return 200, out


def soap_login(org: Org, body: bytes, base_url: str, version: str) -> tuple[int, str]:
    """Handle ``POST /services/Soap/u/<version>`` with a ``login`` envelope: (HTTP status, XML)."""
    text = body.decode("utf-8", "replace")

    def element(name: str) -> str | None:
        m = re.search(rf"<(?:\w+:)?{name}>(.*?)</(?:\w+:)?{name}>", text, re.DOTALL)
        return html.unescape(m.group(1)) if m else None
    if not _password_ok(org, element("username"), element("password")):
        return 500, _SOAP_FAULT
    ttl = int(org.options.token_ttl) if org.options.token_ttl else 7200
    return 200, _SOAP_OK.format(base=base_url, ver=version, org=org.org_id, sid=org.issue_token(),
                                uid=org.api_user, user=html.escape(org.options.user), ttl=ttl)
