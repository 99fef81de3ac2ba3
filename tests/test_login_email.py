"""Logging in with an e-mail address (issue 13, item 6): Mastodon's password grant and login form
take the address, so apps that send it must work. An account has an optional address, unique and
kept in lower case, set by `fedsph user create --email`, `fedsph user email` or the invitation
form; the username keeps working. Bad or taken addresses are refused with a clear message and
change nothing."""

from __future__ import annotations

import re

import pytest
import requests
from mastodon import Mastodon
from mastodon.errors import MastodonIllegalArgumentError
from sqlalchemy import func, select

from fedsph import accounts
from fedsph.accounts import authenticate, normalize_email
from fedsph.models import Invite, LoginSession, OAuthToken, User
from fedsph.web.auth_middleware import LIMITER
from tests.processes import NodeProcess
from tests.support import testdb
from tests.support.members import PASSWORD, browser, login, make_user, post_form


def _users(node: NodeProcess) -> dict[str, str | None]:
    return dict(testdb.sql(node.data_dir, "SELECT username, email FROM users"))


def _password_grant(node: NodeProcess, login_name: str) -> Mastodon:
    client_id, client_secret = Mastodon.create_app("e-mail login", api_base_url=node.base)
    api = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=node.base)
    api.log_in(login_name, PASSWORD, allow_http=True, scopes=["read"])
    return api


@pytest.mark.e2e
def test_apps_and_the_login_form_take_the_address_or_the_username(tmp_path):
    node = NodeProcess(tmp_path / "node")
    node.cli("migrate")
    node.cli("user", "create", "ana", "--password-stdin", "--email", " Ana.Ruiz@Example.ORG ",
             stdin=PASSWORD + "\n")
    assert _users(node) == {"ana": "ana.ruiz@example.org"}

    # The CLI refuses a taken address (any case) and a non-address, and stores nothing.
    for address, said in (("ANA.RUIZ@example.org", "already used by another account"),
                          ("not an address", "is not an e-mail address"),
                          ("ana@localhost", "is not an e-mail address")):
        refused = node.cli("user", "create", "bea", "--password-stdin", "--email", address,
                           stdin=PASSWORD + "\n", check=False)
        assert refused.returncode == 1 and said in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
    assert _users(node) == {"ana": "ana.ruiz@example.org"}
    assert testdb.sql(node.data_dir, "SELECT count(*) FROM actors WHERE username = 'bea'") == [(0,)]

    node.start()
    try:
        for login_name in ("ana.ruiz@example.org", "ANA.RUIZ@EXAMPLE.ORG", "ana"):
            assert _password_grant(node, login_name).me()["username"] == "ana"
        for wrong in ("nobody@example.org", "ana.ruiz@example.com"):
            with pytest.raises(MastodonIllegalArgumentError, match="invalid_grant"):
                _password_grant(node, wrong)
        tokens = testdb.sql(node.data_dir, "SELECT count(*) FROM oauth_tokens")
        assert tokens == [(3,)]  # the three right logins' only

        page = requests.Session()
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.get(f"{node.base}/login").text)
        answer = page.post(f"{node.base}/login", allow_redirects=False, timeout=10, data={
            "csrf": csrf.group(1), "next": "/", "username": "Ana.Ruiz@example.org",
            "password": PASSWORD})
        assert answer.status_code == 303 and "fedsph_session" in answer.cookies

        # `fedsph user email`: show, change, refuse a bad one, remove; the old address stops working.
        assert node.cli("user", "email", "ana").stdout.strip() == "ana.ruiz@example.org"
        node.cli("user", "email", "ana", "ana@cooperativa.example")
        bad = node.cli("user", "email", "ana", "ana@@x", check=False)
        assert bad.returncode == 1 and "is not an e-mail address" in bad.stderr
        empty = node.cli("user", "email", "ana", " ", check=False)  # an unset shell variable
        assert empty.returncode == 1 and "use --remove" in empty.stderr
        assert _users(node) == {"ana": "ana@cooperativa.example"}
        assert _password_grant(node, "ana@cooperativa.example").me()["username"] == "ana"
        with pytest.raises(MastodonIllegalArgumentError, match="invalid_grant"):
            _password_grant(node, "ana.ruiz@example.org")
        node.cli("user", "email", "ana", "--remove")
        assert _users(node) == {"ana": None}
        assert node.cli("user", "email", "ana").stdout.strip() == "(no e-mail address)"
        missing = node.cli("user", "email", "nadie", "x@example.org", check=False)
        assert missing.returncode == 1 and "no user 'nadie'" in missing.stderr
    finally:
        node.stop()
    assert "Traceback" not in node.server_log()


@pytest.fixture
async def project(node):
    return await node.create_actor("coop", "Group")


async def _invite_link(node, project) -> str:
    await make_user(node, "ana", project)
    async with browser() as client:
        await login(client, node, "ana")
        response = await post_form(client, f"{node.base}/actors/coop/manage", {"action": "invite"})
        return re.search(r'value="(http[^"]+/invite/[^"]+)"', await response.text()).group(1)


async def _counts(node) -> tuple[int, int]:
    async with node.readers() as db:
        return (await db.scalar(select(func.count()).select_from(User)),
                await db.scalar(select(func.count()).where(Invite.used_at.is_not(None))))


async def test_the_invitation_form_takes_an_optional_address(node, project):
    link = await _invite_link(node, project)
    async with node.writers() as db, db.begin():
        ana = await db.scalar(select(User).where(User.username == "ana"))
        ana.email = "ana@coop.example"
    before = await _counts(node)
    async with browser() as newcomer:
        for address, said in (("carla@", "is not an e-mail address"),
                              ("ANA@coop.example", "already used by another account"),
                              ("x" * 250 + "@coop.example", "at most 254 characters")):
            response = await post_form(newcomer, link, {
                "username": "carla", "email": address, "password": PASSWORD,
                "password2": PASSWORD})
            text = await response.text()
            assert response.status == 400 and said in text, text
            assert 'value="carla"' in text  # what was typed is kept
        assert await _counts(node) == before  # nothing stored, the invitation still unused

        # In Spanish, the message is Spanish.
        response = await post_form(newcomer, link + "?lang=es", {
            "username": "carla", "email": "carla@", "password": PASSWORD, "password2": PASSWORD})
        assert "no es una dirección de correo" in await response.text()

        response = await post_form(newcomer, link, {
            "username": "carla", "email": "Carla@Coop.Example", "password": PASSWORD,
            "password2": PASSWORD})
        assert response.status == 303
    async with browser() as later:
        response = await login(later, node, "carla@coop.example")
        assert response.status == 303 and "fedsph_session" in response.cookies
    async with node.readers() as db:
        assert await db.scalar(select(User.email).where(User.username == "carla")) == \
            "carla@coop.example"


async def _token_request(client, node, login_name: str, password: str):
    async with client.post(f"{node.base}/api/v1/apps", data={
            "client_name": "probe", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob"}) as answer:
        app = await answer.json()
    return await client.post(f"{node.base}/oauth/token", data={
        "grant_type": "password", "client_id": app["client_id"],
        "client_secret": app["client_secret"], "username": login_name, "password": password})


async def _sessions_and_tokens(node) -> tuple[int, int]:
    async with node.readers() as db:
        return (await db.scalar(select(func.count()).select_from(LoginSession)),
                await db.scalar(select(func.count()).select_from(OAuthToken)))


async def test_a_wrong_try_counts_against_what_was_typed_never_the_account_it_names(node,
                                                                                    project):
    """A wrong password by address is counted under the address: if it counted under the
    account's name, a busy account's 429 would tell a stranger which address is whose."""
    await make_user(node, "ana", project)
    async with node.writers() as db, db.begin():
        (await db.scalar(select(User).where(User.username == "ana"))).email = "ana@coop.example"
    async with node.readers() as db:
        by_name = await authenticate(db, " Ana", "wrong password")
        by_address = await authenticate(db, " ANA@coop.example ", "wrong password")
        unknown = await authenticate(db, "Nobody@Coop.Example", "wrong password")
        right = await authenticate(db, "ana@coop.example", PASSWORD)
    assert by_name.user is None and by_address.user is None and unknown.user is None
    assert (by_name.account, by_address.account) == ("ana", "ana@coop.example")
    assert unknown.account == "nobody@coop.example"
    assert right.user is not None and right.user.username == "ana"

    limiter = node.app[LIMITER]
    async with browser() as client:
        await login(client, node, "ana@coop.example", password="wrong password")
        await login(client, node, "Ana", password="wrong password")
        for login_name in ("ANA@coop.example", "ana"):
            async with await _token_request(client, node, login_name, "wrong password") as answer:
                assert answer.status == 400 and (await answer.json())["error"] == "invalid_grant"
    assert limiter.by_account._failures["ana"][0] == 2
    assert limiter.by_account._failures["ana@coop.example"][0] == 2
    assert await _sessions_and_tokens(node) == (0, 0)


async def test_control_characters_and_odd_forms_of_an_address(node, project):
    """A NUL (PostgreSQL refuses it in a query) is a wrong login, never a 500; an address is
    found in any of the forms email-validator reads as the same (case, IDNA)."""
    await make_user(node, "ana", project)
    async with node.writers() as db, db.begin():
        (await db.scalar(select(User).where(User.username == "ana"))).email = \
            normalize_email("Ana@Bücher.Example")
    async with browser() as client:
        for login_name in ("ana\x00@coop.example", "an\x00a", "ana\x7f", "@", "a@b@c"):
            answer = await login(client, node, login_name, password=PASSWORD)
            assert answer.status in (401, 429), login_name  # 429 once this address is slowed
            async with await _token_request(client, node, login_name, PASSWORD) as answer:
                assert answer.status in (400, 429), login_name
        assert await _sessions_and_tokens(node) == (0, 0)
        limiter = node.app[LIMITER]
        limiter.by_address._failures.clear()  # a quiet hour later
        limiter._held.clear()
        for login_name in ("ana@xn--bcher-kva.example", "ANA@BÜCHER.example"):
            async with await _token_request(client, node, login_name, PASSWORD) as answer:
                assert answer.status == 200, login_name


async def test_an_address_taken_between_the_check_and_the_write_is_a_clear_refusal(
        node, project, monkeypatch):
    link = await _invite_link(node, project)
    async with node.writers() as db, db.begin():
        (await db.scalar(select(User).where(User.username == "ana"))).email = "ana@coop.example"
    before = await _counts(node)

    async def never_taken(*args, **kwargs) -> bool:  # as if the other insert had not committed yet
        return False

    monkeypatch.setattr(accounts, "email_taken", never_taken)
    async with browser() as newcomer:
        response = await post_form(newcomer, link, {
            "username": "carla", "email": "ana@coop.example", "password": PASSWORD,
            "password2": PASSWORD})
        assert response.status == 400
        assert "taken a moment ago" in await response.text()
    assert await _counts(node) == before
