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


class Gone(HTTPProblem):
    status = 410


class PayloadTooLarge(HTTPProblem):
    status = 413


class UnsupportedMediaType(HTTPProblem):
    status = 415


class ServiceUnavailable(HTTPProblem):
    """We cannot do it now (e.g. the database refused a write); trying later may work."""

    status = 503


class FetchError(Exception):
    """A remote fetch failed; `status` is the HTTP status if there was one."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class BlockedAddress(FetchError):
    """The target resolves to an address we must not contact (SSRF guard)."""


def N_(message: str) -> str:
    """Marks a message id for Babel (like fedsph.i18n.N_, which would be a circular import here)."""
    return message


class Term(str):
    """A UserError parameter that is itself translated: an English word naming a field ("start")."""


class UserError(Exception):
    """Input someone can fix: English in str() (CLI, logs, the API), translatable for web pages.

    The only exception (with HTTPProblem) whose message reaches the person: the CLI prints it on
    one line and exits 1, the web middleware answers 400, the client API 422. It is not a
    ValueError on purpose: a ValueError is a bug (or unparsed input) and must show its traceback.

    Built from a message id (an English %-format string marked with N_ so Babel extracts it) and
    named parameters: UserError(N_("a title is limited to %(limit)s characters"), limit=200).
    Parameters are left as they are (slugs, numbers, what the person typed), except Term words;
    the sentence around them is translated.
    """

    def __init__(self, message_id: str, **params):
        self.message_id = message_id
        self.params = params
        super().__init__(message_id % params if params else message_id)

    def translate(self, gettext) -> str:
        """The message in the language of gettext (a catalog's gettext method)."""
        text = gettext(self.message_id)
        params = {name: gettext(value) if isinstance(value, Term) else value
                  for name, value in self.params.items()}
        try:
            return text % params if params else text
        except (KeyError, TypeError, ValueError):  # a translation that broke a %(name)s field
            return str(self)
