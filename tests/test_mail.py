"""E-mail (issue 14, item 3) in one process, with a real SMTP server on loopback (aiosmtpd):
notices batched at most once an hour per member and topic, with a working unsubscribe link;
a mail server down then up loses nothing; TLS never lowered; header injection and account
enumeration refused with nothing stored or sent; expired, used and voided links refused with
nothing changed; settings checked at start."""

from __future__ import annotations

import shlex
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from fedsph.config import ConfigError, load_settings
from fedsph.mail import links
from fedsph.models import (
    Actor,
    Follow,
    Hub,
    HubMembership,
    MailNotice,
    MailToken,
    Object,
    OutgoingMail,
    User,
    utcnow,
)
from fedsph.web.mail_pages import FORGOT_LOOKUPS
from tests.support.mail import member as _member
from tests.support.mail import remote_actor as _remote
from tests.support.members import PASSWORD, browser, post_form
from tests.support.nodes import make_settings, start_node
from tests.support.pages import audit
from tests.support.smtp import MailServer
from tests.support.tls import make_ca


async def _mails(node) -> list[OutgoingMail]:
    async with node.readers() as db:
        return list(await db.scalars(select(OutgoingMail).order_by(OutgoingMail.id)))


async def _add_follow(node, follower: Actor, followed: Actor) -> None:
    async with node.writers() as db, db.begin():
        db.add(Follow(follower_id=follower.id, followed_id=followed.id, state="pending"))


async def _an_hour_passes(node) -> None:
    async with node.writers() as db, db.begin():
        for notice in await db.scalars(select(MailNotice)):
            if notice.last_mailed_at is not None:
                notice.last_mailed_at -= timedelta(hours=1, minutes=1)


async def test_notices_are_batched_hourly_and_the_unsubscribe_link_works(mail_node, mail_server):
    node = mail_node
    coop = await node.create_actor("coop", manually_approves=True)
    await _member(node, "ana", coop, "ana@coop.example")
    await _member(node, "bea", coop, "bea@coop.example", confirmed=False)  # gets nothing
    await _member(node, "admin", None, "admin@coop.example", admin=True)  # not a member of coop
    bob, carl, dan = [await _remote(node, name) for name in ("bob", "carl", "dan")]
    await _add_follow(node, bob, coop)
    await _add_follow(node, carl, coop)
    await node.run_worker()
    assert len(mail_server.received) == 1
    mail = mail_server.received[0]
    assert mail.rcpt_tos == ["ana@coop.example"]
    assert "bob@remote.example" in mail.text and "carl@remote.example" in mail.text
    assert f"{node.base}/actors/coop/manage" in mail.text

    # Something new within the hour: no mail yet. Nothing new after the hour: no mail either.
    await _add_follow(node, dan, coop)
    await node.run_worker()
    assert len(mail_server.received) == 1
    await _an_hour_passes(node)
    await node.run_worker()
    assert len(mail_server.received) == 2 and "dan@remote.example" in mail_server.received[1].text
    await _an_hour_passes(node)
    await node.run_worker()
    assert len(mail_server.received) == 2

    # Held comments are another topic, with their own hour and their own link.
    async with node.writers() as db, db.begin():
        db.add(Object(uri=f"{node.base}/objects/1", type="Note", actor_id=coop.id, local=True,
                      content="<p>news</p>"))
        db.add(Object(uri="https://remote.example/notes/9", type="Note", actor_id=bob.id,
                      in_reply_to=f"{node.base}/objects/1", approved=False, content="<p>hi</p>"))
    await node.run_worker()
    assert len(mail_server.received) == 3
    comments = mail_server.received[2]
    assert "approval" in comments.message["Subject"]

    # The unsubscribe link: GET only asks; POST stops that topic, not the others.
    link = mail_server.received[1].link("/mail/unsubscribe/")
    async with browser() as client:
        async with client.get(link) as page:
            assert page.status == 200 and "follow requests" in await page.text()
        async with node.readers() as db:
            assert await db.scalar(select(func.count()).select_from(MailNotice).where(
                MailNotice.unsubscribed_at.is_not(None))) == 0
        forged = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
        async with client.get(forged) as page:
            assert page.status == 404
        response = await post_form(client, forged, {}, page=link)
        assert response.status == 404
        response = await post_form(client, link, {})
        assert response.status == 200
    eve = await _remote(node, "eve")
    await _add_follow(node, eve, coop)
    await _an_hour_passes(node)
    await node.run_worker()
    assert len(mail_server.received) == 3  # unsubscribed from follow requests
    async with node.writers() as db, db.begin():
        db.add(Object(uri="https://remote.example/notes/10", type="Note", actor_id=carl.id,
                      in_reply_to=f"{node.base}/objects/1", approved=False, content="<p>x</p>"))
    await node.run_worker()
    assert len(mail_server.received) == 4  # comments still come
    assert all(m.rcpt_tos == ["ana@coop.example"] for m in mail_server.received)
    assert mail_server.received[1].message["List-Unsubscribe"] == f"<{link}>"


async def test_finished_mails_and_dead_links_are_pruned(mail_node):
    node = mail_node
    ana = await _member(node, "ana", None, "ana@coop.example")
    old = utcnow() - timedelta(days=8)
    async with node.writers() as db, db.begin():
        db.add(OutgoingMail(kind="reset", user_id=ana.id, to_address="ana@coop.example",
                            status="sent", finished_at=old))
        db.add(OutgoingMail(kind="reset", user_id=ana.id, to_address="ana@coop.example",
                            status="pending", created_at=old, next_attempt_at=utcnow() +
                            timedelta(hours=1)))
        user = await db.get(User, ana.id)
        await links.make_reset_link(db, user, timedelta(seconds=-1))
        await links.make_confirm_link(db, user, "ana@coop.example")
    await node.worker()._prune_now_and_then()  # the worker's hourly housekeeping
    assert [m.status for m in await _mails(node)] == ["pending"]  # work left is kept
    async with node.readers() as db:
        assert list(await db.scalars(select(MailToken.purpose))) == ["confirm"]


async def test_hub_join_requests_reach_the_coordinators(mail_node, mail_server):
    node = mail_node
    hub = await node.create_actor("hub")
    async with node.writers() as db, db.begin():
        db.add(Hub(actor_id=hub.id))
    await _member(node, "admin", None, "admin@coop.example", admin=True)
    await _member(node, "coordinator", hub, "co@coop.example")
    project = await _remote(node, "barrio")
    async with node.writers() as db, db.begin():
        db.add(HubMembership(hub_id=hub.id, project_id=project.id, state="requested"))
    await node.run_worker()
    assert sorted(m.rcpt_tos[0] for m in mail_server.received) == [
        "admin@coop.example", "co@coop.example"]
    assert all(f"{node.base}/hub/manage" in m.text for m in mail_server.received)


async def test_a_mail_server_down_then_up_loses_nothing(mail_node, mail_server):
    node = mail_node
    await _member(node, "ana", None, "ana@coop.example")
    mail_server.stop()
    async with browser() as client:
        response = await post_form(client, f"{node.base}/password/forgot", {"login": "ana"})
        assert response.status == 200
    await node.run_worker()
    [mail] = await _mails(node)
    assert mail.status == "pending" and mail.attempts == 1 and mail.last_error
    async with node.readers() as db:  # a link is minted when a mail is written: still unsent
        assert await db.scalar(select(func.count()).select_from(MailToken)) == 1
    mail_server.start()
    async with node.writers() as db, db.begin():
        await db.execute(update(OutgoingMail).values(next_attempt_at=utcnow()))
    await node.run_worker()
    [mail] = await _mails(node)
    assert mail.status == "sent" and len(mail_server.received) == 1
    async with node.readers() as db:  # the link of the failed try was voided by the sent one
        assert await db.scalar(select(func.count()).select_from(MailToken)) == 1


async def test_starttls_is_never_lowered_to_plain_text(tmp_path, mail_server):
    settings = make_settings(tmp_path, **{**mail_server.settings(), "smtp_tls": "starttls"})
    node = await start_node(settings)
    try:
        await _member(node, "ana", None, "ana@coop.example")
        async with browser() as client:
            await post_form(client, f"{node.base}/password/forgot", {"login": "ana"})
        await node.run_worker()
        [mail] = await _mails(node)
        assert mail.status == "pending" and "STARTTLS" in mail.last_error
        assert mail_server.received == []
    finally:
        await node.runner.cleanup()


@pytest.mark.parametrize("mode", ["starttls", "tls"])
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # see MailServer
async def test_encrypted_and_logged_in_with_a_trusted_certificate_only(tmp_path, mode):
    """TLS as configured, the certificate checked against FEDSPH_CA_BUNDLE, and the login sent
    inside it; a certificate from another authority gets no mail (and no password)."""
    ca, stranger = make_ca(tmp_path / "ca"), make_ca(tmp_path / "other-ca")
    server = MailServer(tls=mode, certificate=ca, login=("mailer", "s3cret pass")).start()
    overrides = {**server.settings(), "smtp_tls": mode, "smtp_username": "mailer",
                 "smtp_password": "s3cret pass"}
    try:
        for bundle, delivered in ((stranger.ca_file, False), (ca.ca_file, True)):
            folder = tmp_path / ("trusted" if delivered else "untrusted")
            folder.mkdir()
            node = await start_node(make_settings(folder, ca_bundle=str(bundle), **overrides))
            try:
                await _member(node, "ana", None, "ana@coop.example")
                async with browser() as client:
                    await post_form(client, f"{node.base}/password/forgot", {"login": "ana"})
                await node.run_worker()
                [mail] = await _mails(node)
                assert (mail.status == "sent") is delivered, mail.last_error
            finally:
                await node.runner.cleanup()
        assert len(server.received) == 1 and server.logins == ["mailer"]
    finally:
        server.stop()


async def test_enumeration_gets_one_answer_and_sends_nothing(mail_node, mail_server):
    node = mail_node
    await _member(node, "ana", None, "ana@coop.example")
    await _member(node, "bea", None, "bea@coop.example", confirmed=False)
    await _member(node, "cris", None, None)
    answers = set()
    async with browser() as client:
        for login in ("nadie", "nobody@coop.example", "bea", "bea@coop.example", "cris",
                      "ana\r\nBcc: evil@evil.example", "ana@coop.example, evil@evil.example",
                      "", "x" * 300, "ana\x00"):
            response = await post_form(client, f"{node.base}/password/forgot", {"login": login})
            assert response.status == 200
            answers.add(await response.text())
    assert len(answers) == 1
    await node.run_worker()
    assert await _mails(node) == [] and mail_server.received == []
    async with node.readers() as db:
        assert await db.scalar(select(func.count()).select_from(MailToken)) == 0


async def test_forgot_is_rate_limited_per_address_and_per_account(mail_node, mail_server):
    node = mail_node
    await _member(node, "ana", None, "ana@coop.example")
    async with browser() as client:
        for _ in range(8):
            response = await post_form(client, f"{node.base}/password/forgot", {"login": "ana"})
            assert response.status == 200 and "on its way" in await response.text()
    await node.run_worker()
    assert len(await _mails(node)) == 1 and len(mail_server.received) == 1


async def test_header_injection_is_refused(mail_node, mail_server):
    node = mail_node
    coop = await node.create_actor("coop")
    async with node.writers() as db, db.begin():
        (await db.get(Actor, coop.id)).name = "Coop\r\nBcc: evil@evil.example"
    await _member(node, "ana", coop, "ana@coop.example")
    async with browser() as client:
        await post_form(client, f"{node.base}/login", {"username": "ana", "password": PASSWORD,
                                                       "next": "/"})
        for address in ("carla@coop.example\r\nBcc: evil@evil.example",
                        "carla@coop.example, evil@evil.example", "Carla <evil@evil.example>"):
            response = await post_form(client, f"{node.base}/actors/coop/manage",
                                       {"action": "invite", "email": address})
            assert response.status == 400, address
        assert await _mails(node) == []
        response = await post_form(client, f"{node.base}/actors/coop/manage",
                                   {"action": "invite", "email": "Carla@Coop.Example"})
        assert response.status == 303
    await node.run_worker()
    [mail] = mail_server.received
    assert mail.rcpt_tos == ["carla@coop.example"]
    assert "Bcc" not in mail.message and "\n" not in mail.message["Subject"]
    assert "Coop Bcc: evil@evil.example" in mail.message["Subject"]  # one harmless line


async def test_expired_used_and_voided_links_change_nothing(mail_node):
    node = mail_node
    ana = await _member(node, "ana", None, "ana@coop.example")

    async def link(lifetime=links.RESET_BY_ADMIN) -> str:
        async with node.writers() as db, db.begin():
            return await links.make_reset_link(db, await db.get(User, ana.id), lifetime)

    async def password_hash() -> str:
        async with node.readers() as db:
            return await db.scalar(select(User.password_hash).where(User.id == ana.id))

    async def try_reset(token: str) -> int:
        async with browser() as client:
            url = f"{node.base}/password/reset/{token}"
            async with client.get(url) as page:
                status = page.status
            response = await post_form(client, url, {"password": "brand new password",
                                                     "password2": "brand new password"},
                                       page=f"{node.base}/login")
            assert response.status == status
            return status

    before = await password_hash()
    old = await link()
    newer = await link()
    assert await try_reset(old) == 410  # voided by the newer one
    expired = await link(timedelta(seconds=-1))
    assert await try_reset(expired) == 410
    assert await try_reset(newer) == 410  # voided by `expired`, made after it
    assert await try_reset("not-a-token") == 410
    assert await password_hash() == before
    current = await link()
    async with node.writers() as db, db.begin():  # the password changes some other way
        (await db.get(User, ana.id)).password_hash = "changed elsewhere"
    assert await try_reset(current) == 410
    assert await password_hash() == "changed elsewhere"


async def test_the_pages_are_accessible_and_translated(mail_node, mail_server):
    node = mail_node
    ana = await _member(node, "ana", None, "ana@coop.example")
    async with node.writers() as db, db.begin():
        user = await db.get(User, ana.id)
        reset = await links.make_reset_link(db, user, links.RESET_BY_ADMIN)
        user.email = "new@coop.example"
        confirm = await links.make_confirm_link(db, user, "new@coop.example")
    pages = ["/login", "/password/forgot", f"/password/reset/{reset}", "/password/reset/gone",
             f"/email/confirm/{confirm}", "/email/confirm/gone", "/mail/unsubscribe/1.hub.x"]
    async with browser() as client:
        for lang, word in (("en", "password"), ("es", "contraseña")):
            for path in pages:
                async with client.get(node.base + path, params={"lang": lang}) as response:
                    assert response.status in (200, 404, 410), path
                    text = await response.text()
                    assert audit(text) == [], path
            async with client.get(f"{node.base}/password/forgot", params={"lang": lang}) as page:
                assert word in (await page.text()).lower()


async def test_mails_are_in_the_language_of_the_last_login(mail_node, mail_server):
    node = mail_node
    await _member(node, "ana", None, "ana@coop.example")
    async with browser() as client:
        await post_form(client, f"{node.base}/login?lang=fr", {
            "username": "ana", "password": PASSWORD, "next": "/"})
    async with node.readers() as db:
        assert await db.scalar(select(User.language).where(User.username == "ana")) == "fr"
    async with browser() as client:
        await post_form(client, f"{node.base}/password/forgot", {"login": "ana"})
    await node.run_worker()
    [mail] = mail_server.received
    assert mail.message["Subject"].startswith("Réinitialisez votre mot de passe")
    assert "une heure" in mail.text or "l'heure" in mail.text


async def test_without_smtp_nothing_is_queued_and_pages_say_so(node):
    """No FEDSPH_SMTP_HOST: no mail loop, the forms offer no mail, nothing is stored."""
    coop = await node.create_actor("coop")
    await _member(node, "ana", coop, "ana@coop.example")
    assert node.worker().mail is None
    async with browser() as client:
        response = await post_form(client, f"{node.base}/password/forgot", {"login": "ana"},
                                   page=f"{node.base}/login")  # (no form on this page)
        assert response.status == 200 and "sends no e-mail" in await response.text()
        await post_form(client, f"{node.base}/login", {"username": "ana", "password": PASSWORD,
                                                       "next": "/"})
        async with client.get(f"{node.base}/actors/coop/manage") as page:
            assert 'name="email"' not in await page.text()
        response = await post_form(client, f"{node.base}/actors/coop/manage",
                                   {"action": "invite", "email": "carla@coop.example"})
        assert response.status == 200 and "/invite/" in await response.text()  # the link
    assert await _mails(node) == []


@pytest.mark.parametrize(("env", "said"), [
    ({"FEDSPH_SMTP_TLS": "ssl"}, "FEDSPH_SMTP_TLS must be starttls, tls or none"),
    ({"FEDSPH_SMTP_HOST": "mail.example.org"}, "FEDSPH_SMTP_FROM is needed"),
    ({"FEDSPH_SMTP_FROM": "a@example.org"}, "FEDSPH_SMTP_HOST is empty"),
    ({"FEDSPH_SMTP_HOST": "mail.example.org", "FEDSPH_SMTP_FROM": "a@example.org",
      "FEDSPH_SMTP_USERNAME": "u"}, "go together"),
    ({"FEDSPH_SMTP_HOST": "mail.example.org", "FEDSPH_SMTP_FROM": "a@example.org",
      "FEDSPH_SMTP_TLS": "none", "FEDSPH_SMTP_USERNAME": "u", "FEDSPH_SMTP_PASSWORD": "p"},
     "unencrypted"),
    ({"FEDSPH_SMTP_HOST": "mail.example.org", "FEDSPH_SMTP_FROM": "a@x.org\r\nBcc: b@y.org"},
     "must be one e-mail address"),
    ({"FEDSPH_SMTP_HOST": "mail.example.org", "FEDSPH_SMTP_FROM": "a@x.org",
      "FEDSPH_SMTP_PORT": "99999"}, "FEDSPH_SMTP_PORT must be 1-65535"),
])
def test_mail_settings_are_checked_at_start(env, said):
    with pytest.raises(ConfigError, match=said):
        load_settings(environ=env)


def test_no_mail_settings_means_no_mail():
    settings = load_settings(environ={})
    assert settings.smtp_host == "" and settings.smtp_tls == "starttls"


def test_the_readme_example_settings_load():
    """The `export` lines of the README's "E-mail" section are settings fedsph accepts."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("\n## E-mail\n", 1)[1].split("<!-- end of E-mail -->", 1)[0]
    env = dict(shlex.split(line.removeprefix("export "))[0].split("=", 1)
               for line in section.splitlines() if line.startswith("export FEDSPH_SMTP_"))
    assert len(env) == 6
    settings = load_settings(environ=env)
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_tls) == \
        ("smtp.example.org", 587, "starttls")
    assert settings.smtp_from == "Our cooperative <noreply@coop.example>"


async def test_a_mail_whose_reason_went_is_not_sent(mail_node, mail_server):
    """Queued, then the address changed (or the account went): nothing is sent, nothing minted."""
    node = mail_node
    ana = await _member(node, "ana", None, "ana@coop.example")
    bea = await _member(node, "bea", None, "bea@coop.example")
    async with browser() as client:
        for login in ("ana", "bea"):
            await post_form(client, f"{node.base}/password/forgot", {"login": login})
    await node.app[FORGOT_LOOKUPS].settled()  # the resets are queued (after the answers)
    async with node.writers() as db, db.begin():
        (await db.get(User, ana.id)).email = "other@coop.example"
        await db.delete(await db.get(User, bea.id))
    await node.run_worker()
    assert [(m.kind, m.status) for m in await _mails(node)] == [("reset", "cancelled")]
    assert mail_server.received == []
    async with node.readers() as db:
        assert await db.scalar(select(func.count()).select_from(MailToken)) == 0


def test_the_commands_without_smtp_say_what_is_missing(fedsph):
    assert fedsph("migrate")[0] == 0
    assert fedsph("project", "create", "coop", "--name", "Coop")[0] == 0
    code, out = fedsph("invite", "coop", "--email", "carla@coop.example")
    assert code == 1 and "sends no e-mail" in out and "Traceback" not in out
    code, out = fedsph("invite", "coop")  # the printed link still works without mail
    assert code == 0 and "/invite/" in out
    assert fedsph("user", "create", "ana", "--password-stdin", stdin=PASSWORD + "\n")[0] == 0
    code, out = fedsph("user", "reset-link", "ana")
    assert code == 0 and "/password/reset/" in out
