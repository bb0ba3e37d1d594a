"""DingTalk down: a write fails as one call (the push reports the system unreachable), not once per change."""
from __future__ import annotations

import socket

import pytest

from hub.connector import WriteChange
from hub.errors import RetriableError


def test_a_write_to_a_dingtalk_that_cannot_be_reached_fails_as_a_whole(sim, make_connector, stream) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    conn = make_connector(sim, base_url=f"http://127.0.0.1:{closed}", retries=1)
    with pytest.raises(RetriableError):
        conn.write(stream, [WriteChange("c1", "R1", None, {"title": "x"})])
