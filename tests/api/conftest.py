"""Fixtures for the data API: a project synced once from the sample exports (copied per test), users
with different roles, API tokens for them, an RSA key with its JWKS file, and the app in-process."""
from __future__ import annotations

import json
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest
from click.testing import CliRunner

ISSUER = "https://idp.triad.test/"
AUDIENCE = "triad-api"
KID = "test-key-1"

API_CONFIG = """
users:
  alice: [admin]
  bob: [steward_sales]
  fin: [finance]
  viewer: [viewer]
  nobody: []
serve:
  oidc:
    issuer: {issuer}
    audience: {audience}
    jwks_file: jwks.json
    roles_claim: groups
    role_map: {{triad-stewards: steward_sales, triad-admins: admin}}
"""
ROLES = "  viewer: {entities: [customer, order], can: [read]}\n"


def _clean_env(mp: pytest.MonkeyPatch) -> None:
    for var in ("TRIAD_DATABASE_URL", "TRIAD_CONFIG", "TRIAD_USER"):
        mp.delenv(var, raising=False)


@pytest.fixture(scope="session")
def seed_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`triad init` + `triad sync run` once: customers, orders, conflicts, quarantine, history."""
    from cli import main
    mp = pytest.MonkeyPatch()
    _clean_env(mp)
    root = tmp_path_factory.mktemp("seed") / "p"
    try:
        r = CliRunner().invoke(main, ["init", str(root)])
        assert r.exit_code == 0, r.output
        r = CliRunner().invoke(main, ["--config", str(root / "triad.yaml"), "--json", "sync", "run"])
        assert r.exit_code == 0, r.output
    finally:
        mp.undo()
    return root


@pytest.fixture(scope="session")
def rsa_keys() -> dict[str, Any]:
    from cryptography.hazmat.primitives.asymmetric import rsa
    good = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {"good": good, "other": other}


def jwks_of(private_key: Any, kid: str = KID) -> dict[str, Any]:
    from jwt.algorithms import RSAAlgorithm
    jwk = json.loads(RSAAlgorithm.to_jwk(private_key.public_key()))
    return {"keys": [dict(jwk, kid=kid, use="sig", alg="RS256")]}


@dataclass
class Api:
    """The app in-process with a token per user."""

    root: Path
    ctx: Any
    app: Any
    client: Any
    keys: dict[str, Any]
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def engine(self) -> Any:
        return self.ctx.engine()

    def h(self, user: str = "alice") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def get(self, path: str, user: str = "alice", **kw: Any) -> Any:
        return self.client.get("/api/v1" + path, headers=self.h(user), **kw)

    def post(self, path: str, user: str = "alice", **kw: Any) -> Any:
        return self.client.post("/api/v1" + path, headers=self.h(user), **kw)

    def jwt(self, *, key: str = "good", kid: str | None = KID, alg: str = "RS256", **claims: Any) -> str:
        import jwt
        now = int(time.time())
        body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "sso-user", "iat": now, "exp": now + 300,
                "groups": ["triad-stewards"]}
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        headers = {"kid": kid} if kid else {}
        signer = self.keys[key] if key in self.keys else key
        return jwt.encode(body, signer, algorithm=alg, headers=headers)


def make_api(root: Path, keys: dict[str, Any], mp: pytest.MonkeyPatch, store_url: str | None = None) -> Api:
    from fastapi.testclient import TestClient

    from hub import tokens
    from hub.context import Context
    from hub.server import create_app
    _clean_env(mp)
    if store_url:
        mp.setenv("TRIAD_DATABASE_URL", store_url)
    cfg = root / "triad.yaml"
    text = cfg.read_text(encoding="utf-8").replace("roles:\n", "roles:\n" + ROLES, 1)
    cfg.write_text(text + API_CONFIG.format(issuer=ISSUER, audience=AUDIENCE), encoding="utf-8")
    (root / "jwks.json").write_text(json.dumps(jwks_of(keys["good"])), encoding="utf-8")
    ctx = Context(config_path=str(cfg), user_name="alice")
    app = create_app(ctx, worker=False)
    api = Api(root, ctx, app, TestClient(app), keys)
    for user in ("alice", "bob", "fin", "viewer", "nobody"):
        api.tokens[user] = tokens.create(ctx.engine(), user, by="alice", name=f"{user}-test")["token"]
    return api


@pytest.fixture
def api(seed_project: Path, tmp_path: Path, rsa_keys: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    root = tmp_path / f"p-{uuid.uuid4().hex[:6]}"
    shutil.copytree(seed_project, root)
    a = make_api(root, rsa_keys, monkeypatch)
    yield a
    a.client.close()
    a.ctx.close()


@pytest.fixture
def make_api_for(rsa_keys: dict[str, Any], monkeypatch: pytest.MonkeyPatch):
    """Builds the app for a project folder (optionally on another store URL)."""
    made: list[Api] = []

    def build(root: Path, store_url: str | None = None) -> Api:
        a = make_api(root, rsa_keys, monkeypatch, store_url)
        made.append(a)
        return a
    yield build
    for a in made:
        a.client.close()
        a.ctx.close()


@pytest.fixture(scope="module")
def module_api(seed_project: Path, tmp_path_factory: pytest.TempPathFactory, rsa_keys: dict[str, Any]) -> Iterator[Api]:
    """One app for a whole module (the fuzzer's many operations share it)."""
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("module") / "p"
    shutil.copytree(seed_project, root)
    a = make_api(root, rsa_keys, mp)
    yield a
    a.client.close()
    a.ctx.close()
    mp.undo()
