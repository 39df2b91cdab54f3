"""What the source clients share: JSON calls through the guarded client, the bounded
and typed reading of every answer, and the OAuth 2 token endpoint (RFC 6749 section
4.1.3 and 6, with PKCE, RFC 7636).

A provider is an outside party: its answers are read with a size bound (the call's
``limit``), a nesting bound, by a parser that refuses NaN, Infinity and numbers beyond
a double, and then into a strict model of the documented shape (no coercion: a number
in place of a string, a string in place of a number, a fraction for a size are refused).
Whatever does not fit is a ProviderError naming the call and the fault, never another
exception.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from assetvault import jsontext
from assetvault.adapters.fetch.client import GuardedClient, ResponseTooLarge, read_capped
from assetvault.adapters.fetch.guard import FetchBlocked
from assetvault.imports.ports import FetchFailed, Tokens

MAX_JSON_BYTES = 16 * 1024 * 1024
MAX_JSON_DEPTH = 32
MAX_TOKEN_SECONDS = 10 * 365 * 24 * 3600

# The value types of answers: strings with a length bound, sizes in 63 bits.
Text = Annotated[StrictStr, Field(max_length=4096)]
Short = Annotated[StrictStr, Field(max_length=256)]
Secret = Annotated[StrictStr, Field(min_length=1, max_length=65536)]
Size = Annotated[StrictInt, Field(ge=0, lt=2**63)]

_M = TypeVar("_M", bound=BaseModel)


class Answer(BaseModel):
    """A provider's JSON object: the documented fields, strictly typed; others ignored."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True, populate_by_name=True)


class ProviderError(FetchFailed):
    """The provider refused or failed a call; ``status`` is what Assetvault answers."""


async def call(
    client: GuardedClient,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
    what: str,
    limit: int = MAX_JSON_BYTES,
) -> tuple[int, bytes, httpx.Headers]:
    try:
        async with client.stream(method, url, headers=headers, content=content) as fetched:
            body = await read_capped(fetched.response, limit)
            return fetched.response.status_code, body, fetched.response.headers
    except FetchBlocked as exc:
        raise ProviderError(f"{what}: the address is refused: {exc.reason}", 502) from None
    except ResponseTooLarge:
        raise ProviderError(f"{what}: the answer is larger than {limit} bytes", 502) from None
    except httpx.HTTPError as exc:
        raise ProviderError(f"{what}: {type(exc).__name__}: {exc}", 502) from None


def _fault(exc: ValidationError) -> str:
    error = exc.errors(include_url=False, include_input=False)[0]
    place = "/" + "/".join(str(part) for part in error["loc"])
    return f"{place}: {error['msg']}"


def parse(body: bytes, what: str, model: type[_M]) -> _M:
    """The answer as ``model``, or ProviderError saying why it is not one."""
    try:
        value = jsontext.loads(body, max_depth=MAX_JSON_DEPTH)
    except jsontext.JSONTextError as exc:
        raise ProviderError(
            f"{what}: the answer is not JSON Assetvault accepts: {exc}", 502
        ) from None
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise ProviderError(
            f"{what}: the answer is not of the documented shape: {_fault(exc)}", 502
        ) from None


def parse_or_none(body: bytes, model: type[_M]) -> _M | None:
    """An error answer's details, when it has any of the documented shape."""
    try:
        return model.model_validate(jsontext.loads(body, max_depth=MAX_JSON_DEPTH))
    except (jsontext.JSONTextError, ValidationError):
        return None


def snippet(body: bytes) -> str:
    """The start of an answer that is no JSON, printable, for a message."""
    text = body[:200].decode("utf-8", "replace")
    return "".join(c if c.isprintable() else "?" for c in text)


class TokenAnswer(Answer):
    """RFC 6749 section 5.1."""

    access_token: Secret
    refresh_token: Secret | None = None
    expires_in: Annotated[StrictInt, Field(ge=0, le=MAX_TOKEN_SECONDS)] | None = None


class TokenError(Answer):
    """RFC 6749 section 5.2."""

    error: Short | None = None
    error_description: Text | None = None


def tokens_from(answer: TokenAnswer, previous_refresh: str | None = None) -> Tokens:
    return Tokens(
        access_token=answer.access_token,
        # A refresh answer may leave the refresh token out: the old one stays valid.
        refresh_token=answer.refresh_token or previous_refresh,
        expires_at=(
            datetime.now(UTC) + timedelta(seconds=answer.expires_in)
            if answer.expires_in is not None
            else None
        ),
    )


async def token_request(
    client: GuardedClient, url: str, form: dict[str, str], *, what: str
) -> TokenAnswer:
    status, body, _ = await call(
        client,
        "POST",
        url,
        headers={"content-type": "application/x-www-form-urlencoded", "accept": "application/json"},
        content=str(httpx.QueryParams(form)).encode(),
        what=what,
    )
    if status != 200:
        error = parse_or_none(body, TokenError)
        reason = error and (error.error_description or error.error)
        raise ProviderError(
            f"{what}: the provider answered {status} ({reason or 'no reason'})", 400
        )
    return parse(body, what, TokenAnswer)


class CodeFlowClient:
    """A source client's side of its provider's OAuth 2 code flow with PKCE: the
    authorization code exchanged for tokens, and a refresh. Subclasses set the token
    endpoint, their name (for messages) and what else the provider wants in the form."""

    client: GuardedClient
    client_id: str
    client_secret: str
    token_url: str
    provider = "the provider"
    token_form: dict[str, str] = {}  # noqa: RUF012 - read only; a subclass replaces it

    def _client_form(self) -> dict[str, str]:
        form = {"client_id": self.client_id, **self.token_form}
        if self.client_secret:
            form["client_secret"] = self.client_secret
        return form

    async def exchange(self, code: str, code_verifier: str, redirect_uri: str) -> Tokens:
        answer = await token_request(
            self.client,
            self.token_url,
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": code_verifier,
                **self._client_form(),
            },
            what=f"{self.provider} authorisation",
        )
        return tokens_from(answer)

    async def refresh(self, refresh_token: str) -> Tokens:
        answer = await token_request(
            self.client,
            self.token_url,
            {"grant_type": "refresh_token", "refresh_token": refresh_token, **self._client_form()},
            what=f"{self.provider} token refresh",
        )
        return tokens_from(answer, refresh_token)
