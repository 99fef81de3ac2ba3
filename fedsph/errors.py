"""Exceptions that carry their HTTP meaning; one middleware renders them."""


class HTTPProblem(Exception):
    status = 500

    def __init__(self, message: str = "", *, headers: dict[str, str] | None = None):
        super().__init__(message or self.__class__.__name__)
        self.message = message or self.__class__.__name__
        self.headers = headers or {}


class BadRequest(HTTPProblem):
    status = 400


class Unauthorized(HTTPProblem):
    status = 401


class Forbidden(HTTPProblem):
    status = 403


class NotFound(HTTPProblem):
    status = 404


class NotAcceptable(HTTPProblem):
    status = 406


class Gone(HTTPProblem):
    status = 410


class PayloadTooLarge(HTTPProblem):
    status = 413


class UnsupportedMediaType(HTTPProblem):
    status = 415


class UnprocessableEntity(HTTPProblem):
    status = 422


class FetchError(Exception):
    """A remote fetch failed; `status` is the HTTP status if there was one."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class BlockedAddress(FetchError):
    """The target resolves to an address we must not contact (SSRF guard)."""
