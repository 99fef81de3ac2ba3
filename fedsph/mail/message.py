"""One mail as bytes for SMTP, built with the standard library. Pure.

Everything in a header comes from us or was checked, but a project's name, a subject or an
address could still carry a line break: that would let its author add headers (a Bcc to
anyone). So every header value is reduced to one line of printable text here, and addresses
are refused unless they are one plain address (RFC 5322 forms a mail server might read two in,
such as a comma or a group, are refused).
"""

from __future__ import annotations

from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid
from urllib.parse import urlsplit

import idna

from fedsph.config import one_address
from fedsph.errors import UserError

SUBJECT_MAX = 200


def one_line(text: str, limit: int = SUBJECT_MAX) -> str:
    """Text for a header: control characters (line breaks among them) become spaces."""
    cleaned = "".join(ch if ch.isprintable() else " " for ch in text)
    return " ".join(cleaned.split())[:limit]


def plain_address(text: str) -> str:
    """The one address in `text` (a bare address or `Name <address>`); UserError otherwise
    (without the text: an address is never logged)."""
    address = one_address(text)
    if address is None:
        raise UserError("not one e-mail address")
    return address


def ascii_domain(address: str) -> str:
    """The address with its domain in ASCII ("bücher.example" as "xn--bcher-kva.example"), as
    the SMTP envelope and the To header carry it; UserError if the domain has none.

    UTS #46 without transitional mapping (IDNA 2008, what browsers and registries use): IDNA
    2003, Python's "idna" codec, maps "straße.de" to "strasse.de" and drops a zero-width
    joiner, both someone else's domain, where a confirmation or reset link would then go. So
    a domain with no valid form is refused, never sent on in another form."""
    local, _, domain = address.rpartition("@")
    if domain.isascii():
        return address
    try:
        return f"{local}@{idna.encode(domain, uts46=True, transitional=False).decode('ascii')}"
    except (idna.IDNAError, UnicodeError, ValueError):
        raise UserError("the address's domain is not a valid internationalized name") from None


def address_forms(address: str) -> set[str]:
    """The address as given, with its domain in ASCII and in Unicode where these exist: the
    forms a mail server may give back in a reply we log (fedsph/mail/sender.py hides them)."""
    forms = {address}
    local, _, domain = address.rpartition("@")
    for convert in (lambda: ascii_domain(address),
                    lambda: f"{local}@{idna.decode(domain, uts46=True)}"):
        try:
            forms.add(convert())
        except (UserError, idna.IDNAError, UnicodeError, ValueError):
            pass
    return forms


def build_message(sender: str, to: str, subject: str, body: str, domain: str,
                  unsubscribe: str | None = None) -> EmailMessage:
    """A plain-text mail (UTF-8) with From, To, Subject, Date and a Message-ID of our domain;
    with `unsubscribe` (our own URL) a List-Unsubscribe header, which mail programs show as a
    button (RFC 2369), and List-Unsubscribe-Post: a program may unsubscribe in one click by a
    POST to that URL (RFC 8058), which needs no other proof than the URL's signature."""
    message = EmailMessage()
    name, _ = getaddresses([sender])[0]
    address = plain_address(sender)
    local, _, host = address.rpartition("@")
    message["From"] = Address(one_line(name), local, host) if name else address
    # ASCII, as in the envelope: a server without SMTPUTF8 refuses a non-ASCII domain here too.
    message["To"] = ascii_domain(plain_address(to))
    message["Subject"] = one_line(subject)
    message["Date"] = formatdate(usegmt=True)
    # The host alone: "[::1]:8080" is an IPv6 literal and a port, not split at its first colon.
    message["Message-ID"] = make_msgid(domain=urlsplit(f"//{domain}").hostname or None)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to us
    if unsubscribe:
        message["List-Unsubscribe"] = f"<{one_line(unsubscribe, 500)}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(body, charset="utf-8", cte="quoted-printable")
    return message
