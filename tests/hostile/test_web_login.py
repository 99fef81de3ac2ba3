"""Hostile visitors of the login: open redirects, forged X-Forwarded-For, lock-outs, and the logs."""

from __future__ import annotations

import logging
import re
from urllib.parse import urlencode, urljoin, urlsplit

import aiohttp
import orjson
import pytest
from aiohttp import web
from sqlalchemy import func, select

from fedsph.accounts import Backoff, FailureLimiter, create_invite, get_invite, throttle_key
from fedsph.config import ConfigError, load_settings, proxy_networks
from fedsph.models import LoginSession, User
from fedsph.projects.outbox import publish_text_post
from fedsph.web.auth_middleware import LIMITER
from fedsph.web.client_address import forwarded_client
from tests.fakepeer import FakePeer
from tests.support.db import add_remote_follower
from tests.support.members import PASSWORD, browser, csrf_from, login, make_user
from tests.support.nodes import make_settings, start_node

HOSTILE_NEXT = [
    "//evil.example/",
    "/\\evil.example/",
    "\\\\evil.example/",
    "/\t/evil.example/",
    "\t//evil.example/",
    "/\n/evil.example/",
    "/\r\n/evil.example/",
    " //evil.example/",
    "/\x7f/evil.example/",
    "/\x00/evil.example/",
    "https://evil.example/",
    "HTTPS:evil.example",
    "javascript:alert(1)",
    "/..//evil.example/",
    "/%2e%2e//evil.example/",
    "/a/.%2E//evil.example/",
    "%2F%2Fevil.example/",
    "evil.example",
    "",
]


def stays_here(location: str, base: str) -> bool:
    """A browser that follows `location` from our login page stays on our host."""
    resolved = urljoin(f"{base}/login", location)
    return urlsplit(resolved).netloc == urlsplit(base).netloc and "//" not in urlsplit(resolved).path


async def session_count(node) -> int:
    async with node.readers() as db:
        return await db.scalar(select(func.count(LoginSession.id)))


@pytest.fixture
async def member(node):
    project = await node.create_actor("coop", "Group")
    await make_user(node, "ana", project)
    return project


def frozen_limiter(node, per_address: int = 5, per_account: int = 20) -> list[float]:
    """The node's limiter, reset, on a clock that only moves when the test says so."""
    now = [1000.0]
    node.app[LIMITER].__init__(per_address, per_account, clock=lambda: now[0])
    return now


# --- open redirect -------------------------------------------------------------------------------

async def test_hostile_next_on_post_ends_at_the_home_page(node, member):
    async with browser() as client:
        for target in HOSTILE_NEXT:
            response = await login(client, node, "ana", next_url=target)
            assert response.status == 303, target
            assert response.headers["Location"] == "/", repr(target)


async def test_hostile_next_on_get_ends_at_the_home_page(node, member):
    async with browser() as client:
        for target in HOSTILE_NEXT:  # anonymous: the form carries only a safe next
            async with client.get(f"{node.base}/login", params={"next": target}) as page:
                html = await page.text()
            # (The language links may repeat the query: they lead back here, where it is checked.)
            assert re.findall(r'name="next" value="([^"]*)"', html) == ["/"], repr(target)
        assert (await login(client, node, "ana")).status == 303
        for target in HOSTILE_NEXT:  # logged in: redirected at once
            async with client.get(f"{node.base}/login", params={"next": target},
                                  allow_redirects=False) as response:
                assert response.status == 303
                assert response.headers["Location"] == "/", repr(target)


async def test_safe_next_keeps_local_paths(node, member):
    async with browser() as client:
        for target in ("/actors/coop/manage", "/p/coop?page=2#posts", "/%2F%2Fstill-a-path"):
            response = await login(client, node, "ana", next_url=target)
            assert response.headers["Location"] == target
            assert stays_here(response.headers["Location"], node.base)


# --- forged forms --------------------------------------------------------------------------------

async def test_a_path_ending_in_inbox_is_not_a_way_around_csrf(node, member):
    """Only the inbox routes themselves skip the CSRF check, not any path that ends in /inbox."""
    async with node.writers() as db, db.begin():
        token = await create_invite(db, member, None)
    before = await count_users(node)
    async with browser() as client:
        for target in (f"/invite/{token[:8]}%2Finbox", f"/invite/{token}%2Finbox"):
            async with client.post(f"{node.base}{target}", allow_redirects=False,
                                   data={"username": "mallory", "password": PASSWORD}) as r:
                assert r.status == 403, target
        async with client.post(f"{node.base}/invite/{token}", allow_redirects=False,
                               data={"username": "mallory", "password": PASSWORD}) as r:
            assert r.status == 403
    assert await count_users(node) == before
    async with node.readers() as db:
        assert await get_invite(db, token) is not None  # still unused


async def count_users(node) -> int:
    async with node.readers() as db:
        return await db.scalar(select(func.count(User.id)))


# --- the real client address ---------------------------------------------------------------------

TRUSTED = proxy_networks("127.0.0.1, 10.0.0.0/8")


def test_forwarded_for_is_ignored_from_untrusted_peers():
    assert forwarded_client("198.51.100.7", ["203.0.113.1"], TRUSTED) == "198.51.100.7"
    assert forwarded_client("198.51.100.7", ["203.0.113.1"], ()) == "198.51.100.7"
    assert forwarded_client(None, ["203.0.113.1"], ()) == "unknown"


def test_forwarded_for_from_a_trusted_proxy_gives_the_right_most_untrusted_address():
    assert forwarded_client("127.0.0.1", ["203.0.113.1"], TRUSTED) == "203.0.113.1"
    # The client wrote the left part itself: only what our proxies appended is believed.
    assert forwarded_client("127.0.0.1", ["6.6.6.6, 203.0.113.1"], TRUSTED) == "203.0.113.1"
    assert forwarded_client("127.0.0.1", ["6.6.6.6", "203.0.113.1, 10.1.2.3"],
                            TRUSTED) == "203.0.113.1"
    assert forwarded_client("127.0.0.1", ["6.6.6.6, not-an-ip"], TRUSTED) == "127.0.0.1"
    assert forwarded_client("127.0.0.1", [], TRUSTED) == "127.0.0.1"
    assert forwarded_client("127.0.0.1", ["10.0.0.2"], TRUSTED) == "10.0.0.2"


def test_trusted_proxies_must_be_addresses():
    assert load_settings(environ={"FEDSPH_TRUSTED_PROXIES": "127.0.0.1, ::1, 10.0.0.0/8"})
    with pytest.raises(ConfigError, match="FEDSPH_TRUSTED_PROXIES"):
        load_settings(environ={"FEDSPH_TRUSTED_PROXIES": "proxy.example"})
    with pytest.raises(ConfigError, match="FEDSPH_LOG_LEVEL"):
        load_settings(environ={"FEDSPH_LOG_LEVEL": "chatty"})


async def test_forged_forwarded_for_does_not_escape_the_limiter(node, member):
    """No trusted proxy (the default): a new X-Forwarded-For on every guess changes nothing."""
    frozen_limiter(node)
    async with browser() as client:
        for n in range(5):
            token = await csrf_from(client, f"{node.base}/login")
            async with client.post(f"{node.base}/login", allow_redirects=False,
                                   headers={"X-Forwarded-For": f"203.0.113.{n}"}, data={
                                       "csrf": token, "username": "ana", "password": "wrong"}) as r:
                assert r.status == 401
        token = await csrf_from(client, f"{node.base}/login")
        async with client.post(f"{node.base}/login", allow_redirects=False,
                               headers={"X-Forwarded-For": "203.0.113.99"}, data={
                                   "csrf": token, "username": "ana", "password": PASSWORD}) as r:
            assert r.status == 429
    assert await session_count(node) == 0


async def post_login_via_proxy(client, node, client_ip: str, password: str):
    token = await csrf_from(client, f"{node.base}/login")
    return await client.post(f"{node.base}/login", allow_redirects=False,
                             headers={"X-Forwarded-For": f"6.6.6.6, {client_ip}"},
                             data={"csrf": token, "username": "ana", "password": password})


@pytest.fixture
async def proxied_node(tmp_path):
    """A node behind a reverse proxy on 127.0.0.1 (the test client's address)."""
    running = await start_node(make_settings(tmp_path, trusted_proxies="127.0.0.1"))
    project = await running.create_actor("coop", "Group")
    await make_user(running, "ana", project)
    yield running
    await running.runner.cleanup()


async def test_an_attacker_behind_the_proxy_cannot_lock_the_member_out(proxied_node):
    node = proxied_node
    frozen_limiter(node)
    async with browser() as attacker:
        statuses = [(await post_login_via_proxy(attacker, node, "203.0.113.66", f"guess{n}")).status
                    for n in range(10)]
    assert statuses == [401] * 5 + [429] * 5  # the attacker is slowed down…
    assert await session_count(node) == 0
    async with browser() as member:  # …and the member, elsewhere, logs in at once
        response = await post_login_via_proxy(member, node, "198.51.100.4", PASSWORD)
        assert response.status == 303
    assert await session_count(node) == 1


async def post_login_as(client, node, client_ip: str, username: str, password: str):
    token = await csrf_from(client, f"{node.base}/login")
    return await client.post(f"{node.base}/login", allow_redirects=False,
                             headers={"X-Forwarded-For": client_ip},
                             data={"csrf": token, "username": username, "password": password})


async def test_guessers_on_many_addresses_cannot_lock_the_member_out(proxied_node):
    """Eight addresses guess until the account's wait is capped; the member still gets in."""
    node = proxied_node
    now = frozen_limiter(node, per_address=5, per_account=5)
    statuses = set()
    async with browser() as attacker:
        while True:
            for n in range(8):
                response = await post_login_via_proxy(attacker, node, f"203.0.113.{n}", "guess")
                statuses.add(response.status)
            if node.app[LIMITER].by_account.wait("ana") >= 300:
                break
            now[0] += 301  # long enough for every held address to guess again
    assert statuses == {401, 429}
    assert await session_count(node) == 0
    async with browser() as member:
        response = await post_login_via_proxy(member, node, "198.51.100.4", PASSWORD)
        assert response.status == 303
    assert await session_count(node) == 1


async def test_an_attacker_cannot_clear_their_address_by_logging_in_to_their_own_account(
        proxied_node):
    node = proxied_node
    project = await node.create_actor("mallorys", "Group")
    await make_user(node, "mallory", project)
    frozen_limiter(node, per_address=3)
    async with browser() as attacker:
        for n in range(2):
            assert (await post_login_via_proxy(attacker, node, "203.0.113.66", "g")).status == 401
        response = await post_login_as(attacker, node, "6.6.6.6, 203.0.113.66", "mallory", PASSWORD)
        assert response.status == 303
        assert (await post_login_via_proxy(attacker, node, "203.0.113.66", "g")).status == 401
        assert (await post_login_via_proxy(attacker, node, "203.0.113.66", PASSWORD)).status == 429
    async with node.readers() as db:  # only mallory's own session, none for ana
        assert await db.scalar(select(func.count(LoginSession.id))) == 1


async def test_the_throttled_address_is_the_forwarded_one(proxied_node):
    node = proxied_node
    frozen_limiter(node, per_address=2)
    async with browser() as client:
        for n in range(2):
            await post_login_via_proxy(client, node, "203.0.113.66", f"guess{n}")
        response = await post_login_via_proxy(client, node, "203.0.113.66", PASSWORD)
        assert response.status == 429
    assert await session_count(node) == 0


# --- gradual backoff, bounded memory ---------------------------------------------------------------

def test_backoff_grows_exponentially_up_to_a_cap():
    now = [0.0]
    backoff = Backoff(3, cap=60, clock=lambda: now[0])
    waits = []
    for _ in range(12):
        backoff.fail("k")
        waits.append(backoff.wait("k"))
    assert waits == [0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60, 60]
    now[0] += 60
    assert backoff.wait("k") == 0  # waited long enough: may try again (but one miss costs 60 s)
    backoff.forget("k")
    assert backoff.wait("k") == 0


def test_address_and_account_are_counted_separately():
    now = [0.0]
    limiter = FailureLimiter(per_address=5, per_account=20, clock=lambda: now[0])
    for _ in range(10):
        limiter.fail("203.0.113.66", "ana")
    assert limiter.retry_after("203.0.113.66") > 0  # the guesser, whatever the account
    assert limiter.retry_after("198.51.100.4") == 0  # the member, elsewhere
    waits = [limiter.fail(f"192.0.2.{n}", "ana") for n in range(20)]
    assert waits[:9] == [0] * 9 and all(waits[9:])  # the account is hot: wrong answers cost more
    assert limiter.retry_after("192.0.2.19") > 0  # each address that guessed wrong waits
    assert limiter.retry_after("198.51.100.4") == 0  # but nobody else is refused before checking


def test_a_capped_account_never_refuses_a_right_password_from_a_fresh_address():
    now = [0.0]
    limiter = FailureLimiter(per_address=5, per_account=20, clock=lambda: now[0])
    while True:
        for n in range(8):
            if not limiter.retry_after(f"192.0.2.{n}"):
                limiter.fail(f"192.0.2.{n}", "ana")
        if limiter.by_account.wait("ana") >= 300:
            break
        now[0] += 1
    assert limiter.retry_after("198.51.100.4") == 0


def test_logging_in_to_ones_own_account_does_not_clear_ones_address():
    now = [0.0]
    limiter = FailureLimiter(per_address=5, per_account=20, clock=lambda: now[0])
    for _ in range(4):
        limiter.fail("203.0.113.66", "ana")
    limiter.succeed("203.0.113.66", "mallory")
    limiter.fail("203.0.113.66", "ana")
    assert limiter.retry_after("203.0.113.66") > 0
    limiter.fail("198.51.100.4", "ana")  # the member's own typo is forgiven by the right password
    limiter.succeed("198.51.100.4", "ana")
    assert limiter.by_address.wait(throttle_key("198.51.100.4")) == 0
    assert throttle_key("198.51.100.4") not in limiter.by_address._failures


def test_an_ipv6_guesser_cannot_rotate_through_its_64():
    assert throttle_key("2001:db8::1") == throttle_key("2001:db8::ffff:1234") == "2001:db8::/64"
    assert throttle_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert throttle_key("unknown") == "unknown"


def test_limiter_memory_is_bounded():
    backoff = Backoff(3, max_keys=100)
    for n in range(5000):
        backoff.fail(f"key{n}")
    assert len(backoff._failures) <= 100


# --- operators see refusals, never secrets ---------------------------------------------------------

async def test_refused_and_throttled_logins_are_logged_without_the_password(node, member, caplog):
    frozen_limiter(node, per_address=1)
    caplog.set_level(logging.INFO, logger="fedsph")
    async with browser() as client:
        assert (await login(client, node, "ana", "hunter2-secret")).status == 401
        assert (await login(client, node, "ana", "hunter3-secret")).status == 429
    lines = [r.getMessage() for r in caplog.records if r.name == "fedsph.login"]
    assert any("wrong password" in line and "'ana'" in line and "127.0.0.1" in line
               for line in lines), lines
    assert any("throttled" in line and "'ana'" in line for line in lines), lines
    assert "secret" not in caplog.text


async def test_refused_signed_fetches_are_logged_with_reason_key_and_address(node, peer, caplog):
    project = await node.create_actor("coop")
    await add_remote_follower(node, project, peer.add_actor("ana"))
    async with node.writers() as db, db.begin():
        note = await publish_text_post(db, node.urls, project, "Members only", visibility="followers")
    caplog.set_level(logging.INFO, logger="fedsph")
    stranger = await FakePeer().start()
    try:
        mallory = stranger.add_actor("mallory")
        assert (await stranger.get(mallory, note.uri))[0] == 404
        forged = {"Signature": f'keyId="{mallory.key_id}",headers="date",signature="AAAA"',
                  "Accept": "application/activity+json"}
        async with aiohttp.ClientSession() as http, http.get(note.uri, headers=forged) as resp:
            assert resp.status == 404
    finally:
        await stranger.stop()
    lines = [r.getMessage() for r in caplog.records if r.name == "fedsph.signed_fetch"]
    assert any("nobody on" in line and stranger.domain in line and "127.0.0.1" in line
               for line in lines), lines
    assert any(mallory.key_id in line and "127.0.0.1" in line and "refused" in line
               for line in lines), lines
    assert "Members only" not in caplog.text


class TemplatePeer(FakePeer):
    """WebFinger offers whatever subscribe template the test sets (remote follow's redirect)."""

    template = ""

    async def _webfinger(self, request):
        response = await super()._webfinger(request)
        document = orjson.loads(response.body)
        document["links"].append({"rel": "http://ostatus.org/schema/1.0/subscribe",
                                  "template": self.template})
        return web.json_response(document, content_type="application/jrd+json")


async def test_remote_follow_redirects_only_to_http_urls(node):
    project = await node.create_actor("coop")
    hostile = await TemplatePeer().start()
    try:
        hostile.add_actor("alice")
        url = (f"{node.base}/remote-follow?"
               + urlencode({"handle": f"alice@{hostile.domain}", "target": project.uri}))
        async with aiohttp.ClientSession() as http:
            for template in ("javascript:alert('{uri}')", "https://a.example\\@evil.example/{uri}",
                             "data:text/html,{uri}", "//evil.example/{uri}"):
                hostile.template = template
                async with http.get(url, allow_redirects=False) as response:
                    assert response.status == 404, template
                    assert "Location" not in response.headers
            hostile.template = f"{hostile.base}/authorize_interaction?uri={{uri}}"
            async with http.get(url, allow_redirects=False) as response:
                assert response.status == 302
    finally:
        await hostile.stop()
