"""The OpenAPI document is generated from the code; schemathesis fuzzes every operation against it:
no 5xx, documented status codes and content types, bodies that match the response schemas."""
from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, negative_data_rejection,
                                               response_schema_conformance, status_code_conformance)

# invalid inputs (negative mode), a repeated single-valued query parameter among them, must be refused
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection]


@pytest.fixture(scope="module")
def fuzz_schema(module_api: Any) -> Any:
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", module_api.app)


@pytest.fixture
def fuzz_headers(module_api: Any) -> dict[str, str]:
    return module_api.h("alice")


def test_openapi_is_served_and_describes_auth_and_every_entity(api):
    r = api.client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    paths = doc["paths"]
    for entity in ("customer", "order", "contract", "payment", "approval"):
        assert f"/api/v1/records/{entity}" in paths and f"/api/v1/records/{entity}/{{record_id}}" in paths
        assert f"/api/v1/xref/{{system}}/{entity}/{{source_id}}" in paths
    props = doc["components"]["schemas"]["CustomerFields"]["properties"]
    assert props["credit_limit"]["anyOf"][0] == {"type": "string", "format": "decimal",
                                                  "description": props["credit_limit"]["anyOf"][0]["description"]}
    assert {"/api/v1/changes", "/api/v1/conflicts", "/api/v1/conflicts/{conflict_id}/resolve",
            "/api/v1/quarantine", "/api/v1/me"} <= set(paths)
    assert "401" in paths["/api/v1/records/customer"]["get"]["responses"]
    # a 422 the app raises carries one sentence, FastAPI's own a list: the document says both
    invalid = paths["/api/v1/records/customer/{record_id}/history"]["get"]["responses"]["422"]
    assert invalid["content"]["application/json"]["schema"]["$ref"].endswith("/Invalid")
    assert {"type": "string"} in doc["components"]["schemas"]["Invalid"]["properties"]["detail"]["anyOf"]


def _fuzz(op: Any, mode: Any, headers: dict[str, str], examples: int) -> None:
    """Run one operation's generated cases; a failure is raised with the case to reproduce it (curl)."""

    @given(case=op.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate, Phase.shrink])
    def run(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()


def test_fuzz_every_operation(fuzz_schema: Any, fuzz_headers: dict[str, str]) -> None:
    """Positive and negative cases for every /api/v1 operation, with a valid token (in-process over ASGI)."""
    ops = [op for op in (r.ok() for r in fuzz_schema.get_all_operations()) if op.path.startswith("/api/v1/")]
    assert len(ops) >= 30
    for op in ops:
        _fuzz(op, GenerationMode.POSITIVE, fuzz_headers, 8)
        _fuzz(op, GenerationMode.NEGATIVE, fuzz_headers, 4)
