"""API tokens for the data API: random secrets shown once, stored as a SHA-256 digest, revocable, expiring.

A token acts as its user: the same roles (and denied fields) as that user on
the command line. Creating and revoking tokens is an admin action, audited.
"""
from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, insert, select, update

from hub import audit, durations
from hub.errors import NotFound, UsageError
from hub.models import ApiToken
from hub.types import new_id, utcnow

log = logging.getLogger(__name__)

PREFIX = "tri_"                        # tells a Triad token apart from a JWT, and helps secret scanners
TOUCH_EVERY = timedelta(minutes=1)     # last_used_at is refreshed at most this often (reads stay reads)
MAX_TTL = timedelta(days=36500)        # beyond that, say 'never'; also keeps now + ttl inside datetime's range


@dataclass(frozen=True)
class TokenInfo:
    id: str
    user: str
    name: str | None
    expires_at: datetime | None


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def parse_ttl(text: str | None) -> timedelta | None:
    """``30d``, ``12h``, ``2w`` ... (any :func:`hub.durations.parse` form), or ``never``/empty: no expiry."""
    if text is None or text.strip().lower() in ("", "never", "none"):
        return None
    # 0 is refused there, so it never reads as 'never': a token dead on arrival is a typo, not a wish
    return durations.parse(text, name="--expires", maximum=MAX_TTL, beyond="too far in the future",
                           otherwise=", or 'never' for a token that does not expire")


def create(engine: Engine, user: str, *, by: str, name: str | None = None,
           ttl: timedelta | None = None) -> dict[str, Any]:
    """Mint a token for ``user``; the returned ``token`` is the only time the secret is seen."""
    if not user.strip():
        raise UsageError("--user must name a user")
    secret = PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    row = {"id": new_id(), "user": user, "name": name, "token_hash": digest(secret), "created_at": now,
           "expires_at": now + ttl if ttl is not None else None, "revoked_at": None, "last_used_at": None}
    with engine.begin() as conn:
        conn.execute(insert(ApiToken.__table__), [row])
        audit.record(conn, by, "token.create", f"token:{row['id']}",
                     after={"user": user, "name": name, "expires_at": row["expires_at"]})
    return _public(row) | {"token": secret}


def list_tokens(engine: Engine, *, user: str | None = None, include_inactive: bool = False) -> list[dict[str, Any]]:
    """Tokens without their digests; by default only those that still work."""
    tt = ApiToken.__table__
    q = select(tt).order_by(tt.c.created_at, tt.c.id)
    if user:
        q = q.where(tt.c.user == user)
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(q).mappings()]
    now = utcnow()
    out = [_public(r) | {"state": _state(r, now)} for r in rows]
    return out if include_inactive else [r for r in out if r["state"] == "active"]


def revoke(engine: Engine, token_id: str, *, by: str) -> dict[str, Any]:
    tt = ApiToken.__table__
    with engine.begin() as conn:
        r = conn.execute(select(tt).where(tt.c.id == token_id)).mappings().first()
        if r is None:
            raise NotFound(f"no token {token_id} (see `triad tokens list`)")
        if r["revoked_at"] is not None:
            raise UsageError(f"token {token_id} was revoked already at {r['revoked_at']}")
        now = utcnow()
        conn.execute(update(tt).where(tt.c.id == token_id).values(revoked_at=now))
        audit.record(conn, by, "token.revoke", f"token:{token_id}", before={"user": r["user"], "name": r["name"]},
                     after={"revoked_at": now})
    return _public(dict(r)) | {"revoked_at": now}


_TT = ApiToken.__table__
_BY_HASH = select(_TT.c.id, _TT.c.user, _TT.c.name, _TT.c.expires_at, _TT.c.revoked_at,
                  _TT.c.last_used_at).where(_TT.c.token_hash == bindparam("h"))   # built once: every request runs it


def verify(engine: Engine, secret: str) -> TokenInfo | None:
    """The token's owner when ``secret`` is a live token; None when unknown, expired or revoked."""
    if not secret.startswith(PREFIX) or len(secret) > 200:
        return None
    with engine.connect() as conn:
        r = conn.execute(_BY_HASH, {"h": digest(secret)}).first()
    now = utcnow()
    if r is None or r.revoked_at is not None or (r.expires_at is not None and r.expires_at <= now):
        return None
    if r.last_used_at is None or now - r.last_used_at >= TOUCH_EVERY:
        _touch(engine, r.id, now)
    return TokenInfo(r.id, r.user, r.name, r.expires_at)


def _touch(engine: Engine, token_id: str, now: datetime) -> None:
    tt = ApiToken.__table__
    try:
        with engine.begin() as conn:
            conn.execute(update(tt).where(tt.c.id == token_id).values(last_used_at=now))
    except Exception as exc:  # bookkeeping must never fail a request
        log.warning("could not record the use of token %s: %s", token_id, exc)


def _state(r: dict[str, Any], now: datetime) -> str:
    if r["revoked_at"] is not None:
        return "revoked"
    if r["expires_at"] is not None and r["expires_at"] <= now:
        return "expired"
    return "active"


def _public(r: dict[str, Any]) -> dict[str, Any]:
    return {"id": r["id"], "user": r["user"], "name": r["name"], "created_at": r["created_at"],
            "expires_at": r["expires_at"], "revoked_at": r.get("revoked_at"), "last_used_at": r.get("last_used_at")}

