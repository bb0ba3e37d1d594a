"""Loading and checking REST API descriptions, like mappings: every issue with file, line and key path.

    api = load_api("hubspot", base_dir, "crm")          # a shipped description, a file, or an inline map
    issues = validate_api_file("config/rest/hubspot.yaml")
    auth = resolve_auth(api, options.get("auth"), "crm")  # the description's auth style + triad.yaml's secrets
"""
from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ValidationError

from connectors.rest.paths import compile_path, placeholders
from connectors.rest.spec import (AUTH_MODELS, AUTH_REQUIRED, AUTH_SECRETS, HMAC_NAMES, PAGING_MODELS,
                                  SINCE_FORMATS, ApiSpec, AuthSpec, ErrorRule, RequestSpec, ResourceSpec, WriteSpec)
from hub.errors import ConfigError
from hub.mapping_yaml import KeyPath, LineMap, MappingIssue, format_path, parse_yaml, scalar_key
from hub.secrets import reveal

READ_NAMES = {"fields", "fields_list"}
WRITE_NAMES = {"values", "id", "change_id", "record_id", "entity"}


def _plain(value: Any) -> Any:
    """A copy with every Secret revealed (recursively)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return reveal(value)


def shipped_api_dir() -> Path:
    """``config/rest/`` installed next to the ``connectors`` package."""
    return Path(__file__).resolve().parents[2] / "config" / "rest"


class Issues:
    """Collects issues of one description, with lines from its YAML line map."""

    def __init__(self, file: str, lines: LineMap) -> None:
        self.file, self.lines = file, lines
        self.items: list[MappingIssue] = []

    def add(self, path: KeyPath, message: str, line: int | None = None) -> None:
        self.items.append(MappingIssue(self.file, line or self.lines.line(tuple(path)), format_path(tuple(path)),
                                       message))

    def pydantic(self, prefix: KeyPath, exc: ValidationError, model: type[BaseModel]) -> None:
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
            key_error = loc[-1:] == ("[key]",)
            if key_error:       # pydantic names a bad map key by position; the YAML path has its text
                loc = (*loc[:-2], scalar_key(err.get("input")))
            path = (*prefix, *loc)
            if key_error:
                message = f"the key {err.get('input')!r} must be text (quote it: YAML reads some words as booleans)"
            elif err["type"] == "extra_forbidden":
                known = _known_keys(model, loc[:-1])
                message = f"unknown key '{loc[-1]}'" + (f"; known: {', '.join(known)}" if known else "")
            elif err["type"] == "missing":
                message = f"required key '{loc[-1]}' is missing"
            else:
                message = err["msg"].removeprefix("Value error, ")
            self.add(path, message)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _known_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """The keys a map at ``loc`` (inside ``model``) accepts, for "unknown key" messages."""
    current = [model]
    for part in loc:
        nxt = []
        for cls in current:
            for name, f in cls.model_fields.items():
                if part in (name, f.alias):
                    nxt += _models_in(f.annotation)
        current = nxt or current      # a map key or list index: the same model goes on
    return sorted({f.alias or n for cls in current for n, f in cls.model_fields.items()})


def _validate(model: type[BaseModel], data: Any, prefix: KeyPath, issues: Issues) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        issues.pydantic(prefix, exc, model)
        return None


def _path_ok(text: str | None, at: KeyPath, issues: Issues) -> None:
    if text is None:
        return
    try:
        compile_path(text)
    except ValueError as exc:
        issues.add(at, str(exc))


def _names_ok(template: Any, allowed: set[str], at: KeyPath, issues: Issues, what: str,
              other: set[str] = frozenset()) -> set[str]:
    """Report placeholders that are not ``allowed`` (``other`` ones get their own message elsewhere)."""
    used = {p.split(".")[0] for p in placeholders(template)}
    for name in sorted(used - allowed - other):
        issues.add(at, f"unknown placeholder {{{name}}} in {what}; known here: "
                       f"{', '.join('{' + n + '}' for n in sorted(allowed)) or 'none'}")
    return used


def _request_names(req: RequestSpec | WriteSpec, allowed: set[str], at: KeyPath, issues: Issues,
                   other: set[str] = frozenset()) -> set[str]:
    used: set[str] = set()
    for part in ("path", "params", "headers", "body"):
        value = getattr(req, part)
        if value is not None:
            used |= _names_ok(value, allowed, (*at, part), issues, f"the request {part}", other)
    return used


def _check_request(req: RequestSpec, raw: dict[str, Any], at: KeyPath, allowed: set[str], issues: Issues,
                   other: set[str] = frozenset()) -> set[str]:
    used = _request_names(req, allowed, at, issues, other)
    _path_ok(req.records, (*at, "records"), issues)
    if req.method == "GET" and req.body is not None:
        issues.add((*at, "body"), "a GET request has no body; use params, or method: POST")
    paging = raw.get("paging")
    if paging is None:
        paging = {"style": "none"}
    if not isinstance(paging, dict) or paging.get("style") not in PAGING_MODELS:
        style = paging.get("style") if isinstance(paging, dict) else paging
        issues.add((*at, "paging", "style") if isinstance(paging, dict) else (*at, "paging"),
                   f"unknown paging style '{style}'; known: {', '.join(PAGING_MODELS)}")
        req.paging = None
        return used
    model = PAGING_MODELS[paging["style"]]
    req.paging = _validate(model, paging, (*at, "paging"), issues)
    if req.paging is not None:
        for name in ("cursor_path", "link_path", "total_pages_path", "total_path", "has_more_path"):
            _path_ok(getattr(req.paging, name, None), (*at, "paging", name), issues)
        if req.paging.in_ == "body" and req.method == "GET":
            issues.add((*at, "paging", "in"), "paging parameters cannot go in the body of a GET request")
    return used


def _check_write(op: str, spec: WriteSpec, at: KeyPath, issues: Issues) -> None:
    used = _request_names(spec, WRITE_NAMES, at, issues)
    _path_ok(spec.id_path, (*at, "id_path"), issues)
    if op in ("update", "delete") and "id" not in used:
        issues.add(at, f"the {op} request must address the record: put {{id}} in its path, params or body")
    if op == "create" and "id" in used:
        issues.add(at, "a create has no {id} yet; use upsert for writes addressed by a business key")


def _check_rules(rules: list[ErrorRule], at: KeyPath, issues: Issues) -> None:
    for i, rule in enumerate(rules):
        _path_ok(rule.when.path, (*at, i, "when", "path"), issues)
        _path_ok(rule.message, (*at, i, "message"), issues)
        _path_ok(rule.code, (*at, i, "code"), issues)
        if rule.when.matches is not None:
            try:
                re.compile(rule.when.matches)
            except re.error as exc:
                issues.add((*at, i, "when", "matches"), f"bad regular expression: {exc}")


def _check_resource(name: str, raw: Any, issues: Issues) -> ResourceSpec | None:
    at: KeyPath = ("resources", name)
    res = _validate(ResourceSpec, raw, at, issues)
    if res is None:
        return None
    _path_ok(res.key, (*at, "key"), issues)
    _path_ok(res.updated_at, (*at, "updated_at"), issues)
    if "since" in _check_request(res.list_, raw["list"], (*at, "list"), READ_NAMES, issues, {"since"}):
        issues.add((*at, "list"), "the list request reads everything: move {since} into a `changes` request, "
                                  "or name the parameter in `since.param`")
    if res.changes is not None:
        used = _check_request(res.changes, raw["changes"], (*at, "changes"), READ_NAMES | {"since"}, issues)
        if "since" not in used and not (res.since and res.since.param):
            issues.add((*at, "changes"), "the changes request never uses the cursor: put {since} in it "
                                         "or give `since.param`")
    if res.since is not None:
        s = res.since
        if s.format not in SINCE_FORMATS and "%" not in s.format:
            issues.add((*at, "since", "format"), f"unknown format '{s.format}'; known: {', '.join(SINCE_FORMATS)}, "
                                                 "or a strftime pattern such as %Y-%m-%dT%H:%M:%S")
        try:
            ZoneInfo(s.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            issues.add((*at, "since", "timezone"), f"unknown time zone '{s.timezone}'")
        if res.changes is None and not s.param:
            issues.add((*at, "since"), "give `param` (the list request's parameter for the lower bound) "
                                       "or a `changes` request that uses {since}")
        target = res.changes or res.list_
        if s.param and s.in_ == "body" and target.method == "GET":
            issues.add((*at, "since", "in"), "the lower bound cannot go in the body of a GET request")
    for op in ("create", "update", "upsert", "delete"):
        spec = getattr(res, op)
        if spec is not None:
            _check_write(op, spec, (*at, op), issues)
    _check_rules(res.errors, (*at, "errors"), issues)
    return res


def _check_auth(raw: Any, issues: Issues) -> None:
    if not isinstance(raw, dict):
        issues.add(("auth",), "expected a map with `type` and the style's settings")
        return
    kind = raw.get("type")
    if kind not in AUTH_MODELS:
        issues.add(("auth", "type") if "type" in raw else ("auth",),
                   f"unknown auth type '{kind}'; known: {', '.join(AUTH_MODELS)}")
        return
    for key in AUTH_SECRETS[kind]:
        if raw.get(key) not in (None, ""):
            issues.add(("auth", key), f"secrets do not belong in an API description: set {key} in triad.yaml "
                                      f"(connectors.<name>.auth.{key}, e.g. from ${{ENV_VAR}})")
    data = {**raw, **{k: "x" for k in AUTH_SECRETS[kind] if k in raw}}
    model = _validate(AUTH_MODELS[kind], data, ("auth",), issues)
    if kind == "hmac" and model is not None:
        _names_ok(model.canonical, HMAC_NAMES, ("auth", "canonical"), issues, "the canonical string")
        for part in ("headers", "query"):
            _names_ok(getattr(model, part), HMAC_NAMES | {"signature"}, ("auth", part), issues, f"the signed {part}")
        if "signature" not in placeholders(model.headers) | placeholders(model.query):
            issues.add(("auth",), "the signature goes nowhere: put {signature} in auth.headers or auth.query")


def check_api(data: Any, file: str, lines: LineMap | None = None,
              problems: list[tuple[KeyPath, str, int]] = ()) -> tuple[ApiSpec | None, list[MappingIssue]]:
    """Check a parsed description; returns (spec, []) when good, else (None, every issue found)."""
    issues = Issues(file, lines or LineMap())
    for path, message, line in problems:
        issues.add(path, message, line)
    if not isinstance(data, dict):
        issues.add((), "an API description must be a YAML map with at least `resources`")
        return None, issues.items
    resources = data.get("resources")
    top = _validate(ApiSpec, {**data, "resources": {}}, (), issues)
    if top is not None:
        _check_auth(top.auth, issues)
        if top.base_url is not None and not re.match(r"^https?://", top.base_url):
            issues.add(("base_url",), f"'{top.base_url}' is not an http(s) URL")
        if top.check is not None:
            _check_request(top.check, data["check"], ("check",), set(), issues)
        _check_rules(top.errors, ("errors",), issues)
    checked: dict[str, ResourceSpec] = {}
    if not isinstance(resources, dict) or not resources:
        issues.add(("resources",), "no resources are described: give at least one, named like a mapping's `source`")
    else:
        for name, raw in resources.items():
            res = _check_resource(str(name), raw, issues)
            if res is not None:
                checked[str(name)] = res
    if issues.items or top is None:
        return None, sorted(issues.items, key=lambda i: i.line)
    top.resources = checked
    top._file = file
    return top, []


def _parse(text: str, file: str) -> tuple[ApiSpec | None, list[MappingIssue]]:
    try:
        doc = parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return None, [MappingIssue(file, mark.line + 1 if mark else 1, "",
                                   f"invalid YAML: {getattr(exc, 'problem', None) or exc}")]
    return check_api(doc.data, file, doc.lines, doc.problems)


def validate_api_file(path: str | Path) -> list[MappingIssue]:
    """Every issue of a description file (empty when it is good), each with file, line and key path."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [MappingIssue(str(path), 1, "", f"cannot read the API description: {exc}")]
    return _parse(text, str(path))[1]


def _locate(source: str, base_dir: str | Path, connector: str) -> Path:
    given = Path(base_dir) / source
    if given.is_file():
        return given
    shipped = shipped_api_dir() / (source if source.endswith((".yaml", ".yml")) else f"{source}.yaml")
    if "/" not in source and shipped.is_file():
        return shipped
    known = ", ".join(sorted(p.stem for p in shipped_api_dir().glob("*.yaml")))
    raise ConfigError(f"connectors.{connector}.api: no API description '{source}': {given} does not exist and "
                      f"it is not a shipped one (shipped: {known})")


def load_api(source: Any, base_dir: str | Path, connector: str) -> ApiSpec:
    """Load and check the ``api:`` of a rest connector: a shipped name, a file, or an inline map.

    Raises:
        ConfigError: the description is missing or has issues; the message lists all of them.
    """
    if isinstance(source, dict):
        # triad.yaml wraps values under secret-looking keys (token_url, X-API-Key ...); a description holds
        # no secrets (they are refused), so its values are plain
        api, issues = check_api(_plain(source), f"connectors.{connector}.api")
    elif isinstance(source, str) and source:
        path = _locate(source, base_dir, connector)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"connectors.{connector}.api: cannot read {path}: {exc}") from exc
        api, issues = _parse(text, str(path))
    else:
        raise ConfigError(f"connectors.{connector}.api: give the API description: a shipped name "
                          f"(e.g. hubspot), a YAML file relative to triad.yaml, or an inline map")
    if api is None:
        lines = "\n".join(f"  {issue}" for issue in issues)
        raise ApiDescriptionError(f"API description for connector {connector} has {len(issues)} "
                                  f"issue{'s' if len(issues) != 1 else ''}:\n{lines}", issues, connector=connector)
    return api


class ApiDescriptionError(ConfigError):
    """An API description with issues; ``issues`` holds each one (file, line, key path, message)."""

    def __init__(self, message: str, issues: list[MappingIssue], **context: object) -> None:
        super().__init__(message, **context)
        self.issues = issues


def config_problems(name: str, options: dict[str, Any], base_dir: str | Path) -> list[str]:
    """Every problem of a rest connector block found without reaching the API (for `triad config validate`)."""
    try:
        api = load_api(options.get("api"), base_dir, name)
    except ApiDescriptionError as exc:
        return [str(issue) for issue in exc.issues]
    except ConfigError as exc:
        return [exc.message]
    problems = []
    if not (options.get("base_url") or api.base_url):
        problems.append(f"connectors.{name}.base_url: the API description {api.file} has no base_url; set one")
    try:
        resolve_auth(api, options.get("auth"), name)
    except ConfigError as exc:
        problems.append(exc.message)
    return problems


def resolve_auth(api: ApiSpec, configured: Any, connector: str) -> AuthSpec:
    """The description's auth style completed with triad.yaml's ``auth:`` (which wins, key by key).

    Raises:
        ConfigError: a required value (usually a secret) is missing, or a value does not fit.
    """
    if configured is not None and not isinstance(configured, dict):
        raise ConfigError(f"connectors.{connector}.auth: expected a map (e.g. {{token: '${{API_TOKEN}}'}})")
    merged = {**api.auth, **(configured or {})}
    kind = reveal(merged.get("type", "none"))
    if kind not in AUTH_MODELS:
        raise ConfigError(f"connectors.{connector}.auth.type: unknown auth type '{kind}'; "
                          f"known: {', '.join(AUTH_MODELS)}")
    # only the style's secret fields stay wrapped (revealed at the point of use)
    merged = {k: v if k in AUTH_SECRETS[kind] else _plain(v) for k, v in merged.items()}
    try:
        spec = AUTH_MODELS[kind].model_validate(merged)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"connectors.{connector}.auth.{where}: {err['msg']}") from exc
    missing = [k for k in AUTH_REQUIRED[kind] if reveal(getattr(spec, k)) in (None, "")]
    if missing:
        example = f"{missing[0]}: ${{API_{missing[0].upper()}}}"
        raise ConfigError(f"connectors.{connector}.auth: the {kind} auth of {api.name or api.file} needs "
                          f"{', '.join(missing)} (set it in triad.yaml, e.g. {example})")
    return spec
