"""Helpers for the Salesforce tests (importable by name: pytest puts this folder on sys.path)."""
from __future__ import annotations

from typing import Any, Callable, Iterable

import requests


class LoginHost(requests.adapters.HTTPAdapter):
    """Plays the DNS entry for login.salesforce.com: the client's login requests reach the simulator.

    simple-salesforce always logs in at ``https://<domain>.salesforce.com``; the simulator's answer then
    names its own address as ``instance_url``/``serverUrl``, which the client uses from there on.
    """

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        request.url = request.url.replace("https://login.salesforce.com", self.target, 1)
        return super().send(request, **kwargs)


class SlowFirst:
    """WSGI middleware: the first ``count`` data calls answer only after ``delay`` seconds."""

    def __init__(self, app: Callable, count: int, delay: float) -> None:
        self.app, self.count, self.delay = app, count, delay
        self.slowed = 0

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        import time
        if environ.get("PATH_INFO", "").startswith("/services/data/") and self.slowed < self.count:
            self.slowed += 1
            time.sleep(self.delay)
        return self.app(environ, start_response)
