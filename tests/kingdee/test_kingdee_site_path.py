"""A K3Cloud site serves its web API under /k3cloud/ only: a call elsewhere is not answered as one."""
from __future__ import annotations

import json

import requests

SERVICE = "Kingdee.BOS.WebApi.ServicesStub.AuthService.ValidateUser.common.kdsvc"
LOGIN = {"acctID": "triad-acct", "username": "demo@triad.local", "password": "triad-pass", "lcid": 2052}


def _post(url: str) -> requests.Response:
    return requests.post(url, data=json.dumps(LOGIN), headers={"Content-Type": "application/json"}, timeout=10)


def test_a_service_is_served_under_k3cloud_only(sim):
    assert _post(f"{sim.server.base_url}/k3cloud/{SERVICE}").status_code == 200
    for elsewhere in (f"/{SERVICE}", f"/other/{SERVICE}", f"/k3cloud/x/{SERVICE}"):
        r = _post(sim.server.base_url + elsewhere)
        assert r.status_code == 404, (elsewhere, r.status_code, r.text)
