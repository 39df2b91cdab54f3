"""Strict mode (``serve --strict``, ``ASSETVAULT_STRICT=true``; docs/ci.md, "Lenient
by default").

By default every interface is lenient where AEM clients vary: a header, query parameter
or API-version marker it does not know is ignored, never a failed request. In strict
mode this middleware answers 400, in the interface's own error format, to:

- a query parameter the operation does not take (the operation's declared parameters,
  plus those a route reads by hand, named here with :func:`takes_query`);
- an API-version marker Assetvault does not know: ``X-Adobe-Accept-Experimental`` with
  another value than ``1`` (the only one AEM's Author API has defined).

Unknown headers stay ignored in strict mode too: proxies, gateways and client
libraries add their own, and no AEM server refuses them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.routing import BaseRoute, Match, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from assetvault.api.errors import error_response

EXPERIMENTAL = "x-adobe-accept-experimental"
KNOWN_EXPERIMENTAL = frozenset({"1"})
ANY = None  # every query parameter is taken (the classic API's folder properties)

F = TypeVar("F", bound=Callable[..., Any])
# Route functions that read query parameters by hand: method -> names (ANY: all).
_BY_HAND: dict[Callable[..., Any], dict[str, frozenset[str] | None]] = {}


def takes_query(**by_method: Collection[str] | None) -> Callable[[F], F]:
    """Names the query parameters a route function reads by hand, per method (``ANY``:
    every parameter is the operation's own)."""

    def mark(fn: F) -> F:
        _BY_HAND[fn] = {
            method.upper(): None if names is None else frozenset(names)
            for method, names in by_method.items()
        }
        return fn

    return mark


def _flat(routes: list[BaseRoute]) -> Iterator[BaseRoute]:
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's included router
        if included is not None:
            yield from _flat(included.routes)
        else:
            yield route


def _declared(dependant: Any) -> set[str]:
    names = {str(p.alias) for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _declared(sub)
    return names


class StrictRequests:
    """Refuses unknown query parameters and API-version markers (installed only when
    the settings say strict)."""

    def __init__(self, app: ASGIApp, router: Router) -> None:
        self.app = app
        self.router = router
        self._routes: list[BaseRoute] | None = None
        self._known: dict[tuple[int, str], frozenset[str] | None] = {}

    def _route(self, scope: Scope) -> BaseRoute | None:
        """The route the router will pick (the first that matches fully), from the
        routes in their order, included routers opened (taken at the first request,
        when every router is in)."""
        if self._routes is None:
            self._routes = list(_flat(self.router.routes))
        for route in self._routes:
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return route
        return None

    def _known_query(self, route: APIRoute, method: str) -> frozenset[str] | None:
        key = (id(route), method)
        if key not in self._known:
            by_hand = _BY_HAND.get(route.endpoint, {})
            if method in by_hand and by_hand[method] is ANY:
                self._known[key] = ANY
            else:
                extra = by_hand.get(method) or frozenset()
                self._known[key] = frozenset(_declared(route.dependant)) | extra
        return self._known[key]

    def _fault(self, scope: Scope) -> str | None:
        for name, value in scope.get("headers", []):
            if name.decode("latin-1").lower() == EXPERIMENTAL:
                given = value.decode("latin-1").strip()
                if given not in KNOWN_EXPERIMENTAL:
                    return (
                        f"X-Adobe-Accept-Experimental: {given!r} is not an API version "
                        "Assetvault knows (1); the server runs in strict mode"
                    )
        query = scope.get("query_string", b"").decode("latin-1")
        if not query:
            return None
        route = self._route(scope)
        if not isinstance(route, APIRoute):
            return None  # static files and the like take what they like
        known = self._known_query(route, scope["method"])
        if known is ANY:
            return None
        names = {name for name, _ in parse_qsl(query, keep_blank_values=True)}
        unknown = sorted(names - known)
        if unknown:
            return (
                f"unknown query parameter(s): {', '.join(unknown)}; the server runs in strict mode"
            )
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            fault = self._fault(scope)
            if fault is not None:
                response = error_response(Request(scope, receive), 400, fault)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
