"""The generic routes of the REST simulator: one collection, paged by the route's prefix, and its writes."""
from __future__ import annotations

import base64
import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from connectors.rest.sim_data import COLLECTIONS, iso

if TYPE_CHECKING:
    from connectors.rest.simulator import Reply, Request, RestSim

PAGING = ("page", "offset", "cursor", "link", "linkheader", "all")
MAX_PAGE = 100
REQUIRED = {"companies": ("name",), "contacts": ("last_name",), "deals": ("title",)}
READONLY = ("id", "created_at", "updated_at")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def error(code: str, message: str, **more: Any) -> dict[str, Any]:
    """The simulator's error body (also answered with HTTP 200 on ``/errors``)."""
    return {"status": "error", "code": code, "message": message, **more}


def _when(value: str) -> datetime:
    text = value.strip()
    text = text[:11] + text[11:].replace(" ", "+")     # an unencoded "+" of an offset arrives as a space
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _size(req: "Request", name: str, default: int = 20) -> int:
    size = int(req.query.get(name, default))
    if size < 1:
        raise ValueError(f"{name} must be at least 1")
    return min(size, MAX_PAGE)


class Generic:
    """``/<paging>/<collection>[/<id>|/upsert]``, ``/errors/<collection>``, ``/flaky/<collection>``."""

    def __init__(self, sim: "RestSim") -> None:
        self.sim = sim

    def rows(self, collection: str) -> list[dict[str, Any]]:
        return self.sim.state.data[collection]

    def handle(self, req: "Request", parts: list[str]) -> "Reply":
        if len(parts) < 2 or parts[1] not in COLLECTIONS:
            return 404, {}, error("NOT_FOUND", f"no route {req.path}; collections: {', '.join(COLLECTIONS)}")
        prefix, collection, rest = parts[0], parts[1], parts[2:]
        if prefix == "errors":
            code = req.query.get("code", "INVALID_REQUEST")
            return 200, {}, error(code, f"simulated error {code} on {collection}")
        if prefix == "flaky":
            with self.sim.lock:
                self.sim.flaky_calls += 1
                odd = self.sim.flaky_calls % 2 == 1
            if odd:
                return 200, {}, error("BUSY", "the server is busy, try again")
            prefix = "page"
        if prefix not in PAGING:
            return 404, {}, error("NOT_FOUND", f"unknown route prefix '{prefix}'; paging: {', '.join(PAGING)}")
        if not rest:
            if req.method == "GET":
                return self.list(req, prefix, collection)
            if req.method == "POST":
                return self.create(req, collection)
        elif rest == ["upsert"] and req.method == "POST":
            return self.upsert(req, collection)
        elif len(rest) == 1:
            return self.one(req, collection, rest[0])
        return 405, {}, error("METHOD_NOT_ALLOWED", f"{req.method} {req.path}")

    # -- reads --------------------------------------------------------------------------------------
    def _selected(self, req: "Request", collection: str) -> list[dict[str, Any]]:
        with self.sim.state.lock:
            rows = list(self.rows(collection))
        since = req.query.get("updated_since")
        if since:
            low = _when(since)
            rows = sorted((r for r in rows if _when(r["updated_at"]) >= low), key=lambda r: (r["updated_at"], r["id"]))
        else:
            rows.sort(key=lambda r: r["id"])
        return rows

    def list(self, req: "Request", style: str, collection: str) -> "Reply":
        rows = self._selected(req, collection)
        total = len(rows)
        if style == "all":
            return 200, {}, {"records": rows}
        if style == "offset":
            offset, limit = int(req.query.get("offset", 0)), _size(req, "limit")
            return 200, {}, {"items": rows[offset:offset + limit], "total": total, "offset": offset, "limit": limit}
        if style == "cursor":
            token = req.query.get("cursor") or ""
            try:
                start = int(base64.urlsafe_b64decode(token.encode()).decode().split(":")[1]) if token else 0
            except (ValueError, IndexError) as exc:
                raise ValueError(f"bad cursor {token!r}") from exc
            limit = _size(req, "limit")
            chunk, end = rows[start:start + limit], start + limit
            nxt = base64.urlsafe_b64encode(f"o:{end}".encode()).decode() if end < total else None
            return 200, {}, {"results": chunk, "next_cursor": nxt, "has_more": nxt is not None}
        page, per = int(req.query.get("page", 1)), _size(req, "per_page")
        if page < 1:
            raise ValueError("page starts at 1")
        chunk = rows[(page - 1) * per:page * per]
        pages = max(1, -(-total // per))
        if style == "page":
            return 200, {}, {"data": chunk, "meta": {"page": page, "per_page": per, "total": total,
                                                     "total_pages": pages}}
        nxt = self._link(req, page + 1) if page < pages else None
        if style == "link":
            return 200, {}, {"data": chunk, "links": {"self": self._link(req, page), "next": nxt}}
        links = [f'<{self._link(req, 1)}>; rel="first"'] + ([f'<{nxt}>; rel="next"'] if nxt else [])
        return 200, {"Link": ", ".join(links)}, chunk

    @staticmethod
    def _link(req: "Request", page: int) -> str:
        from urllib.parse import urlencode
        return f"{req.base_url}{req.path}?{urlencode({**req.query, 'page': page})}"

    # -- writes -------------------------------------------------------------------------------------
    def _find(self, collection: str, record_id: str) -> dict[str, Any] | None:
        return next((r for r in self.rows(collection) if r["id"] == record_id), None)

    def _check(self, collection: str, rec: dict[str, Any]) -> str | None:
        for name in REQUIRED[collection]:
            if not str(rec.get(name) or "").strip():
                return name
        if rec.get("email") and not _EMAIL.match(str(rec["email"])):
            return "email"
        return None

    def _invalid(self, name: str) -> "Reply":
        return 422, {}, error("VALIDATION", f"{name} is missing or invalid", field=name)

    def _new(self, collection: str, values: dict[str, Any]) -> dict[str, Any]:
        data = self.sim.state.data
        n = data["next_id"][collection]
        data["next_id"][collection] = n + 1
        stamp = iso(datetime.fromtimestamp(self.sim.now(), timezone.utc))
        rec = {"id": f"{collection[:2]}-{n:05d}", **values, "created_at": stamp, "updated_at": stamp}
        self.rows(collection).append(rec)
        return rec

    def create(self, req: "Request", collection: str) -> "Reply":
        body = req.json()
        if not isinstance(body, dict):
            raise ValueError("expected a JSON object")
        key = req.headers.get("idempotency-key")
        with self.sim.state.lock:
            if key and key in self.sim.idempotent:
                return self.sim.idempotent[key]
            values = {k: v for k, v in body.items() if k not in READONLY}
            bad = self._check(collection, values)
            if bad:
                return self._invalid(bad)
            reply: "Reply" = (201, {}, self._new(collection, values))
            if key:
                self.sim.idempotent[key] = reply
            self.sim.save()
        return reply

    def upsert(self, req: "Request", collection: str) -> "Reply":
        on = req.query.get("on", "code")
        body = req.json()
        if not isinstance(body, dict) or body.get(on) in (None, ""):
            return self._invalid(on)
        values = {k: v for k, v in body.items() if k not in READONLY}
        with self.sim.state.lock:
            found = next((r for r in self.rows(collection) if str(r.get(on)) == str(body[on])), None)
            if found is None:
                bad = self._check(collection, values)
                if bad:
                    return self._invalid(bad)
                rec, status = self._new(collection, values), 201
            else:
                merged = {**found, **values}
                bad = self._check(collection, merged)
                if bad:
                    return self._invalid(bad)
                found.update(values, updated_at=iso(datetime.fromtimestamp(self.sim.now(), timezone.utc)))
                rec, status = found, 200
            self.sim.save()
        return status, {}, dict(rec)

    def one(self, req: "Request", collection: str, record_id: str) -> "Reply":
        with self.sim.state.lock:
            rec = self._find(collection, record_id)
            if rec is None:
                return 404, {}, error("NOT_FOUND", f"{collection} {record_id} does not exist")
            if req.method == "GET":
                return 200, {}, dict(rec)
            if req.method == "DELETE":
                self.rows(collection).remove(rec)
                self.sim.save()
                return 204, {}, None
            if req.method not in ("PATCH", "PUT"):
                return 405, {}, error("METHOD_NOT_ALLOWED", f"{req.method} {req.path}")
            body = req.json()
            if not isinstance(body, dict):
                raise ValueError("expected a JSON object")
            values = {k: v for k, v in body.items() if k not in READONLY}
            kept = {k: rec[k] for k in READONLY}
            merged = {**rec, **values} if req.method == "PATCH" else {**values, **kept}
            bad = self._check(collection, merged)
            if bad:
                return self._invalid(bad)
            rec.clear()
            rec.update(merged, updated_at=iso(datetime.fromtimestamp(self.sim.now(), timezone.utc)))
            self.sim.save()
            return 200, {}, dict(rec)
