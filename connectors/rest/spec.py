"""The typed model of a REST API description (``config/rest/*.yaml``).

One description tells the generic ``rest`` connector how to talk to one API:
base URL, auth style, rate-limit headers, errors hidden in HTTP 200 bodies, and
per resource (the ``source`` of a mapping) the list request, the incremental
request, the record path, the paging style and the write requests. The shipped
``config/rest/hubspot.yaml`` documents every key. Structure is checked here;
loading and the checks that need more than one key live in
:mod:`connectors.rest.spec_load`.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
Where = Literal["query", "body"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --- conditions on response bodies --------------------------------------------------------------

OPERATORS = ("equals", "not_equals", "in", "not_in", "exists", "matches")


class Condition(_Strict):
    """A test on one value of a response body, e.g. ``{path: success, equals: false}``."""

    path: str
    equals: Any = None
    not_equals: Any = None
    in_: list[Any] | None = Field(None, alias="in")
    not_in: list[Any] | None = None
    exists: bool | None = None
    matches: str | None = None

    @model_validator(mode="after")
    def _one_operator(self) -> "Condition":
        given = [op for op in ("equals", "not_equals", "in_", "not_in", "exists", "matches")
                 if op in self.model_fields_set]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(OPERATORS)} (got {len(given)})")
        return self


class ErrorRule(_Strict):
    """An error the API reports in the body of an HTTP 2xx answer, and what happens next.

    ``action``: fatal (the stream stops; the change fails), retry (transient: retried with
    backoff), limit (the request budget is spent: the stream stops cleanly, resumes next run),
    skip (the one change fails, the others go on; reads treat it as fatal).
    """

    when: Condition
    action: Literal["fatal", "retry", "limit", "skip"] = "fatal"
    message: str | None = None      # path of the error message in the body
    code: str | None = None         # path of the error code in the body


class RateLimitSpec(_Strict):
    """Rate-limit headers: pause before the budget runs out instead of collecting 429s."""

    remaining_header: str = "X-RateLimit-Remaining"
    reset_header: str | None = "X-RateLimit-Reset"
    reset_format: Literal["seconds", "milliseconds", "epoch", "epoch_ms"] = "seconds"
    min_remaining: int = Field(0, ge=0)
    default_wait_seconds: float = Field(1.0, ge=0)     # when the reset header is missing
    max_wait_seconds: float = Field(60.0, ge=0)        # longer waits stop the stream until the next run


# --- paging -------------------------------------------------------------------------------------

class _Paging(_Strict):
    in_: Where = Field("query", alias="in")            # where the paging parameters go
    max_pages: int | None = Field(None, gt=0)          # a safety stop


class PagePaging(_Paging):
    style: Literal["page"]
    param: str = "page"
    start: int = 1
    size_param: str | None = "per_page"
    size: int = Field(100, gt=0)               # asked for; a server may serve fewer and still have more
    total_pages_path: str | None = None        # decides the end when given (has_more_path first)
    has_more_path: str | None = None


class OffsetPaging(_Paging):
    style: Literal["offset"]
    param: str = "offset"
    start: int = 0
    size_param: str | None = "limit"
    size: int = Field(100, gt=0)               # asked for; a server may serve fewer and still have more
    total_path: str | None = None              # decides the end when given (has_more_path first)
    has_more_path: str | None = None


class CursorPaging(_Paging):
    style: Literal["cursor"]
    param: str = "cursor"
    cursor_path: str
    size_param: str | None = None
    size: int | None = Field(None, gt=0)
    has_more_path: str | None = None


class NextLinkPaging(_Paging):
    style: Literal["next_link"]
    link_path: str
    size_param: str | None = None
    size: int | None = Field(None, gt=0)


class LinkHeaderPaging(_Paging):
    style: Literal["link_header"]
    rel: str = "next"
    size_param: str | None = None
    size: int | None = Field(None, gt=0)


class NoPaging(_Paging):
    style: Literal["none"]


PAGING_MODELS: dict[str, type[_Paging]] = {
    "page": PagePaging, "offset": OffsetPaging, "cursor": CursorPaging, "next_link": NextLinkPaging,
    "link_header": LinkHeaderPaging, "none": NoPaging}
Paging = PagePaging | OffsetPaging | CursorPaging | NextLinkPaging | LinkHeaderPaging | NoPaging


# --- requests -----------------------------------------------------------------------------------

class RequestSpec(_Strict):
    """One read request; string values may hold placeholders (``{since}``, ``{fields}`` ...)."""

    method: Method = "GET"
    path: str
    params: dict[str, Any] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None
    records: str = "$"                 # where the records are in the body
    paging: Any = None                 # checked by style into one of PAGING_MODELS
    sorted: bool = False               # records come oldest change first: the cursor may advance per page


class WriteSpec(_Strict):
    """One write request; ``{values}`` is the mapped record, ``{id}`` the system's id."""

    method: Method = "POST"
    path: str
    params: dict[str, Any] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = "{values}"
    id_path: str | None = None         # where the answer holds the record's id (default: the resource key)


SINCE_FORMATS = ("iso", "iso_offset", "iso_ms", "unix", "unix_ms", "date")


class SinceSpec(_Strict):
    """How a read asks for records changed at or after the cursor."""

    param: str | None = None           # added to the list request; or use {since} in a `changes` request
    in_: Where = Field("query", alias="in")
    format: str = "iso"                # one of SINCE_FORMATS, or a strftime pattern such as %Y-%m-%d %H:%M:%S
    timezone: str = "UTC"              # for `date` and strftime patterns
    overlap_seconds: float = Field(0, ge=0)


class ResourceSpec(_Strict):
    """One collection of the API, named by a mapping's ``source``."""

    key: str | None = None             # the record id (default: the mapping's key)
    updated_at: str | None = None      # the change timestamp (default: the mapping's updated_at)
    field_prefix: str | None = None    # {fields} lists mapped paths under this prefix, without it
    list_: RequestSpec = Field(alias="list")
    changes: RequestSpec | None = None
    since: SinceSpec | None = None
    create: WriteSpec | None = None
    update: WriteSpec | None = None
    upsert: WriteSpec | None = None
    delete: WriteSpec | None = None
    errors: list[ErrorRule] = Field(default_factory=list)     # checked before the description's own rules


# --- auth ---------------------------------------------------------------------------------------

class BearerAuth(_Strict):
    type: Literal["bearer"]
    token: Any = None
    header: str = "Authorization"
    prefix: str = "Bearer"


class ApiKeyAuth(_Strict):
    type: Literal["api_key"]
    api_key: Any = None
    in_: Literal["header", "query"] = Field("header", alias="in")
    name: str = "X-API-Key"
    prefix: str = ""


class BasicAuth(_Strict):
    type: Literal["basic"]
    username: Any = None
    password: Any = None


class OAuth2Auth(_Strict):
    type: Literal["oauth2"]
    token_url: str
    client_id: Any = None
    client_secret: Any = None
    refresh_token: Any = None
    scope: str | None = None
    audience: str | None = None
    client_auth: Literal["basic", "body"] = "basic"
    extra: dict[str, str] = Field(default_factory=dict)
    leeway_seconds: float = Field(30, ge=0)
    header: str = "Authorization"
    prefix: str = "Bearer"


class HmacAuth(_Strict):
    type: Literal["hmac"]
    key_id: Any = None
    secret: Any = None
    algorithm: Literal["sha1", "sha256", "sha512"] = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    canonical: str
    timestamp: Literal["unix", "unix_ms", "iso"] = "unix"
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, str] = Field(default_factory=dict)


class NoAuth(_Strict):
    type: Literal["none"]


AUTH_MODELS: dict[str, type[_Strict]] = {"bearer": BearerAuth, "api_key": ApiKeyAuth, "basic": BasicAuth,
                                         "oauth2": OAuth2Auth, "hmac": HmacAuth, "none": NoAuth}
AuthSpec = BearerAuth | ApiKeyAuth | BasicAuth | OAuth2Auth | HmacAuth | NoAuth
# secrets never sit in an API description: they come from triad.yaml (or the environment through it)
AUTH_SECRETS = {"bearer": ("token",), "api_key": ("api_key",), "basic": ("password",),
                "oauth2": ("client_secret", "refresh_token"), "hmac": ("secret",), "none": ()}
AUTH_REQUIRED = {"bearer": ("token",), "api_key": ("api_key",), "basic": ("username", "password"),
                 "oauth2": ("client_id", "client_secret"), "hmac": ("key_id", "secret"), "none": ()}
HMAC_NAMES = {"method", "path", "query", "timestamp", "nonce", "body", "body_sha256", "body_md5", "content_type",
              "host", "key_id"}


class ApiSpec(_Strict):
    """The whole description file."""

    version: Literal[1] = 1
    name: str | None = None
    base_url: str | None = None
    auth: dict[str, Any] = Field(default_factory=lambda: {"type": "none"})
    headers: dict[str, str] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    rate_limit: RateLimitSpec | None = None
    errors: list[ErrorRule] = Field(default_factory=list)
    check: RequestSpec | None = None
    resources: dict[str, ResourceSpec]

    _file: str = PrivateAttr("")           # where it was loaded from, for messages

    @property
    def file(self) -> str:
        return self._file

    def resource(self, source: str) -> ResourceSpec | None:
        return self.resources.get(source)
