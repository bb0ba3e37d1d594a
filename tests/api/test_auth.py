"""Authentication: API tokens and OIDC JWTs; every failure is the same generic 401; RBAC is the CLI's."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from hub import audit, tokens
from hub.api.auth import oidc_config
from hub.config import parse_config
from hub.errors import ConfigError
from hub.models import ApiToken, AuditLog

def _b64(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


GENERIC = {"detail": "authentication required: send a valid bearer token"}


def _refused(r) -> None:
    assert r.status_code == 401, r.text
    assert r.json() == GENERIC
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_tokens_are_stored_hashed_and_every_failure_looks_the_same(api):
    c = api.client
    _refused(c.get("/api/v1/records/customer"))
    _refused(c.get("/api/v1/records/customer", headers={"Authorization": "Basic YWxpY2U6cGFzcw=="}))
    _refused(c.get("/api/v1/records/customer", headers={"Authorization": "Bearer "}))
    _refused(c.get("/api/v1/records/customer", headers={"Authorization": "Bearer tri_not-a-real-token"}))
    _refused(c.get("/api/v1/records/customer", headers={"Authorization": "Bearer " + "x" * 5000}))

    with api.engine.connect() as conn:
        stored = [r.token_hash for r in conn.execute(select(ApiToken.__table__.c.token_hash))]
    assert api.tokens["alice"] not in stored and tokens.digest(api.tokens["alice"]) in stored

    made = tokens.create(api.engine, "alice", by="alice", ttl=timedelta(hours=1))
    h = {"Authorization": f"Bearer {made['token']}"}
    assert c.get("/api/v1/me", headers=h).status_code == 200
    with api.engine.begin() as conn:   # the hour has passed
        conn.execute(update(ApiToken.__table__).where(ApiToken.__table__.c.id == made["id"])
                     .values(expires_at=datetime.now(timezone.utc) - timedelta(seconds=1)))
    _refused(c.get("/api/v1/me", headers=h))

    second = tokens.create(api.engine, "alice", by="alice")
    h2 = {"Authorization": f"Bearer {second['token']}"}
    assert c.get("/api/v1/me", headers=h2).json()["via"] == f"token:{second['id']}"
    tokens.revoke(api.engine, second["id"], by="alice")
    _refused(c.get("/api/v1/me", headers=h2))


def test_token_use_is_recorded(api):
    assert api.get("/me").status_code == 200
    rows = tokens.list_tokens(api.engine, user="alice")
    assert rows[0]["last_used_at"] is not None and "token_hash" not in rows[0]


def test_missing_permission_is_403_and_audited(api):
    r = api.get("/records/order", "fin")
    assert r.status_code == 403
    assert "fin" in r.json()["detail"] and "order" in r.json()["detail"]
    entries = audit.list_entries(api.engine, user="fin")
    assert entries[0]["action"] == "denied:read" and entries[0]["outcome"] == "denied"
    assert audit.verify(api.engine)["ok"]


def test_a_valid_jwt_maps_its_groups_to_roles(api):
    h = {"Authorization": f"Bearer {api.jwt(sub='carol@corp', groups=['triad-stewards', 'unrelated'])}"}
    me = api.client.get("/api/v1/me", headers=h).json()
    assert me == {"user": "carol@corp", "via": "oidc", "roles": ["steward_sales"],
                  "can": {"merge": ["customer", "order"], "read": ["customer", "order"],
                          "resolve": ["customer", "order"]}}
    rows = api.client.get("/api/v1/records/customer", headers=h).json()["records"]
    assert rows and all("credit_limit" not in r["fields"] for r in rows)
    assert api.client.get("/api/v1/records/payment", headers=h).status_code == 403
    admin = {"Authorization": f"Bearer {api.jwt(groups='triad-admins')}"}
    assert api.client.get("/api/v1/records/payment", headers=admin).status_code == 200
    nobody = {"Authorization": f"Bearer {api.jwt(groups=[])}"}
    assert api.client.get("/api/v1/records/customer", headers=nobody).status_code == 403


@pytest.mark.parametrize("case", ["expired", "wrong_audience", "wrong_issuer", "bad_signature", "unknown_kid",
                                  "no_exp", "hs256_with_public_key", "alg_none", "garbage", "no_subject"])
def test_invalid_jwts_are_refused_with_the_same_401(api, case):
    from cryptography.hazmat.primitives import serialization
    now = int(time.time())
    if case == "expired":
        token = api.jwt(exp=now - 120, iat=now - 600)      # beyond the 30 s leeway
    elif case == "wrong_audience":
        token = api.jwt(aud="another-api")
    elif case == "wrong_issuer":
        token = api.jwt(iss="https://evil.test/")
    elif case == "bad_signature":
        token = api.jwt(key="other")                        # same kid, another key
    elif case == "unknown_kid":
        token = api.jwt(kid="rotated-away")
    elif case == "no_exp":
        token = api.jwt(exp=None)
    elif case == "hs256_with_public_key":   # the classic key-confusion forgery, signed by hand
        pem = api.keys["good"].public_key().public_bytes(serialization.Encoding.PEM,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo)
        head = _b64({"alg": "HS256", "typ": "JWT", "kid": "test-key-1"})
        body = _b64({"iss": "https://idp.triad.test/", "aud": "triad-api", "sub": "x", "exp": now + 60,
                     "groups": ["triad-admins"]})
        sig = hmac.new(pem, f"{head}.{body}".encode(), hashlib.sha256).digest()
        token = f"{head}.{body}.{base64.urlsafe_b64encode(sig).decode().rstrip('=')}"
    elif case == "alg_none":
        import jwt
        token = jwt.encode({"iss": "https://idp.triad.test/", "aud": "triad-api", "sub": "x", "exp": now + 60},
                           None, algorithm="none")
    elif case == "garbage":
        token = "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln"
    else:
        token = api.jwt(sub=None)
    _refused(api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}))


def test_jwts_are_refused_when_sso_is_not_configured(api):
    cfg = api.root / "triad.yaml"
    cfg.write_text(cfg.read_text(encoding="utf-8").split("serve:")[0], encoding="utf-8")
    from fastapi.testclient import TestClient

    from hub.context import Context
    from hub.server import create_app
    app = create_app(Context(config_path=str(cfg)), worker=False)
    with TestClient(app) as c:
        _refused(c.get("/api/v1/me", headers={"Authorization": f"Bearer {api.jwt()}"}))
        assert c.get("/api/v1/me", headers=api.h("alice")).status_code == 200


def test_a_rotated_signing_key_is_picked_up_from_the_jwks(api):
    def jwks_of(key, kid: str) -> dict:
        from jwt.algorithms import RSAAlgorithm
        return {"keys": [dict(json.loads(RSAAlgorithm.to_jwk(key.public_key())), kid=kid, use="sig")]}

    assert api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {api.jwt()}"}).status_code == 200
    new_token = api.jwt(key="other", kid="rotated-in")
    _refused(api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {new_token}"}))
    both = jwks_of(api.keys["good"], "test-key-1")["keys"] + jwks_of(api.keys["other"], "rotated-in")["keys"]
    (api.root / "jwks.json").write_text(json.dumps({"keys": both}), encoding="utf-8")
    assert api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {new_token}"}).status_code == 200


def test_oidc_config_errors_name_the_key_path():
    def check(serve: str, expected: str) -> None:
        cfg = parse_config(f"serve:\n{serve}", "triad.yaml", env_override=False)
        with pytest.raises(ConfigError) as e:
            oidc_config(cfg)
        assert expected in str(e.value), str(e.value)

    check("  oidc: {issuer: x, jwks_file: j.json}", "triad.yaml: serve.oidc.audience: required key is missing")
    check("  oidc: {issuer: x, audience: a}", "serve.oidc: give exactly one of jwks_url and jwks_file")
    check("  oidc: {issuer: x, audience: a, jwks_file: j, algorithms: [HS256]}", "serve.oidc.algorithms")
    check("  oidc: {issuer: x, audience: a, jwks_file: j, colour: red}", "serve.oidc.colour: unknown key")
    check("  oidc: [1, 2]", "serve.oidc: expected a mapping")
    assert oidc_config(parse_config("serve: {}", env_override=False)) is None


def test_nothing_secret_in_audit_or_token_listing(api):
    rows = tokens.list_tokens(api.engine, include_inactive=True)
    text = json.dumps(rows, default=str)
    assert not any(t in text for t in api.tokens.values())
    with api.engine.connect() as conn:
        log = json.dumps([dict(r) for r in conn.execute(select(AuditLog.__table__)).mappings()], default=str)
    assert not any(t in log for t in api.tokens.values())
