"""Principals and roles kept in the database (`triad users ...`), beside those in triad.yaml."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, select

from hub import audit
from hub.canonical import ENTITIES
from hub.config import TriadConfig
from hub.errors import NotFound, UsageError
from hub.models import Principal, PrincipalRole, Role
from hub.rbac import ACTIONS
from hub.sqlutil import upsert
from hub.types import utcnow


def add_user(conn: Connection, cfg: TriadConfig, actor: str, name: str) -> None:
    """Add a user. The first user added in single-user mode ends that mode, so the one adding it
    is made an admin in the same step: nobody is locked out."""
    pt = Principal.__table__
    if conn.scalar(select(pt.c.name).where(pt.c.name == name)):
        raise UsageError(f"user '{name}' exists already")
    first = not cfg.users and not conn.scalar(select(pt.c.name).limit(1))
    rows = [{"name": name, "created_at": utcnow(), "disabled": False}]
    if first and actor != name:
        rows.append({"name": actor, "created_at": utcnow(), "disabled": False})
    conn.execute(pt.insert(), rows)
    if first:
        conn.execute(PrincipalRole.__table__.insert(), [{"principal": actor, "role": "admin"}])
        audit.record(conn, actor, "users.grant", f"user:{actor}", after={"role": "admin", "why": "first user"})
    audit.record(conn, actor, "users.add", f"user:{name}", after={"name": name})


def define_role(conn: Connection, actor: str, name: str, entities: list[str], fields_denied: list[str],
                can: list[str]) -> None:
    for e in entities:
        if e not in ENTITIES:
            raise UsageError(f"--entity {e}: unknown entity; known: {', '.join(ENTITIES)}")
    for a in can:
        if a not in ACTIONS:
            raise UsageError(f"--can {a}: unknown action; known: {', '.join(ACTIONS)}")
    rt = Role.__table__
    before = conn.execute(select(rt).where(rt.c.name == name)).mappings().first()
    row = {"name": name, "entities": entities or list(ENTITIES), "fields_denied": fields_denied, "can": can or ["read"]}
    upsert(conn, rt, [row], ["name"])
    audit.record(conn, actor, "users.role", f"role:{name}", before=dict(before) if before else None, after=row)


def grant(conn: Connection, cfg: TriadConfig, actor: str, name: str, role: str) -> None:
    _require_user(conn, name)
    rt = Role.__table__
    if role != "admin" and role not in cfg.roles and not conn.scalar(select(rt.c.name).where(rt.c.name == role)):
        known = sorted(set(cfg.roles) | {r for (r,) in conn.execute(select(rt.c.name))} | {"admin"})
        raise UsageError(f"unknown role '{role}'; known: {', '.join(known)}")
    upsert(conn, PrincipalRole.__table__, [{"principal": name, "role": role}], ["principal", "role"], [])
    audit.record(conn, actor, "users.grant", f"user:{name}", after={"role": role})


def revoke(conn: Connection, actor: str, name: str, role: str) -> None:
    _require_user(conn, name)
    prt = PrincipalRole.__table__
    res = conn.execute(delete(prt).where(prt.c.principal == name, prt.c.role == role))
    if res.rowcount == 0:
        raise UsageError(f"user '{name}' does not have the role '{role}'")
    audit.record(conn, actor, "users.revoke", f"user:{name}", before={"role": role})


def list_users(conn: Connection, cfg: TriadConfig) -> list[dict[str, Any]]:
    pt, prt = Principal.__table__, PrincipalRole.__table__
    roles: dict[str, list[str]] = {}
    for r in conn.execute(select(prt)):
        roles.setdefault(r.principal, []).append(r.role)
    out = [{"name": n, "roles": sorted(r), "source": "config"} for n, r in cfg.users.items()]
    out += [{"name": r.name, "roles": sorted(roles.get(r.name, [])), "source": "database", "disabled": r.disabled}
            for r in conn.execute(select(pt).order_by(pt.c.name)) if r.name not in cfg.users]
    return out


def _require_user(conn: Connection, name: str) -> None:
    pt = Principal.__table__
    if not conn.scalar(select(pt.c.name).where(pt.c.name == name)):
        raise NotFound(f"no user '{name}' in the database (add it with `triad users add {name}`)")
