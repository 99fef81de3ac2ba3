"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, for the e-mail tests.

It runs in a thread of its own, so both an in-process node and a `fedsph serve` process can
send to it; it can be stopped and started again on the same port (a mail server that is down).
"""

from __future__ import annotations

import re
import time
import warnings
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.fakepeer import free_port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def text(self) -> str:
        return self.message.get_content()

    def link(self, path: str) -> str:
        """The first link in the text whose path starts with `path` (e.g. "/password/reset/")."""
        found = re.search(r"https?://\S+" + re.escape(path) + r"\S+", self.text)
        assert found, f"no {path} link in:\n{self.text}"
        return found.group(0)


class MailServer:
    """`tls`: None (plain), "starttls" (offers and requires STARTTLS) or "tls" (TLS from the
    first byte), with `certificate` (tests/support/tls.py); `login`: (user, password) it wants."""

    def __init__(self, port: int | None = None, tls: str | None = None, certificate=None,
                 login: tuple[str, str] | None = None):
        self.port = port or free_port()
        self.received: list[Received] = []
        self.controller: Controller | None = None
        self.tls, self.certificate, self.login = tls, certificate, login
        self.logins: list[str] = []

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        if isinstance(auth_data, LoginPassword) and self.login is not None and \
                (auth_data.login.decode(), auth_data.password.decode()) == self.login:
            self.logins.append(auth_data.login.decode())
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.original_content or envelope.content,
                                     policy=policy.default)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"

    def start(self) -> MailServer:
        options: dict = {}
        if self.login is not None:
            options.update(authenticator=self._authenticate, auth_required=True)
        if self.tls == "starttls":
            options.update(tls_context=self.certificate.server_context(), require_starttls=True)
        elif self.tls == "tls":
            # aiosmtpd offers AUTH only after its own STARTTLS unless told otherwise; this
            # connection is TLS from the first byte.
            options.update(ssl_context=self.certificate.server_context(), auth_require_tls=False)
        else:
            options["auth_require_tls"] = False
        with warnings.catch_warnings():  # its warning about AUTH without its STARTTLS (above)
            warnings.simplefilter("ignore", UserWarning)
            self.controller = Controller(self, hostname="127.0.0.1", port=self.port, **options)
            self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def env(self) -> dict[str, str]:
        """The settings that point a node at this server (plain SMTP: it is on loopback)."""
        return {"FEDSPH_SMTP_HOST": "127.0.0.1", "FEDSPH_SMTP_PORT": str(self.port),
                "FEDSPH_SMTP_TLS": "none", "FEDSPH_SMTP_FROM": "Red Coop <noreply@coop.example>"}

    def settings(self) -> dict:
        """The same as make_settings keyword arguments."""
        return {"smtp_host": "127.0.0.1", "smtp_port": self.port, "smtp_tls": "none",
                "smtp_from": "Red Coop <noreply@coop.example>"}

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(self.received) >= count, f"{len(self.received)} mails, not {count}"
        return self.received
