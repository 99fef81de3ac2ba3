"""E-mail end to end (issue 14, items 2 and 3) through a real `fedsph serve` (with its worker)
and the real command line, sending to a real SMTP server on loopback (aiosmtpd): a reset link
from `fedsph user reset-link`, "forgot password" by mail, an invitation by mail and the
confirmation of the address typed when it is accepted. Every command of the README's "E-mail"
section and of its reset-link block runs here."""

from __future__ import annotations

import re

import pytest
import requests

from tests.processes import NodeProcess
from tests.support import testdb
from tests.support.members import PASSWORD
from tests.support.smtp import MailServer

pytestmark = pytest.mark.e2e
NEW_PASSWORD = "a new long password"


def _csrf(session: requests.Session, url: str) -> str:
    page = session.get(url, timeout=10)
    assert page.status_code == 200, page.text
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def _post(session: requests.Session, url: str, fields: dict, page: str | None = None):
    return session.post(url, data={"csrf": _csrf(session, page or url), **fields},
                        allow_redirects=False, timeout=10)


def _logs_in(node: NodeProcess, login: str, password: str) -> requests.Session | None:
    session = requests.Session()
    answer = _post(session, f"{node.base}/login", {"username": login, "password": password,
                                                   "next": "/"})
    return session if answer.status_code == 303 else None


def _hash(node: NodeProcess) -> str:
    return testdb.sql(node.data_dir, "SELECT password_hash FROM users WHERE username = 'ana'")[0][0]


@pytest.fixture
def mail_server():
    server = MailServer().start()
    yield server
    server.stop()


def test_reset_invite_and_confirm_through_a_real_node_and_smtp_server(tmp_path, mail_server):
    node = NodeProcess(tmp_path / "node", **mail_server.env())
    node.cli("migrate")
    node.cli("project", "create", "coop", "--name", "Red Coop")
    node.cli("user", "create", "ana", "--password-stdin", "--project", "coop",
             "--email", "ana@coop.example", stdin=PASSWORD + "\n")
    printed = node.cli("user", "reset-link", "ana").stdout
    link = re.search(r"http\S+/password/reset/\S+", printed).group(0)
    assert "24 hours" in printed
    missing = node.cli("user", "reset-link", "nadie", check=False)
    assert missing.returncode == 1 and "no user 'nadie'" in missing.stderr
    node.start()
    try:
        # A logged-in browser and an app token, both ended by the reset.
        before = _logs_in(node, "ana", PASSWORD)
        assert before is not None
        manage = f"{node.base}/actors/coop/manage"
        assert before.get(manage, timeout=10).url == manage
        old_hash = _hash(node)
        app = requests.post(f"{node.base}/api/v1/apps", timeout=10, data={
            "client_name": "phone", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob"}).json()
        token = requests.post(f"{node.base}/oauth/token", timeout=10, data={
            "grant_type": "password", "client_id": app["client_id"],
            "client_secret": app["client_secret"], "username": "ana", "password": PASSWORD,
            "scope": "read"}).json()["access_token"]
        me = f"{node.base}/api/v1/accounts/verify_credentials"
        bearer = {"Authorization": f"Bearer {token}"}
        assert requests.get(me, headers=bearer, timeout=10).status_code == 200

        newcomer = requests.Session()
        form = newcomer.get(link, timeout=10)
        assert form.status_code == 200 and 'name="password2"' in form.text
        assert _hash(node) == old_hash  # a GET changes nothing
        mismatch = _post(newcomer, link, {"password": NEW_PASSWORD, "password2": "other one"})
        assert mismatch.status_code == 400 and _hash(node) == old_hash
        done = _post(newcomer, link, {"password": NEW_PASSWORD, "password2": NEW_PASSWORD})
        assert done.status_code == 200 and "logged out everywhere" in done.text
        assert _hash(node) != old_hash
        assert "/login" in before.get(manage, timeout=10).url  # the old session is gone
        assert requests.get(me, headers=bearer, timeout=10).status_code == 401  # and the app's
        assert _logs_in(node, "ana", PASSWORD) is None
        assert _logs_in(node, "ana", NEW_PASSWORD) is not None
        # The link works once.
        changed = _hash(node)
        assert newcomer.get(link, timeout=10).status_code == 410
        again = newcomer.post(link, data={"csrf": _csrf(newcomer, f"{node.base}/login"),
                                          "password": PASSWORD, "password2": PASSWORD},
                              timeout=10)
        assert again.status_code == 410 and _hash(node) == changed

        # "Forgot password" by mail: the address was set by an admin, so it counts as confirmed.
        forgot = requests.Session()
        answer = _post(forgot, f"{node.base}/password/forgot", {"login": "ANA@coop.example"})
        assert answer.status_code == 200 and "on its way" in answer.text
        mail = mail_server.wait_for(1)[0]
        assert mail.rcpt_tos == ["ana@coop.example"] and mail.message["To"] == "ana@coop.example"
        assert mail.message["Message-ID"] and mail.message["Date"]
        mailed = mail.link("/password/reset/")
        assert _post(forgot, mailed, {"password": PASSWORD, "password2": PASSWORD}
                     ).status_code == 200
        assert _logs_in(node, "ana@coop.example", PASSWORD) is not None

        # An invitation by mail (the command of the README), accepted with a typed address,
        # which gets a confirmation mail and counts only once confirmed.
        node.cli("invite", "coop", "--email", "carla@coop.example", "--language", "es")
        invitation = mail_server.wait_for(2)[1]
        assert invitation.rcpt_tos == ["carla@coop.example"]
        assert "Red Coop" in invitation.message["Subject"]
        assert "invita" in invitation.text  # Spanish
        carla = requests.Session()
        joined = _post(carla, invitation.link("/invite/") + "?lang=es", {
            "username": "carla", "email": "carla@coop.example", "password": PASSWORD,
            "password2": PASSWORD})
        assert joined.status_code == 303
        confirm = mail_server.wait_for(3)[2]
        assert confirm.rcpt_tos == ["carla@coop.example"]
        assert confirm.message["Subject"].startswith("Confirma tu dirección")  # joined in Spanish
        confirmed = "SELECT email_confirmed FROM users WHERE username = 'carla'"
        # (A typed address is confirmed by its owner; one an admin sets counts at once.)
        node.cli("user", "email", "ana", "ana@coop.example")
        assert testdb.sql(node.data_dir, "SELECT email_confirmed FROM users WHERE username "
                                         "= 'ana'") == [("ana@coop.example",)]
        assert testdb.sql(node.data_dir, confirmed) == [(None,)]
        link = confirm.link("/email/confirm/")
        assert "carla@coop.example" in carla.get(link, timeout=10).text
        assert testdb.sql(node.data_dir, confirmed) == [(None,)]  # GET: only a question
        assert _post(carla, link, {}).status_code == 200
        assert testdb.sql(node.data_dir, confirmed) == [("carla@coop.example",)]
    finally:
        node.stop()
    log = node.server_log()
    assert "Traceback" not in log
    assert "/password/reset/REDACTED" in log and mailed.rsplit("/", 1)[1] not in log
