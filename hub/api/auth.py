"""Who is calling: an API token (``triad tokens create``) or an OIDC bearer JWT, mapped to Triad roles.

Every refusal is the same 401 with a generic body, whatever went wrong
(missing, unknown, expired, revoked, bad signature, wrong issuer or
audience): the caller learns nothing about which tokens exist. The reason is
logged on the server, never the token.

OIDC is configured under ``serve.oidc`` in triad.yaml::

    serve:
      oidc:
        issuer: https://login.example.com/
        audience: triad
        jwks_url: https://login.example.com/.well-known/jwks.json   # or jwks_file: ./jwks.json
        roles_claim: groups                                        # a list (or space-separated string) claim
        role_map: {triad-stewards: steward_sales, triad-admins: admin}
"""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hub.api.common import context, reader
from hub.config import TriadConfig
from hub.errors import ConfigError, TriadError
from hub.rbac import ADMIN, Principal, principal

log = logging.getLogger(__name__)

bearer = HTTPBearer(auto_error=False, description="An API token (`triad tokens create`) or an OIDC access token.")
ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
REFRESH_AT_MOST_EVERY = 60.0   # seconds between JWKS re-fetches for an unknown key id
PRINCIPAL_TTL = 5.0            # seconds a user's roles are reused between requests


class OidcConfig(BaseModel):
    """``serve.oidc``: the identity provider whose JWTs the API accepts."""

    model_config = ConfigDict(extra="forbid")
    issuer: str
    audience: str | list[str]
    jwks_url: str | None = None
    jwks_file: str | None = None
    roles_claim: str = "groups"              # dotted path for nested claims (realm_access.roles)
    role_map: dict[str, str | list[str]] = Field(default_factory=dict)
    user_claim: str = "sub"
    algorithms: list[str] = Field(default_factory=lambda: ["RS256"])
    leeway_seconds: float = Field(default=30.0, ge=0, le=600)
    jwks_cache_seconds: float = Field(default=300.0, gt=0)

    @field_validator("algorithms")
    @classmethod
    def _asymmetric(cls, v: list[str]) -> list[str]:
        bad = [a for a in v if a not in ASYMMETRIC]
        if bad or not v:   # HS* would let anyone holding the public key sign; "none" signs nothing
            raise ValueError(f"only asymmetric algorithms are accepted ({', '.join(ASYMMETRIC)}); got {v}")
        return v

    @model_validator(mode="after")
    def _one_source(self) -> "OidcConfig":
        if bool(self.jwks_url) == bool(self.jwks_file):
            raise ValueError("give exactly one of jwks_url and jwks_file")
        return self


def oidc_config(cfg: TriadConfig) -> OidcConfig | None:
    """The validated ``serve.oidc`` section, or None when SSO is not configured.

    Raises:
        ConfigError: naming the file and the key path of each problem.
    """
    raw = cfg.serve.oidc
    if raw is None:
        return None
    file = str(cfg.path or "triad.yaml")
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: serve.oidc: expected a mapping (issuer, audience, jwks_url or jwks_file ...)")
    try:
        return OidcConfig.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for e in exc.errors():
            where = ".".join(str(p) for p in ("serve", "oidc", *e["loc"]))
            msg = {"extra_forbidden": "unknown key", "missing": "required key is missing"}.get(
                e["type"], e["msg"].removeprefix("Value error, "))
            lines.append(f"{file}: {where}: {msg}")
        raise ConfigError("\n".join(lines)) from None


@dataclass
class Caller:
    """The authenticated principal of a request and how it proved who it is."""

    principal: Principal
    via: str            # token:<id> | oidc

    @property
    def name(self) -> str:
        return self.principal.name


def unauthorized() -> HTTPException:
    return HTTPException(401, "authentication required: send a valid bearer token",
                         headers={"WWW-Authenticate": 'Bearer realm="triad"'})


Credentials = Annotated[Optional[HTTPAuthorizationCredentials], Depends(bearer)]


async def as_caller(request: Request, credentials: HTTPAuthorizationCredentials | None,
                    fn: Callable[..., Any], *args: Any) -> Any:
    """Authenticate, then run ``fn(request, caller, *args)``, both in one worker thread (one hand-off per request).

    Every endpoint goes through here: there is no way to reach ``fn`` without a caller.
    """
    def work() -> Any:
        return fn(request, authenticate(request, credentials), *args)
    return await run_in_threadpool(work)


def authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Caller:
    """The request's caller; 401 (generic) for anything but a valid token or JWT."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise unauthorized()
    token = credentials.credentials
    cfg = context(request).config(required=False)
    if token.count(".") == 2:
        caller = _from_jwt(request, cfg, token)
    else:
        from hub import tokens
        info = tokens.verify(reader(request), token)
        if info is None:
            log.info("refused an API token (unknown, expired or revoked) from %s", _client(request))
            raise unauthorized()
        caller = Caller(_principal(request, cfg, info.user), f"token:{info.id}")
    request.state.caller = caller
    return caller


def _principal(request: Request, cfg: TriadConfig, user: str) -> Principal:
    """The user's roles, kept for a few seconds: three queries less per request (grants apply within seconds).

    The token itself is checked on every request, so a revocation applies at once.
    """
    cache: dict[str, tuple[float, Principal]] | None = getattr(request.app.state, "triad_principals", None)
    if cache is None:
        cache = request.app.state.triad_principals = {}
    now = time.monotonic()
    hit = cache.get(user)
    if hit is not None and hit[0] > now:
        return hit[1]
    p = principal(reader(request), cfg, user)
    if len(cache) > 10_000:     # many distinct users: start over rather than grow without bound
        cache.clear()
    cache[user] = (now + PRINCIPAL_TTL, p)
    return p


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


# --- OIDC JWTs ---------------------------------------------------------------------------------------

class KeySet:
    """The provider's signing keys, cached; an unknown key id triggers one re-fetch (key rotation)."""

    def __init__(self, oidc: OidcConfig, base_dir: Path) -> None:
        self.oidc, self.base_dir = oidc, base_dir
        self.keys: dict[str, Any] = {}
        self.loaded_at = 0.0
        self.lock = threading.Lock()

    def key(self, kid: str | None) -> Any:
        with self.lock:
            age = time.monotonic() - self.loaded_at
            # a file is cheap to read again; a provider's URL is asked at most once a minute for new key ids
            refetch = kid not in self.keys and (self.oidc.jwks_file or age > REFRESH_AT_MOST_EVERY)
            if age > self.oidc.jwks_cache_seconds or refetch:
                self._load()
            if kid is None and len(self.keys) == 1:
                return next(iter(self.keys.values()))
            return self.keys.get(kid) if kid is not None else None

    def _load(self) -> None:
        import jwt
        if self.oidc.jwks_file:
            path = Path(self.oidc.jwks_file)
            path = path if path.is_absolute() else self.base_dir / path
            data = json.loads(path.read_text(encoding="utf-8"))
        else:
            from hub.http import HttpClient, RetryPolicy
            client = HttpClient(self.oidc.jwks_url or "", policy=RetryPolicy(attempts=2, timeout=5.0), name="oidc-jwks")
            try:
                data = client.json("GET", self.oidc.jwks_url or "")
            finally:
                client.close()
        keys = {}
        for jwk in data.get("keys", []):
            if jwk.get("use", "sig") != "sig":
                continue
            try:
                keys[jwk.get("kid")] = jwt.PyJWK(jwk).key
            except jwt.PyJWTError as exc:
                log.warning("skipping an unusable JWKS key %s: %s", jwk.get("kid"), exc)
        self.keys, self.loaded_at = keys, time.monotonic()


def _keyset(request: Request, oidc: OidcConfig, cfg: TriadConfig) -> KeySet:
    state = request.app.state
    ks = getattr(state, "triad_jwks", None)
    if ks is None or ks.oidc != oidc:
        ks = KeySet(oidc, cfg.base_dir)
        state.triad_jwks = ks
    return ks


def _from_jwt(request: Request, cfg: TriadConfig, token: str) -> Caller:
    import jwt
    oidc = oidc_config(cfg)     # a broken serve.oidc is the server's fault: 500 and logged, not a 401
    if oidc is None:
        log.info("refused a JWT from %s: serve.oidc is not configured", _client(request))
        raise unauthorized()
    try:
        header = jwt.get_unverified_header(token)
        key = _keyset(request, oidc, cfg).key(header.get("kid"))
        if key is None:
            raise jwt.InvalidKeyError("no signing key with this key id in the JWKS")
        claims = jwt.decode(token, key, algorithms=oidc.algorithms, audience=oidc.audience, issuer=oidc.issuer,
                            leeway=oidc.leeway_seconds, options={"require": ["exp", "iss", "aud"]})
    except (jwt.PyJWTError, ValueError, OSError, TriadError) as exc:   # TriadError: the JWKS URL failed
        log.info("refused a JWT from %s: %s", _client(request), type(exc).__name__)
        raise unauthorized() from None
    user = _claim(claims, oidc.user_claim)
    if not isinstance(user, str) or not user:
        log.info("refused a JWT from %s: no '%s' claim", _client(request), oidc.user_claim)
        raise unauthorized()
    return Caller(Principal(user, _roles(request, cfg, oidc, claims)), "oidc")


def _claim(claims: dict[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _roles(request: Request, cfg: TriadConfig, oidc: OidcConfig, claims: dict[str, Any]) -> dict[str, Any]:
    groups = _claim(claims, oidc.roles_claim)
    if isinstance(groups, str):
        groups = groups.replace(",", " ").split()
    names: list[str] = []
    for g in groups if isinstance(groups, list) else []:
        mapped = oidc.role_map.get(str(g))
        names += [mapped] if isinstance(mapped, str) else list(mapped or [])
    roles: dict[str, Any] = {}
    db_roles: dict[str, Any] | None = None
    for name in names:
        if name == "admin":
            roles[name] = ADMIN
        elif name in cfg.roles:
            roles[name] = cfg.roles[name]
        else:
            if db_roles is None:
                from hub.rbac import _from_db   # roles kept in the database (`triad users`)
                db_roles = _from_db(reader(request))[1]
            if name in db_roles:
                roles[name] = db_roles[name]
            else:
                log.warning("serve.oidc.role_map names role '%s', which is not defined", name)
    return roles
