"""HubSpot CRM v3 object routes of the REST simulator (for the shipped ``config/rest/hubspot.yaml``).

- ``GET /crm/v3/objects/<object>?limit=&after=&properties=a,b&archived=`` ->
  ``{"results": [{"id", "properties", "createdAt", "updatedAt", "archived"}], "paging": {"next": {"after", "link"}}}``
- ``POST /crm/v3/objects/<object>/search`` with ``filterGroups`` (OR of AND-ed filters: EQ, NEQ,
  GT, GTE, LT, LTE, HAS_PROPERTY, NOT_HAS_PROPERTY; date properties compare as epoch
  milliseconds), ``sorts``, ``properties``, ``limit`` (at most 200) and ``after``; like
  HubSpot, paging past 10,000 results is refused.
- ``POST /crm/v3/objects/<object>`` ``{"properties": {...}}`` creates (201);
  ``GET|PATCH|DELETE /crm/v3/objects/<object>/<id>`` (DELETE archives).

Property values are strings; unknown properties are refused with HubSpot's
``VALIDATION_ERROR`` body. Auth: ``Authorization: Bearer`` with the client secret
(a private app token) or a token from ``/oauth/token``.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from connectors.rest.sim_data import COLLECTIONS, iso_ms

if TYPE_CHECKING:
    from connectors.rest.simulator import Reply, Request, RestSim

DEFAULTS = {
    "companies": ("name", "domain", "createdate", "hs_lastmodifieddate", "hs_object_id"),
    "contacts": ("firstname", "lastname", "email", "createdate", "lastmodifieddate", "hs_object_id"),
    "deals": ("dealname", "amount", "dealstage", "pipeline", "closedate", "createdate", "hs_lastmodifieddate",
              "hs_object_id"),
}
EXTRA = {
    "companies": ("name", "domain", "phone", "address", "address2", "city", "state", "zip", "country", "industry",
                  "numberofemployees", "annualrevenue", "lifecyclestage", "website", "description",
                  "hubspot_owner_id", "type"),
    "contacts": ("firstname", "lastname", "email", "phone", "mobilephone", "jobtitle", "company",
                 "associatedcompanyid", "hubspot_owner_id", "lifecyclestage"),
    "deals": ("dealname", "amount", "deal_currency_code", "dealstage", "pipeline", "closedate",
              "hubspot_owner_id", "description"),
}
MODIFIED = {"companies": "hs_lastmodifieddate", "contacts": "lastmodifieddate", "deals": "hs_lastmodifieddate"}
DATES = {"createdate", "hs_lastmodifieddate", "lastmodifieddate", "closedate"}
SEARCH_CAP = 10_000


def _error(message: str, category: str, **more: Any) -> dict[str, Any]:
    return {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category, **more}


def _millis(value: Any) -> float | None:
    if value in (None, ""):
        return None
    text = str(value)
    if text.lstrip("-").isdigit():
        return float(text)
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).timestamp() * 1000


def _compare(prop: str, actual: Any, wanted: Any) -> float | None:
    """actual - wanted, as numbers (dates in ms); None when they do not compare as numbers."""
    if prop in DATES:
        a, b = _millis(actual), _millis(wanted)
    else:
        try:
            a, b = float(actual), float(wanted)
        except (TypeError, ValueError):
            return None
    return None if a is None or b is None else a - b


def _holds(rec: dict[str, Any], f: dict[str, Any]) -> bool:
    prop, op, wanted = f.get("propertyName"), f.get("operator"), f.get("value")
    actual = rec["id"] if prop in ("hs_object_id", "id") else rec["properties"].get(prop)
    if op == "HAS_PROPERTY":
        return actual not in (None, "")
    if op == "NOT_HAS_PROPERTY":
        return actual in (None, "")
    if op in ("EQ", "NEQ"):
        same = str(actual).lower() == str(wanted).lower() if actual is not None else False
        return same if op == "EQ" else not same
    diff = _compare(str(prop), actual, wanted)
    if diff is None:
        return False
    return {"GT": diff > 0, "GTE": diff >= 0, "LT": diff < 0, "LTE": diff <= 0}.get(str(op), False)


class HubSpot:
    def __init__(self, sim: "RestSim") -> None:
        self.sim = sim

    def rows(self, obj: str) -> list[dict[str, Any]]:
        return self.sim.state.data["hubspot"][obj]

    def handle(self, req: "Request") -> "Reply":
        auth = req.headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if not token or (token != self.sim.options.client_secret and not self.sim.tokens.valid(token)):
            return 401, {}, _error("Authentication credentials not found. This API supports OAuth 2.0 "
                                   "authentication ...", "INVALID_AUTHENTICATION")
        parts = [p for p in req.path.split("/") if p]
        if parts[:3] != ["crm", "v3", "objects"] or len(parts) < 4 or parts[3] not in COLLECTIONS:
            return 404, {}, _error(f"Unable to infer object type from: {'/'.join(parts[3:4])}", "OBJECT_NOT_FOUND")
        obj, rest = parts[3], parts[4:]
        if not rest:
            if req.method == "GET":
                return self.list(req, obj)
            if req.method == "POST":
                return self.create(req, obj)
        elif rest == ["search"] and req.method == "POST":
            return self.search(req, obj)
        elif len(rest) == 1:
            return self.one(req, obj, rest[0])
        return 405, {}, _error(f"{req.method} is not allowed on {req.path}", "VALIDATION_ERROR")

    def _view(self, obj: str, rec: dict[str, Any], props: list[str] | None) -> dict[str, Any]:
        wanted = props or list(DEFAULTS[obj])
        return {**rec, "properties": {p: rec["properties"].get(p) for p in wanted}}

    def _paging(self, req: "Request", obj: str, after: int, total: int, **link: Any) -> dict[str, Any]:
        if after >= total:
            return {}
        query = urlencode({**req.query, "after": str(after)}) if link.get("get") else ""
        nxt: dict[str, Any] = {"after": str(after)}
        if query:
            nxt["link"] = f"{req.base_url}/crm/v3/objects/{obj}?{query}"
        return {"paging": {"next": nxt}}

    def list(self, req: "Request", obj: str) -> "Reply":
        limit = min(int(req.query.get("limit", 10)), 100)
        after = int(req.query.get("after") or 0)
        props = [p for p in req.query.get("properties", "").split(",") if p] or None
        archived = req.query.get("archived", "false") == "true"
        with self.sim.state.lock:
            rows = sorted((r for r in self.rows(obj) if bool(r["archived"]) == archived), key=lambda r: int(r["id"]))
        chunk = [self._view(obj, r, props) for r in rows[after:after + limit]]
        return 200, {}, {"results": chunk, **self._paging(req, obj, after + limit, len(rows), get=True)}

    def search(self, req: "Request", obj: str) -> "Reply":
        body = req.json() or {}
        limit, after = int(body.get("limit") or 10), int(body.get("after") or 0)
        if limit > 200:
            return 400, {}, _error("limit must be at most 200", "VALIDATION_ERROR")
        if after + limit > SEARCH_CAP:
            return 400, {}, _error(f"paging past {SEARCH_CAP} results is not supported; narrow the filters",
                                   "VALIDATION_ERROR")
        groups = body.get("filterGroups") or []
        with self.sim.state.lock:
            rows = [r for r in self.rows(obj) if not r["archived"]]
        if groups:
            rows = [r for r in rows if any(all(_holds(r, f) for f in g.get("filters") or []) for g in groups)]
        rows.sort(key=lambda r: int(r["id"]))
        for sort in reversed(body.get("sorts") or []):
            prop, desc = sort.get("propertyName"), sort.get("direction") == "DESCENDING"
            rows.sort(key=lambda r: (_millis(r["properties"].get(prop)) or 0) if prop in DATES
                      else str(r["properties"].get(prop) or ""), reverse=desc)
        props = body.get("properties") or None
        chunk = [self._view(obj, r, props) for r in rows[after:after + limit]]
        return 200, {}, {"total": len(rows), "results": chunk, **self._paging(req, obj, after + limit, len(rows))}

    def _invalid(self, obj: str, props: dict[str, Any]) -> "Reply | None":
        known = set(EXTRA[obj]) | set(DEFAULTS[obj])
        bad = [p for p in props if p not in known or p in ("hs_object_id", "createdate", MODIFIED[obj])]
        if not bad:
            return None
        details = [{"isValid": False, "message": f'Property "{p}" does not exist', "error": "PROPERTY_DOESNT_EXIST",
                    "name": p} for p in bad]
        return 400, {}, _error(f"Property values were not valid: {details}", "VALIDATION_ERROR")

    def _stamp(self) -> str:
        return iso_ms(datetime.fromtimestamp(self.sim.now(), timezone.utc))

    def create(self, req: "Request", obj: str) -> "Reply":
        body = req.json()
        props = body.get("properties") if isinstance(body, dict) else None
        if not isinstance(props, dict):
            return 400, {}, _error("Invalid input JSON: expected {\"properties\": {...}}", "VALIDATION_ERROR")
        bad = self._invalid(obj, props)
        if bad:
            return bad
        with self.sim.state.lock:
            data = self.sim.state.data
            n = data["next_id"][f"hubspot.{obj}"]
            data["next_id"][f"hubspot.{obj}"] = n + 1
            now = self._stamp()
            rec = {"id": str(n), "properties": {**{k: None if v is None else str(v) for k, v in props.items()},
                                                 "createdate": now, MODIFIED[obj]: now, "hs_object_id": str(n)},
                   "createdAt": now, "updatedAt": now, "archived": False}
            self.rows(obj).append(rec)
            self.sim.save()
        return 201, {}, self._view(obj, rec, list(rec["properties"]))

    def one(self, req: "Request", obj: str, object_id: str) -> "Reply":
        with self.sim.state.lock:
            rec = next((r for r in self.rows(obj) if r["id"] == object_id and not r["archived"]), None)
            if rec is None:
                return 404, {}, _error("resource not found", "OBJECT_NOT_FOUND")
            if req.method == "GET":
                props = [p for p in req.query.get("properties", "").split(",") if p] or None
                return 200, {}, self._view(obj, rec, props)
            if req.method == "DELETE":
                rec["archived"] = True
                rec["updatedAt"] = self._stamp()
                self.sim.save()
                return 204, {}, None
            if req.method != "PATCH":
                return 405, {}, _error(f"{req.method} is not allowed", "VALIDATION_ERROR")
            body = req.json()
            props = body.get("properties") if isinstance(body, dict) else None
            if not isinstance(props, dict):
                return 400, {}, _error("Invalid input JSON: expected {\"properties\": {...}}", "VALIDATION_ERROR")
            bad = self._invalid(obj, props)
            if bad:
                return bad
            now = self._stamp()
            rec["properties"].update({k: None if v is None else str(v) for k, v in props.items()})
            rec["properties"][MODIFIED[obj]] = now
            rec["updatedAt"] = now
            self.sim.save()
            return 200, {}, self._view(obj, rec, list(rec["properties"]))
