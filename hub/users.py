"""Principals and roles kept in the database (`triad users ...`), beside those in triad.yaml."""
from __future__ import annotations

import difflib

from typing import Any

from sqlalchemy import Connection, delete, func, select

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
    _check_name(name, "user")
    _not_in_config(cfg, name)
    if conn.scalar(select(func.count()).select_from(pt).where(pt.c.name == name)):
        raise UsageError(f"user '{name}' exists already")
    # counted, not fetched: a falsy name must not make the store look empty
    first = not cfg.users and not conn.scalar(select(func.count()).select_from(pt))
    rows = [{"name": name, "created_at": utcnow(), "disabled": False}]
    if first and actor != name:
        rows.append({"name": actor, "created_at": utcnow(), "disabled": False})
    conn.execute(pt.insert(), rows)
    if first:
        conn.execute(PrincipalRole.__table__.insert(), [{"principal": actor, "role": "admin"}])
        audit.record(conn, actor, "users.grant", f"user:{actor}", after={"role": "admin", "why": "first user"})
    audit.record(conn, actor, "users.add", f"user:{name}", after={"name": name})


def define_role(conn: Connection, actor: str, name: str, entities: list[str], fields_denied: list[str],
                can: list[str], *, cfg: TriadConfig | None = None) -> None:
    """Create or redefine a database role; refused when that would leave nobody an admin.

    Without ``cfg`` only the database's roles and admins are known, so the admin check errs on the side of refusing.
    """
    _check_name(name, "role", _ROLE_MAX)
    if cfg is not None and name in cfg.roles:   # the config's role of that name wins: a database one would do nothing
        raise UsageError(f"role '{name}' is defined in {_config_file(cfg)} (`roles:`), which wins over the database: "
                         f"change it there or pick another name")
    for e in entities:
        if e not in ENTITIES:
            raise UsageError(f"--entity {e}: unknown entity; known: {', '.join(ENTITIES)}")
    for a in can:
        if a not in ACTIONS:
            raise UsageError(f"--can {a}: unknown action; known: {', '.join(ACTIONS)}")
    covered = entities or list(ENTITIES)
    fields = sorted({f for e in covered for f in ENTITIES[e].fields})
    for f in fields_denied:   # a typo would leave the field it meant to hide visible
        if f not in fields:
            close = difflib.get_close_matches(f, fields, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise UsageError(f"--deny-field {f}: not a field of {', '.join(covered)}{hint}")
    rt = Role.__table__
    before = conn.execute(select(rt).where(rt.c.name == name)).mappings().first()
    row = {"name": name, "entities": entities or list(ENTITIES), "fields_denied": fields_denied, "can": can or ["read"]}
    admins = _admins(conn, cfg)
    upsert(conn, rt, [row], ["name"])
    _keep_an_admin(conn, cfg, admins, f"redefining the role '{name}' without the 'admin' action")
    audit.record(conn, actor, "users.role", f"role:{name}", before=dict(before) if before else None, after=row)


def grant(conn: Connection, cfg: TriadConfig, actor: str, name: str, role: str) -> None:
    _not_in_config(cfg, name)   # the config's roles win, so a database grant would do nothing
    _require_user(conn, name)
    rt = Role.__table__
    if role != "admin" and role not in cfg.roles and not conn.scalar(select(rt.c.name).where(rt.c.name == role)):
        known = sorted(set(cfg.roles) | {r for (r,) in conn.execute(select(rt.c.name))} | {"admin"})
        raise UsageError(f"unknown role '{role}'; known: {', '.join(known)}")
    upsert(conn, PrincipalRole.__table__, [{"principal": name, "role": role}], ["principal", "role"], [])
    audit.record(conn, actor, "users.grant", f"user:{name}", after={"role": role})


def revoke(conn: Connection, actor: str, name: str, role: str, *, cfg: TriadConfig | None = None) -> None:
    """Take a database role away; refused when it would leave nobody an admin.

    Without ``cfg`` only the database's admins are counted, so the check errs on the side of refusing.
    """
    if cfg is not None:
        _not_in_config(cfg, name)
    _require_user(conn, name)
    admins = _admins(conn, cfg)
    prt = PrincipalRole.__table__
    res = conn.execute(delete(prt).where(prt.c.principal == name, prt.c.role == role))
    if res.rowcount == 0:
        raise UsageError(f"user '{name}' does not have the role '{role}'")
    _keep_an_admin(conn, cfg, admins, f"revoking '{role}' from '{name}'")
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


_NAME_MAX, _ROLE_MAX = 128, 64   # the principal.name and role.name column widths


def _check_name(name: str, what: str, limit: int = _NAME_MAX) -> None:
    """A user or role name: what `--user` can say and a listing can show (no blanks, no control characters)."""
    if not name or len(name) > limit or any(ch.isspace() or not ch.isprintable() for ch in name):
        example = "alice, erp-sync, bob@example.com" if what == "user" else "steward_sales, finance"
        raise UsageError(f"{what} name {name!r}: expected 1 to {limit} printable characters without spaces or "
                         f"control characters (letters, digits, . _ - @ and the like; e.g. {example})")


def _not_in_config(cfg: TriadConfig, name: str) -> None:
    if name in cfg.users:
        raise UsageError(f"user '{name}' is defined in {_config_file(cfg)} (`users:`), whose roles win over "
                         f"the database's: change {name}'s roles there")


def _config_file(cfg: TriadConfig) -> str:
    return str(cfg.path) if cfg.path else "triad.yaml"


def _admins(conn: Connection, cfg: TriadConfig | None) -> set[str]:
    """Who may run admin commands, as :func:`hub.rbac.principal` decides it: a user listed in the config
    has the config's roles, any other enabled database user its database roles; a role is admin by name
    or by the 'admin' action, a config role shadowing a database role of the same name."""
    pt, prt, rt = Principal.__table__, PrincipalRole.__table__, Role.__table__
    can = {r.name: list(r.can) for r in conn.execute(select(rt.c.name, rt.c.can))}
    users: dict[str, list[str]] = {}
    if cfg is not None:
        can.update({n: list(rc.can) for n, rc in cfg.roles.items()})
        users = {n: list(roles) for n, roles in cfg.users.items()}
    enabled = {n for (n,) in conn.execute(select(pt.c.name).where(pt.c.disabled.is_(False)))}
    for r in conn.execute(select(prt.c.principal, prt.c.role)):
        if r.principal in enabled and (cfg is None or r.principal not in cfg.users):
            users.setdefault(r.principal, []).append(r.role)
    return {n for n, roles in users.items() if any(r == "admin" or "admin" in can.get(r, []) for r in roles)}


def _keep_an_admin(conn: Connection, cfg: TriadConfig | None, before: set[str], change: str) -> None:
    """Raise (the caller's transaction rolls the change back) when ``change`` removed the last admin:
    nobody could run `triad users` any more to put one back."""
    if before and not _admins(conn, cfg):
        last = f"{', '.join(sorted(before))} {'is the last one' if len(before) == 1 else 'are the last ones'}"
        raise UsageError(f"{change} would leave no admin ({last}); grant admin to another user first "
                         f"(`triad users grant NAME admin`)")
