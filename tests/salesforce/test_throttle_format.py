"""Throttling as Salesforce answers it (HTTP 403 REQUEST_LIMIT_EXCEEDED, no 429, no Retry-After), how the
connector tells the transient concurrent limit from the daily budget, and sessions that expire more than
once while one request waits between retries."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable

import pytest

from hub.connector import StreamSpec, WriteChange
from hub.errors import FatalError, LimitExceeded

CONCURRENT_LIMIT = [{"message": "ConcurrentPerOrgLongTxn Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
DAILY_LIMIT = [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
ACCOUNTS = StreamSpec(entity="customer", source="Account", key="Id", updated_at="SystemModstamp", batch_size=200,
                      fields=("Id", "SystemModstamp", "Name"))


def read_ids(conn) -> list[str]:
    stream = replace(ACCOUNTS, run_started_at=datetime.now(timezone.utc) + timedelta(seconds=1))
    return [r["Id"] for b in conn.read(stream, None) for r in b.records]


def test_injected_throttling_is_the_concurrent_limit_403(make_sim) -> None:
    sim = make_sim(rate_limit_rate=1.0)
    resp = sim.session().get(sim.data("query"), params={"q": "SELECT Id FROM Account"})
    assert resp.status_code == 403
    assert resp.headers["Content-Type"].startswith("application/json")
    assert "Retry-After" not in resp.headers
    assert resp.json() == CONCURRENT_LIMIT
    assert sim.app.stats["throttled"] == 1


def test_throttling_follows_the_live_options_and_the_budget_stays_the_daily_limit(make_sim) -> None:
    sim = make_sim(rate_limit_rate=1.0, request_budget=1)
    s = sim.session()
    assert s.get(sim.data("limits")).json() == CONCURRENT_LIMIT
    sim.app.options.rate_limit_rate = 0.0               # switched off while it runs, as the tests and soak do
    assert s.get(sim.data("limits")).status_code == 200
    resp = s.get(sim.data("limits"))
    assert resp.status_code == 403 and resp.json() == DAILY_LIMIT
    assert "Retry-After" not in resp.headers


def test_a_throttled_read_completes(make_sim, make_connector) -> None:
    sim = make_sim(records=450, rate_limit_rate=0.5)
    conn = make_connector(sim, retry={"attempts": 12, "backoff": 0.001, "max_wait": 0.01, "timeout": 5})
    assert sorted(read_ids(conn)) == sorted(sim.org.ids("Account"))
    assert sim.app.stats["throttled"] > 0


def test_a_throttled_write_completes_once(make_sim, make_connector) -> None:
    sim = make_sim(records=1, rate_limit_rate=0.6)
    conn = make_connector(sim, retry={"attempts": 12, "backoff": 0.001, "max_wait": 0.01, "timeout": 5})
    changes = [WriteChange(f"c{i}", f"triad-{i}", None, {"Name": f"Throttled {i}"}) for i in range(3)]
    results = conn.write(ACCOUNTS, changes)
    assert all(r.ok for r in results), [r.error for r in results]
    names = [sim.org.get("Account", i)["Name"] for i in sim.org.ids("Account")]
    assert sorted(n for n in names if n.startswith("Throttled")) == ["Throttled 0", "Throttled 1", "Throttled 2"]
    assert sim.app.stats["throttled"] > 0


def test_the_daily_limit_still_stops_the_stream(make_sim, make_connector) -> None:
    sim = make_sim(records=450, request_budget=1)
    with pytest.raises(LimitExceeded, match="TotalRequests"):
        read_ids(make_connector(sim))


def test_a_session_expiring_again_during_retry_waits_logs_in_again(make_sim, make_connector) -> None:
    sim = make_sim(records=5, rate_limit_rate=1.0)
    conn = make_connector(sim)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        sim.org.expire_tokens()                         # the session times out while the retry waits
        if len(waits) == 3:
            sim.options.rate_limit_rate = 0.0
    conn.client.http.sleep = sleep
    assert sorted(read_ids(conn)) == sorted(sim.org.ids("Account"))
    assert len(waits) == 3 and conn.client.auth.fetched == 4     # first login + one after each wait


class _RefuseEverySession:
    """WSGI middleware: every data call answers INVALID_SESSION_ID, even with a token just issued."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith("/services/data/"):
            start_response("401 Unauthorized", [("Content-Type", "application/json")])
            return [b'[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]']
        return self.app(environ, start_response)


def test_a_session_refused_right_after_logging_in_is_fatal(make_sim, make_connector) -> None:
    sim = make_sim(records=5, wrap=_RefuseEverySession)
    conn = make_connector(sim)
    with pytest.raises(FatalError, match="after logging in again: INVALID_SESSION_ID"):
        read_ids(conn)
    assert conn.client.auth.fetched == 2
