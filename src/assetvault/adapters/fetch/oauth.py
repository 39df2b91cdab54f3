"""What the source clients share: JSON calls through the guarded client, and the OAuth 2
token endpoint (RFC 6749 section 4.1.3 and 6, with PKCE, RFC 7636)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from assetvault.adapters.fetch.client import GuardedClient, ResponseTooLarge, read_capped
from assetvault.adapters.fetch.guard import FetchBlocked
from assetvault.imports.ports import FetchFailed, Tokens

MAX_JSON_BYTES = 16 * 1024 * 1024


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


def parse(body: bytes, what: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise ProviderError(f"{what}: the answer is not JSON", 502) from None


def tokens_from(answer: Any, previous_refresh: str | None = None) -> Tokens:
    if not isinstance(answer, dict) or not isinstance(answer.get("access_token"), str):
        raise ProviderError("the token endpoint answered without an access_token", 502)
    expires = answer.get("expires_in")
    return Tokens(
        access_token=answer["access_token"],
        # A refresh answer may leave the refresh token out: the old one stays valid.
        refresh_token=answer.get("refresh_token") or previous_refresh,
        expires_at=(
            datetime.now(UTC) + timedelta(seconds=int(expires))
            if isinstance(expires, int | float)
            else None
        ),
    )


async def token_request(client: GuardedClient, url: str, form: dict[str, str], *, what: str) -> Any:
    status, body, _ = await call(
        client,
        "POST",
        url,
        headers={"content-type": "application/x-www-form-urlencoded", "accept": "application/json"},
        content=str(httpx.QueryParams(form)).encode(),
        what=what,
    )
    answer = parse(body, what) if body else {}
    if status != 200:
        reason = answer.get("error_description") or answer.get("error") if answer else None
        raise ProviderError(
            f"{what}: the provider answered {status} ({reason or 'no reason'})", 400
        )
    return answer


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
