"""API descriptions are validated like mappings: every issue with file, line and key path."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from connectors.rest.spec_load import load_api, resolve_auth, shipped_api_dir, validate_api_file
from hub.errors import ConfigError
from hub.mapping import load_mapping, shipped_mappings_dir
from hub.secrets import Secret

GOOD = """\
version: 1
base_url: http://127.0.0.1:1
auth: {type: bearer}
resources:
  companies:
    list:
      path: /page/companies
      records: data
      paging: {style: page, size: 10}
    since: {param: updated_since}
    update: {method: PATCH, path: "/page/companies/{id}"}
"""


def issues_of(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "api.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return [str(i).replace(str(path), "api.yaml") for i in validate_api_file(path)]


@pytest.mark.parametrize("name", ["hubspot", "simulator"])
def test_shipped_descriptions_are_valid(name: str) -> None:
    assert validate_api_file(shipped_api_dir() / f"{name}.yaml") == []


def test_shipped_hubspot_mapping_is_valid_and_names_a_described_resource() -> None:
    mapping = load_mapping(shipped_mappings_dir() / "rest" / "customer.yaml", "customer")
    api = load_api("hubspot", ".", "crm")
    assert api.resource(mapping.source) is not None


def test_good_description_has_no_issues(tmp_path: Path) -> None:
    assert issues_of(tmp_path, GOOD) == []


def test_unknown_key_names_file_line_path_and_the_known_keys(tmp_path: Path) -> None:
    text = GOOD.replace("      records: data\n", "      records: data\n      recrods: data\n")
    (issue,) = issues_of(tmp_path, text)
    assert issue.startswith("api.yaml:9: resources.companies.list.recrods: unknown key 'recrods'; known:")
    assert "records" in issue and "paging" in issue


def test_every_issue_is_reported_at_once_with_its_line(tmp_path: Path) -> None:
    text = """\
    auth: {type: bearer, token: abc}
    resources:
      companies:
        list:
          path: "/x/{nope}"
          records: "data[["
          paging: {style: pages}
        changes: {path: /changes}
        update: {path: /companies}
      deals:
        list: {path: "/deals", params: {since: "{since}"}}
        create: {path: "/deals/{id}"}
    """
    got = issues_of(tmp_path, text)
    assert got == [
        "api.yaml:1: auth.token: secrets do not belong in an API description: set token in triad.yaml "
        "(connectors.<name>.auth.token, e.g. from ${ENV_VAR})",
        "api.yaml:5: resources.companies.list.path: unknown placeholder {nope} in the request path; known here: "
        "{fields}, {fields_list}",
        "api.yaml:6: resources.companies.list.records: bad path 'data[[' at character 5",
        "api.yaml:7: resources.companies.list.paging.style: unknown paging style 'pages'; known: page, offset, "
        "cursor, next_link, link_header, none",
        "api.yaml:8: resources.companies.changes: the changes request never uses the cursor: put {since} in it "
        "or give `since.param`",
        "api.yaml:9: resources.companies.update: the update request must address the record: put {id} in its "
        "path, params or body",
        "api.yaml:11: resources.deals.list: the list request reads everything: move {since} into a `changes` "
        "request, or name the parameter in `since.param`",
        "api.yaml:12: resources.deals.create: a create has no {id} yet; use upsert for writes addressed by a "
        "business key",
    ]


def test_style_specific_paging_keys_and_get_bodies(tmp_path: Path) -> None:
    text = GOOD.replace("paging: {style: page, size: 10}", "paging: {style: cursor}")
    assert issues_of(tmp_path, text) == [
        "api.yaml:9: resources.companies.list.paging.cursor_path: required key 'cursor_path' is missing"]
    text = GOOD.replace("paging: {style: page, size: 10}", "paging: {style: cursor, cursor_path: next, in: body}")
    assert issues_of(tmp_path, text) == [
        "api.yaml:9: resources.companies.list.paging.in: paging parameters cannot go in the body of a GET request"]
    text = GOOD.replace("paging: {style: page, size: 10}", "paging: {style: link_header, cursor_path: x}")
    assert any("paging.cursor_path: unknown key 'cursor_path'; known:" in i and "rel" in i
               for i in issues_of(tmp_path, text))
    text = GOOD.replace("      records: data\n", "      records: data\n      body: {a: 1}\n")
    assert issues_of(tmp_path, text) == ["api.yaml:9: resources.companies.list.body: a GET request has no body; "
                                         "use params, or method: POST"]


def test_yaml_booleans_as_keys_and_conditions(tmp_path: Path) -> None:
    text = (GOOD + "    upsert: {path: /u, params: {true: code}}\n"
            "errors:\n  - when: {path: ok, equals: false, in: [1]}\n")
    got = issues_of(tmp_path, text)
    assert "api.yaml:12: resources.companies.upsert.params.true: the key True must be text (quote it: YAML " \
           "reads some words as booleans)" in got
    assert "api.yaml:14: errors[0].when: give exactly one of equals, not_equals, in, not_in, exists, matches " \
           "(got 2)" in got


def test_invalid_yaml_and_missing_resources(tmp_path: Path) -> None:
    assert issues_of(tmp_path, "resources: [\n") [0].startswith("api.yaml:2: invalid YAML")
    assert issues_of(tmp_path, "version: 1\n") == [
        "api.yaml:1: resources: no resources are described: give at least one, named like a mapping's `source`"]


def test_load_api_inline_map_errors_name_the_config_path() -> None:
    with pytest.raises(ConfigError) as err:
        load_api({"resources": {"companies": {"list": {"path": "/x", "paging": {"style": "page", "size": 0}}}}},
                 ".", "crm")
    assert "connectors.crm.api:1: resources.companies.list.paging.size: Input should be greater than 0" \
        in str(err.value)


def test_load_api_missing_file_names_both_places(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_api("nope.yaml", tmp_path, "crm")
    message = str(err.value)
    assert f"{tmp_path / 'nope.yaml'} does not exist" in message and "shipped: hubspot, simulator" in message
    (tmp_path / "mine.yaml").write_text(GOOD, encoding="utf-8")
    assert load_api("mine.yaml", tmp_path, "crm").resource("companies") is not None


def test_resolve_auth_takes_secrets_from_triad_yaml() -> None:
    api = load_api("hubspot", ".", "crm")
    spec = resolve_auth(api, {"token": Secret("pat-123")}, "crm")
    assert spec.type == "bearer" and spec.token.reveal() == "pat-123" and spec.prefix == "Bearer"
    with pytest.raises(ConfigError) as err:
        resolve_auth(api, None, "crm")
    assert "connectors.crm.auth: the bearer auth of HubSpot CRM v3 needs token" in str(err.value)
    with pytest.raises(ConfigError) as err:
        resolve_auth(api, {"type": "kerberos"}, "crm")
    assert "connectors.crm.auth.type: unknown auth type 'kerberos'" in str(err.value)
    # triad.yaml may switch the style; values under secret-looking keys (token_url) are still plain text
    oauth = resolve_auth(api, {"type": "oauth2", "token_url": Secret("/oauth/token"), "client_id": "id",
                               "client_secret": Secret("s")}, "crm")
    assert oauth.token_url == "/oauth/token" and oauth.client_secret.reveal() == "s"


def test_config_problems_for_config_validate(tmp_path: Path) -> None:
    from connectors.rest.connector import RestConnector
    (tmp_path / "api.yaml").write_text(GOOD.replace("records: data", "recrods: data"), encoding="utf-8")
    problems = RestConnector.validate_options("crm", {"api": "api.yaml", "auth": {"token": Secret("t")}}, tmp_path)
    assert len(problems) == 1 and problems[0].endswith(
        "api.yaml:8: resources.companies.list.recrods: unknown key 'recrods'; known: body, headers, method, "
        "paging, params, path, records, sorted")
    assert RestConnector.validate_options("crm", {"api": "hubspot"}, tmp_path) == [
        "connectors.crm.auth: the bearer auth of HubSpot CRM v3 needs token (set it in triad.yaml, e.g. "
        "token: ${API_TOKEN})"]
    assert RestConnector.validate_options("crm", {"api": "hubspot", "auth": {"token": Secret("t")}}, tmp_path) == []
