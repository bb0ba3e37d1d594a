"""`triad simulate rest`: deterministic data, the CLI conventions, --state across restarts, route behaviour."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import requests
from rest_helpers import REPO, subprocess_env

from connectors.rest.sim_data import generate


def test_the_seed_decides_the_data() -> None:
    assert generate(7, 20) == generate(7, 20)
    assert generate(7, 20)["companies"] != generate(8, 20)["companies"]
    data = generate(7, 20)
    assert [len(data[c]) for c in ("companies", "contacts", "deals")] == [20, 20, 10]
    assert data["hubspot"]["companies"][0]["properties"]["name"] == data["companies"][0]["name"]


def start(*args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "cli", "simulate", "rest", "--port", "0", *args], cwd=REPO,
                            env=subprocess_env(None), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    assert line.startswith("listening on http://127.0.0.1:"), (line, proc.stderr.read() if proc.poll() else "")
    return proc, line.split()[-1]


def test_cli_serves_and_keeps_writes_in_the_state_file(tmp_path: Path) -> None:
    state = tmp_path / "rest.json"
    proc, url = start("--records", "5", "--state", str(state))
    try:
        created = requests.post(f"{url}/page/companies", json={"name": "Kept Across Restarts"}, timeout=10)
        assert created.status_code == 201
        assert len(requests.get(f"{url}/all/companies", timeout=10).json()["records"]) == 6
    finally:
        proc.kill()
        proc.wait()
    proc, url = start("--records", "5", "--state", str(state))
    try:
        names = [r["name"] for r in requests.get(f"{url}/all/companies", timeout=10).json()["records"]]
        assert "Kept Across Restarts" in names and len(names) == 6
    finally:
        proc.kill()
        proc.wait()


def test_rate_limit_headers_and_429(make_sim: Callable) -> None:
    sim = make_sim(extra={"rate_limit": 2, "rate_window": 5.0})
    answers = [requests.get(f"{sim.url}/page/companies", timeout=10) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["1", "0", "0"]
    assert int(answers[2].headers["Retry-After"]) >= 1 and answers[2].json()["code"] == "RATE_LIMITED"


def test_routes_answer_like_their_paging_style(sim: Any) -> None:
    page = requests.get(f"{sim.url}/page/companies", params={"page": 2, "per_page": 15}, timeout=10).json()
    assert page["meta"] == {"page": 2, "per_page": 15, "total": 40, "total_pages": 3} and len(page["data"]) == 15
    header = requests.get(f"{sim.url}/linkheader/deals", params={"per_page": 15}, timeout=10)
    assert isinstance(header.json(), list) and header.links["next"]["url"].endswith("page=2")
    last = requests.get(header.links["next"]["url"], timeout=10)
    assert "next" not in last.links and len(last.json()) == 5
    errors = requests.get(f"{sim.url}/errors/contacts", params={"code": "X1"}, timeout=10)
    assert errors.status_code == 200 and errors.json()["code"] == "X1"
    assert requests.get(f"{sim.url}/auth/hmac/page/companies", timeout=10).status_code == 401
    bad = requests.get(f"{sim.url}/cursor/companies", params={"cursor": "%%%"}, timeout=10)
    assert bad.status_code == 400
