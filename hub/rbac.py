"""Role-based access for steward and admin commands (SPEC section 8).

Roles come from ``roles`` in triad.yaml (or the database, `triad users`), users
from ``users``. With no users configured anywhere Triad runs in single-user
mode: whoever runs it is admin. A refusal names the user, the action and what
is missing, and is itself audited.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine, select

from hub.canonical import ENTITIES
from hub.config import RoleConfig, TriadConfig
from hub.errors import PermissionDenied

ACTIONS = ("read", "resolve", "merge", "retry", "admin")
ADMIN = RoleConfig(entities=list(ENTITIES), fields_denied=[], can=list(ACTIONS))


@dataclass
class Principal:
    name: str
    roles: dict[str, RoleConfig] = field(default_factory=dict)
    single_user: bool = False

    def allowed_entities(self, action: str = "read") -> frozenset[str]:
        return frozenset(e for r in self.roles.values() if action in r.can or "admin" in r.can for e in r.entities)

    def denied_fields(self, entity: str) -> frozenset[str]:
        """Fields hidden from this user for the entity: denied by every role that grants the entity."""
        sets = [set(r.fields_denied) for r in self.roles.values() if entity in r.entities]
        return frozenset(set.intersection(*sets)) if sets else frozenset()

    def can(self, action: str, entity: str | None = None, field_name: str | None = None) -> bool:
        for r in self.roles.values():
            if action not in r.can and "admin" not in r.can:
                continue
            if entity and entity not in r.entities:
                continue
            if field_name and field_name in r.fields_denied:
                continue
            return True
        return False


def principal(engine: Engine | None, cfg: TriadConfig, user: str) -> Principal:
    roles_cfg = dict(cfg.roles)
    assigned: list[str] | None = cfg.users.get(user)
    db_users: dict[str, list[str]] = {}
    if engine is not None:
        db_users, db_roles = _from_db(engine)
        for name, rc in db_roles.items():
            roles_cfg.setdefault(name, rc)
        if assigned is None and user in db_users:
            assigned = db_users[user]
    if not cfg.users and not db_users:
        return Principal(user, {"admin": ADMIN}, single_user=True)
    roles = {}
    for name in assigned or []:
        roles[name] = ADMIN if name == "admin" else roles_cfg.get(name, RoleConfig(entities=[], can=[]))
    return Principal(user, roles)


def _from_db(engine: Engine) -> tuple[dict[str, list[str]], dict[str, RoleConfig]]:
    from hub.models import Principal as P, PrincipalRole, Role
    pt, prt, rt = P.__table__, PrincipalRole.__table__, Role.__table__
    users: dict[str, list[str]] = {}
    roles: dict[str, RoleConfig] = {}
    with engine.connect() as conn:
        for r in conn.execute(select(pt.c.name).where(pt.c.disabled.is_(False))):
            users.setdefault(r.name, [])
        for r in conn.execute(select(prt.c.principal, prt.c.role)):
            if r.principal in users:
                users[r.principal].append(r.role)
        for r in conn.execute(select(rt)):
            roles[r.name] = RoleConfig(entities=list(r.entities), fields_denied=list(r.fields_denied), can=list(r.can))
    return users, roles


def require(engine: Engine | None, p: Principal, action: str, entity: str | None = None,
            field_name: str | None = None, target: str | None = None) -> None:
    """Raise PermissionDenied (exit 2) unless ``p`` may do ``action``; a refusal is audited.
    An entity that does not exist is a usage error, not a refusal (nor an audited denial)."""
    if entity is not None:
        from hub.canonical import entity as entity_def
        entity_def(entity)
    if p.can(action, entity, field_name):
        return
    what = action + (f" {entity}" if entity else "") + (f".{field_name}" if field_name else "")
    if not p.roles:
        why = "no roles are assigned to this user"
    elif entity and not any(entity in r.entities for r in p.roles.values()):
        why = f"none of the roles ({', '.join(p.roles)}) covers {entity}"
    elif field_name and all(field_name in r.fields_denied for r in p.roles.values() if entity in r.entities):
        why = f"the field {field_name} is denied to the roles {', '.join(p.roles)}"
    else:
        why = f"none of the roles ({', '.join(p.roles)}) has the '{action}' permission"
    if engine is not None:
        from hub import audit
        try:
            with engine.begin() as conn:
                audit.record(conn, p.name, f"denied:{action}", target or entity, after={"missing": what}, outcome="denied")
        except Exception:  # an unmigrated store must not hide the refusal itself
            pass
    raise PermissionDenied(f"permission denied: user '{p.name}' may not {what}: {why} "
                           f"(missing permission '{action}'{' on ' + entity if entity else ''})")
