"""Sending one message to the configured SMTP server (aiosmtplib).

The TLS mode is what FEDSPH_SMTP_TLS says, never less: `starttls` requires the upgrade (a
server, or someone in the middle, that does not offer STARTTLS makes the send fail; aiosmtplib's
default would quietly go on in clear), `tls` speaks TLS from the first byte, `none` never
encrypts (config.py allows a password with it only to this machine). Certificates are checked
against the system's authorities plus FEDSPH_CA_BUNDLE's.

aiosmtplib is imported on the first send only: a node without SMTP never loads it.
"""

from __future__ import annotations

import ssl
from email.message import EmailMessage

from fedsph.config import Settings, outgoing_tls_context, smtp_port
from fedsph.mail.message import ascii_domain


class MailRefused(Exception):
    """The server refused this mail for good (a 5xx for the recipient or the message)."""


class MailNotSent(Exception):
    """Worth trying again: the server is down or slow, or answered 4xx."""


def _tls_context(settings: Settings) -> ssl.SSLContext:
    return outgoing_tls_context(settings.ca_bundle) or ssl.create_default_context()


async def send_message(settings: Settings, message: EmailMessage) -> None:
    """Send, or raise: MailRefused for a permanent refusal, MailNotSent for anything worth
    trying again (server down, timeout, a 4xx)."""
    import aiosmtplib  # only when mail is on (see the module's doc)

    tls = settings.smtp_tls
    options = {"use_tls": tls == "tls", "start_tls": tls == "starttls"}
    if tls != "none":
        options["tls_context"] = _tls_context(settings)
    # The envelope's domains in ASCII: a non-ASCII domain is refused by servers without SMTPUTF8.
    envelope = {"sender": ascii_domain(message["From"].addresses[0].addr_spec),
                "recipients": [ascii_domain(message["To"].addresses[0].addr_spec)]}
    try:
        await aiosmtplib.send(
            message, **envelope, hostname=settings.smtp_host, port=smtp_port(settings),
            username=settings.smtp_username or None, password=settings.smtp_password or None,
            timeout=settings.http_timeout, **options)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        if all(500 <= error.code < 600 for error in exc.recipients):
            raise MailRefused(str(exc)) from None
        raise MailNotSent(str(exc)) from None
    except aiosmtplib.SMTPResponseException as exc:
        if 500 <= exc.code < 600 and not isinstance(exc, aiosmtplib.SMTPAuthenticationError):
            raise MailRefused(f"{exc.code} {exc.message}") from None
        raise MailNotSent(f"{exc.code} {exc.message}") from None
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise MailNotSent(f"{type(exc).__name__}: {exc}") from None
