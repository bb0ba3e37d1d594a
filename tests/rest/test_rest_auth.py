"""Every auth style of the rest connector against the simulator's /auth/<style>/... routes."""
from __future__ import annotations

import copy
import logging
import time
from datetime import datetime, timezone
from typing import Any, Callable

import pytest
from rest_helpers import sim_api

from hub.connector import StreamSpec, WriteChange
from hub.errors import FatalError
from hub.secrets import Secret

HMAC = {"type": "hmac", "canonical": "{method}\n{path}\n{query}\n{timestamp}\n{body_sha256}",
        "headers": {"X-Key-Id": "{key_id}", "X-Timestamp": "{timestamp}", "X-Signature": "{signature}"}}
STYLES: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = {
    # route style: (the description's auth, triad.yaml's auth, the same with a wrong secret)
    "bearer": ({"type": "bearer"}, {"token": Secret("triad-secret")}, {"token": Secret("nope")}),
    "apikey": ({"type": "api_key", "name": "X-API-Key"}, {"api_key": Secret("triad-secret")},
               {"api_key": Secret("nope")}),
    "apikey_query": ({"type": "api_key", "in": "query", "name": "api_key"}, {"api_key": Secret("triad-secret")},
                     {"api_key": Secret("nope")}),
    "basic": ({"type": "basic"}, {"username": "demo@triad.local", "password": Secret("triad-pass")},
              {"username": "demo@triad.local", "password": Secret("nope")}),
    "oauth2": ({"type": "oauth2", "token_url": "/oauth/token", "leeway_seconds": 0},
               {"client_id": "triad-client", "client_secret": Secret("triad-secret")},
               {"client_id": "triad-client", "client_secret": Secret("nope")}),
    "hmac": (HMAC, {"key_id": "triad-client", "secret": Secret("triad-secret")},
             {"key_id": "triad-client", "secret": Secret("nope")}),
}


def behind(style: str, auth: dict[str, Any]) -> dict[str, Any]:
    """The simulator description with every path behind /auth/<style>."""
    api = copy.deepcopy(sim_api())
    api["auth"] = auth
    for res in api["resources"].values():
        for op in ("list", "create", "update", "upsert", "delete"):
            if op in res:
                res[op]["path"] = f"/auth/{style}{res[op]['path']}"
    return api


def stream(**kw: Any) -> StreamSpec:
    return StreamSpec(entity="customer", source="companies", key="id", updated_at="updated_at", batch_size=15,
                      run_started_at=datetime.now(timezone.utc), **kw)


@pytest.mark.parametrize("style", list(STYLES))
def test_style_reads_and_writes_with_good_credentials(style: str, sim: Any, make_connector: Callable,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="connectors")
    caplog.set_level(logging.DEBUG, logger="hub")
    described, good, _ = STYLES[style]
    conn = make_connector(sim, behind(style, described), auth=good)
    assert conn.check().ok
    keys = [r["id"] for b in conn.read(stream(), "2025-01-01T00:00:00Z") for r in b.records]
    assert len(keys) == len(set(keys)) == 40
    (created,) = conn.write(stream(), [WriteChange(f"{style}-1", "r1", None, {"name": "Signed GmbH",
                                                                              "email": "ap@signed.example"})])
    assert created.ok, created.error
    (updated,) = conn.write(stream(), [WriteChange(f"{style}-2", "r1", created.source_id, {"city": "Köln"})])
    assert updated.ok, updated.error
    assert next(r for r in sim.sim.state.data["companies"] if r["id"] == created.source_id)["city"] == "Köln"
    assert "triad-secret" not in caplog.text and "triad-pass" not in caplog.text


@pytest.mark.parametrize("style", list(STYLES))
def test_style_refuses_wrong_credentials(style: str, sim: Any, make_connector: Callable) -> None:
    described, _, wrong = STYLES[style]
    conn = make_connector(sim, behind(style, described), auth=wrong)
    result = conn.check()
    assert not result.ok
    expected = "token endpoint refused" if style == "oauth2" else "refused the credentials"
    assert expected in result.detail and "nope" not in result.detail
    with pytest.raises(FatalError, match=expected):
        list(conn.read(stream(), None))
    assert not [p for m, p in sim.sim.requests if m == "POST" and "/companies" in p], "nothing was written"


def test_a_credential_meant_for_another_style_is_refused(sim: Any, make_connector: Callable) -> None:
    described, good, _ = STYLES["bearer"]
    conn = make_connector(sim, behind("oauth2", described), auth=good)     # a static token where OAuth is needed
    assert "refused the credentials" in conn.check().detail


def test_oauth2_token_is_cached_refreshed_when_expired_and_renewed_after_a_401(make_sim: Callable,
                                                                             make_connector: Callable) -> None:
    sim = make_sim(token_ttl=1.0)
    described, good, _ = STYLES["oauth2"]
    conn = make_connector(sim, behind("oauth2", described), auth=good)
    assert len([r for b in conn.read(stream(), None) for r in b.records]) == 40
    assert sim.sim.tokens.stats == {"issued": 1, "refreshed": 0}          # one token for every page
    time.sleep(1.1)                                                        # the token expires
    assert len([r for b in conn.read(stream(), None) for r in b.records]) == 40
    assert sim.sim.tokens.stats == {"issued": 2, "refreshed": 1}          # refreshed with the refresh token
    with sim.sim.tokens.lock:
        sim.sim.tokens.access.clear()                                      # the server revokes every token
    assert len([r for b in conn.read(stream(), None) for r in b.records]) == 40
    assert sim.sim.tokens.stats["issued"] == 3                              # a 401, then a new token


def test_oauth2_client_credentials_in_the_form_body(sim: Any, make_connector: Callable) -> None:
    described, good, _ = STYLES["oauth2"]
    conn = make_connector(sim, behind("oauth2", {**described, "client_auth": "body", "scope": "crm.read"}), auth=good)
    assert conn.check().ok


def test_hmac_signature_covers_query_and_body(sim: Any, make_connector: Callable) -> None:
    """The simulator recomputes the signature: a request changed after signing is refused."""
    described, good, _ = STYLES["hmac"]
    conn = make_connector(sim, behind("hmac", described), auth=good)
    signer = conn.http.session.auth

    def tamper(r: Any) -> Any:       # sign, then change the body on the way
        r = signer(r)
        r.body = r.body.replace(b"Tampered", b"Tempered")
        return r

    conn.http.session.auth = tamper
    (result,) = conn.write(stream(), [WriteChange("h-1", "r1", None, {"name": "Tampered Ltd"})])
    assert not result.ok and "X-Signature does not match" in result.error
    conn.http.session.auth = signer
    (result,) = conn.write(stream(), [WriteChange("h-2", "r1", None, {"name": "Tampered Ltd"})])
    assert result.ok, result.error
