"""Domain errors. Services raise these; each API maps them to its own wire format."""

from __future__ import annotations


class AssetvaultError(Exception):
    status = 500
    title = "Internal Server Error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(AssetvaultError):
    status = 400
    title = "Bad Request"


class Unauthorized(AssetvaultError):
    status = 401
    title = "Unauthorized"


class Forbidden(AssetvaultError):
    status = 403
    title = "Forbidden"


class NotFound(AssetvaultError):
    status = 404
    title = "Not Found"


class AlreadyExists(AssetvaultError):
    status = 409
    title = "Conflict"


class Conflict(AssetvaultError):
    status = 409
    title = "Conflict"


class PreconditionFailed(AssetvaultError):
    status = 412
    title = "Precondition Failed"


class PreconditionRequired(AssetvaultError):
    status = 428
    title = "Precondition Required"


class NotAcceptable(AssetvaultError):
    status = 406
    title = "Not Acceptable"


class UnsupportedMediaType(AssetvaultError):
    status = 415
    title = "Unsupported Media Type"


class PayloadTooLarge(AssetvaultError):
    status = 413
    title = "Payload Too Large"


class RangeNotSatisfiable(AssetvaultError):
    status = 416
    title = "Range Not Satisfiable"


class BadGateway(AssetvaultError):
    status = 502
    title = "Bad Gateway"


class Unavailable(AssetvaultError):
    """Not ready yet (e.g. the search index is being built): try again shortly."""

    status = 503
    title = "Service Unavailable"


class InsufficientStorage(AssetvaultError):
    """The data directory's disk (or the database's) is full: nothing was changed, and
    the same request succeeds once there is room again."""

    status = 507
    title = "Insufficient Storage"
