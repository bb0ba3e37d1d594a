"""The connector option ``retries``: 0 and 1 send once, a negative count is refused clearly, and the
repeat after a 401 (a token that expired between calls) never uses up the last attempt."""
from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from datetime import datetime, timezone
from typing import Any, Callable

import pytest

from connectors.dingtalk.client import AuthError
from hub.connector import StreamSpec
from hub.errors import ConfigError, RetriableError

WORKFLOW = "/v1.0/workflow/"


def read_all(conn: Any, stream: StreamSpec) -> list[dict[str, Any]]:
    batches = conn.read(replace(stream, run_started_at=datetime.now(timezone.utc)), None)
    return [r for b in batches for r in b.records]


@pytest.mark.parametrize("retries", [0, 1])
def test_a_read_with_few_retries_reads_everything(sim: Any, make_connector: Callable[..., Any],
                                                  stream: StreamSpec, retries: int) -> None:
    assert len(read_all(make_connector(sim, retries=retries), stream)) == 30


@pytest.mark.parametrize("retries", [0, 1])
def test_a_token_expiry_with_one_attempt_is_transparent(sim: Any, make_connector: Callable[..., Any],
                                                        stream: StreamSpec, retries: int) -> None:
    conn = make_connector(sim, retries=retries, fetch_concurrency=1)
    reader = conn.read(replace(stream, run_started_at=datetime.now(timezone.utc)), None)
    first = next(reader)
    sim.sim.expire_tokens()                     # DingTalk tokens live two hours: this happens in long runs
    rest = [r for b in reader for r in b.records]
    assert len(first.records) + len(rest) == 30
    assert conn.client.token_fetches == 2 and sim.sim.tokens.issued == 2


def test_a_failure_with_no_retries_is_a_clear_error(make_sim: Callable[..., Any],
                                                    make_connector: Callable[..., Any]) -> None:
    sim = make_sim(records=5)
    conn = make_connector(sim, retries=0)
    conn.client.token()
    sim.options.fail_rate = 1.0                 # every data call answered 503
    with pytest.raises(RetriableError, match="HTTP 503"):
        conn.client.get_instance("any")
    assert sim.app.stats["failed"] == 1         # sent once


def test_a_token_refused_again_after_reauth_stops(make_sim: Callable[..., Any], make_connector: Callable[..., Any],
                                                  serve_wsgi: Callable[[Any], Any]) -> None:
    sim = make_sim(records=5)
    refusing = RefuseEveryToken(sim.app)
    server = serve_wsgi(refusing)
    conn = make_connector(SimpleNamespace(url=server.base_url), retries=1)
    with pytest.raises(AuthError, match="fresh access token"):
        conn.client.get_instance("any")
    assert refusing.data_calls == 2 and conn.client.token_fetches == 2     # one re-auth per call, no loop


@pytest.mark.parametrize("retries", [-1, "many", 2.5, True])
def test_a_bad_retries_option_is_refused(sim: Any, make_connector: Callable[..., Any], retries: Any) -> None:
    with pytest.raises(ConfigError, match=r"retries .*must be a whole number, 0 or more .*got"):
        make_connector(sim, retries=retries)


class RefuseEveryToken:
    """The simulator, with every workflow call's token dropped: DingTalk answers 401 each time."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.data_calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ["PATH_INFO"].startswith(WORKFLOW):
            self.data_calls += 1
            environ.pop("HTTP_X_ACS_DINGTALK_ACCESS_TOKEN", None)
        return self.app(environ, start_response)
