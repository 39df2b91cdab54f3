"""Downloads are events: a response that sends an original's or a rendition's bytes
(a GET answered 200 or 206, whatever the interface, or 302 to the object store that
sends them instead) leaves an ``asset.downloaded`` outbox row. The row is written beside
the response, not before it, grouped with the other downloads of the moment
(tree/downloads.py; docs/events.md says what that gives up)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from assetvault.api.deps import services
from assetvault.tree.models import Node


async def counted(request: Request, response: Response, node: Node, rendition: str) -> Response:
    if request.method == "GET" and response.status_code in (200, 206, 302):
        principal = getattr(request.state, "principal", None)
        services(request).tree.downloads.note(
            node, rendition, principal.name if principal else None
        )
    return response
