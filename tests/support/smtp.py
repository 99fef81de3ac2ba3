"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, for the e-mail tests.

It runs in a thread of its own, so both an in-process node and a `fedsph serve` process can
send to it; it can be stopped and started again on the same port (a mail server that is down).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller

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
    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.received: list[Received] = []
        self.controller: Controller | None = None

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.original_content or envelope.content,
                                     policy=policy.default)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"

    def start(self) -> MailServer:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
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
