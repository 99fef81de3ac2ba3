"""The words of each mail, in the reader's language (the interface catalogs, es/fr/pt). Plain
text: no markup to escape, and text from other servers (handles) is cut to one short line."""

from __future__ import annotations

from fedsph.i18n import N_, translate
from fedsph.mail.message import one_line

RESET_SUBJECT = N_("Reset your password on %(node)s")
RESET_BODY = N_("Someone (hopefully you) asked to reset the password of the account "
                "%(username)s on %(node)s.\n\nTo choose a new password, open this link within "
                "an hour. It works once:\n%(link)s\n\nIf you did not ask for this, ignore this "
                "mail: your password stays as it is.")
CONFIRM_SUBJECT = N_("Confirm your e-mail address on %(node)s")
CONFIRM_BODY = N_("Open this link to confirm that %(address)s is the address of the account "
                  "%(username)s on %(node)s:\n%(link)s\n\nThe link works for 7 days. Until "
                  "the address is confirmed, nothing else is sent to it.")
INVITE_SUBJECT = N_("Invitation to join %(project)s on %(node)s")
INVITE_BODY = N_("%(inviter)s invites you to join %(project)s on %(node)s.\n\nTo create your "
                 "account, open this link. It works once, for 7 days:\n%(link)s\n\nIf you do "
                 "not know this project, ignore this mail.")
NOTICE_SUBJECTS = {
    "follows": N_("Follow requests are waiting on %(node)s"),
    "comments": N_("Comments are waiting for approval on %(node)s"),
    "hub": N_("Projects ask to join the hub on %(node)s"),
}
NOTICE_INTROS = {
    "follows": N_("These accounts ask to follow you or your projects:"),
    "comments": N_("These comments wait for your approval:"),
    "hub": N_("These projects ask to join the hub:"),
}
NOTICE_MORE = N_("and %(count)s more.")
NOTICE_ANSWER = N_("Answer them here:")
NOTICE_FOOTER = N_("You get at most one such mail an hour, and only when something new waits. "
                   "To stop these mails, open this link:")


def reset_mail(lang: str, node: str, username: str, link: str) -> tuple[str, str]:
    return (translate(lang, RESET_SUBJECT, node=node),
            translate(lang, RESET_BODY, node=node, username=username, link=link))


def confirm_mail(lang: str, node: str, username: str, address: str, link: str) -> tuple[str, str]:
    return (translate(lang, CONFIRM_SUBJECT, node=node),
            translate(lang, CONFIRM_BODY, node=node, username=username, address=address,
                      link=link))


def invite_mail(lang: str, node: str, inviter: str, project: str, link: str) -> tuple[str, str]:
    return (translate(lang, INVITE_SUBJECT, node=node, project=project),
            translate(lang, INVITE_BODY, node=node, inviter=inviter, project=project, link=link))


def notice_mail(lang: str, node: str, topic: str, lines: list[tuple[str, str]], more: int,
                pages: list[str], unsubscribe: str) -> tuple[str, str]:
    """`lines`: (who, where) per waiting item; `pages`: where to answer them."""
    body = [translate(lang, NOTICE_INTROS[topic]), ""]
    body += [f"- {one_line(who, 120)} → {one_line(where, 120)}" for who, where in lines]
    if more > 0:
        body.append(translate(lang, NOTICE_MORE, count=more))
    body += ["", translate(lang, NOTICE_ANSWER), *pages, "", "-- ",
             translate(lang, NOTICE_FOOTER), unsubscribe]
    return translate(lang, NOTICE_SUBJECTS[topic], node=node), "\n".join(body)
