"""Accept header negotiation (RFC 9110 12.5.1), enough for choosing among a handful of
media types; nothing acceptable is a 406 in the interface's error format."""

from __future__ import annotations

from fastapi import Request

from assetvault.errors import NotAcceptable


def _ranges(header: str) -> list[tuple[str, float]]:
    out = []
    for item in header.split(","):
        parts = [p.strip() for p in item.split(";")]
        if not parts[0]:
            continue
        q = 1.0
        for param in parts[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        out.append((parts[0].lower(), q))
    return out


def _quality(ranges: list[tuple[str, float]], offered: str) -> float:
    main = offered.lower().partition("/")[0]
    best, best_specificity = 0.0, -1
    for pattern, q in ranges:
        pmain, _, psub = pattern.partition("/")
        if pattern == offered.lower():
            specificity = 2
        elif pmain == main and psub == "*":
            specificity = 1
        elif pattern == "*/*":
            specificity = 0
        else:
            continue
        if specificity > best_specificity:
            best, best_specificity = q, specificity
    return best


def negotiate(request: Request, offered: list[str]) -> str:
    """The offered type the client prefers (first offered on ties)."""
    header = request.headers.get("accept")
    if not header or not header.strip():
        return offered[0]
    ranges = _ranges(header)
    scored = [(_quality(ranges, o), -i, o) for i, o in enumerate(offered)]
    q, _, choice = max(scored)
    if q <= 0:
        raise NotAcceptable(f"this resource is available as {', '.join(offered)}")
    return choice


JSON_TYPES = ["application/json"]
