"""Hostile numbers (issue 10 review): "²" passes str.isdigit() but not int(), ids past int64
overflow SQLite. Every number read from a request goes through fedsph.core.numbers: a 4xx, never a
500, and nothing is changed.
"""

from __future__ import annotations

from urllib.parse import quote

import aiohttp
import pytest
from sqlalchemy import func, select

from fedsph.core.numbers import MAX_ROW_ID, parse_id, parse_number, parse_page
from fedsph.errors import Unauthorized
from fedsph.federation import httpsig
from fedsph.federation.delivery import parse_retry_after
from fedsph.models import Actor, Follow, Object, utcnow
from fedsph.projects import profile
from tests.support.members import browser, login, make_user, member_token, post_form
from tests.support.pages import add_tagged_replies, publish

BAD = ["²", "99999999999999999999999", str(MAX_ROW_ID + 1), "-1", "0x10", " 1", "1e3", "٣"]

PAGE_URLS = ["/actors/coop?page={}", "UPDATE?page={}", "/hub/feed?page={}"]
AP_URLS = ["/actors/coop/outbox?page={}", "/actors/coop/followers?page={}"]
API_PARAM_URLS = [f"/api/v1/timelines/public?{name}={{}}"
                  for name in ("max_id", "since_id", "min_id", "limit")]
API_PARAM_URLS += ["/api/v1/timelines/tag/minga?max_id={}", "/api/v2/search?q=coop&limit={}",
                   "/api/v2/search?q=coop&offset={}", "/api/v1/notifications?max_id={}"]
API_PATH_URLS = ["/api/v1/statuses/{}", "/api/v1/statuses/{}/context", "/api/v1/accounts/{}",
                 "/api/v1/accounts/{}/statuses", "/api/v1/accounts/{}/followers",
                 "/api/v1/notifications/{}", "/api/v1/media/{}"]


@pytest.mark.parametrize("raw", BAD + ["", None, "1" * 30, "１"])
def test_no_bad_number_parses(raw):
    assert parse_number(raw) is None and parse_id(raw) is None and parse_page(raw) is None


def test_good_numbers_parse():
    assert parse_id("1") == 1 and parse_id(str(MAX_ROW_ID)) == MAX_ROW_ID
    assert parse_id("0") is None and parse_number("0") == 0
    assert parse_page("99999") == 99999 and parse_page("100000") is None


async def get(node, path: str, token: str | None = None, accept: str = "text/html"):
    headers = {"Accept": accept, **({"Authorization": f"Bearer {token}"} if token else {})}
    async with aiohttp.ClientSession(headers=headers) as http, \
            http.get(node.base + path, allow_redirects=False) as response:
        return response.status


async def test_bad_numbers_in_urls_are_4xx_never_500(node):
    project = await node.create_actor("coop")
    update = await publish(node, project, contents={"es": "Asamblea"})
    token, _ = await member_token(node, "ana", "coop")
    path = update.uri.removeprefix(node.base)
    failures = []
    for raw in BAD:
        value = quote(raw, safe="")
        checks = [(url.replace("UPDATE", path).format(value), None, "text/html", 400)
                  for url in PAGE_URLS]
        checks += [(url.format(value), None, "application/activity+json", 400)
                   for url in AP_URLS]
        checks += [(url.format(value), token, "application/json", 400)
                   for url in API_PARAM_URLS]
        checks += [(url.format(value), token, "application/json", 404)
                   for url in API_PATH_URLS]
        for url, bearer, accept, expected in checks:
            status = await get(node, url, bearer, accept)
            # /hub/feed answers 404 on a node without a hub, whatever the page.
            if status != expected and not (url.startswith("/hub/") and status == 404):
                failures.append((url, status))
    assert failures == []


async def test_a_bad_id_in_relationships_is_left_out(node):
    token, _ = await member_token(node, "ana", None)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        query = "&".join(f"id[]={quote(raw, safe='')}" for raw in BAD)
        async with http.get(f"{node.base}/api/v1/accounts/relationships?{query}") as response:
            assert response.status == 200 and await response.json() == []


async def test_bad_ids_in_api_writes_change_nothing(node):
    token, me = await member_token(node, "ana", None)
    async with node.writers() as db, db.begin():
        bob = Actor(uri="https://remote.example/users/bob", local=False, type="Person",
                    username="bob", domain="remote.example", name="Bob")
        db.add(bob)
        await db.flush()
        db.add(Follow(follower_id=bob.id,
                      followed_id=me.id, state="pending"))
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        for raw in BAD:
            for action in ("authorize", "reject"):
                url = f"{node.base}/api/v1/follow_requests/{quote(raw, safe='')}/{action}"
                async with http.post(url) as response:
                    assert response.status == 404, (raw, action)
            async with http.post(f"{node.base}/api/v1/statuses",
                                 json={"status": "hi", "media_ids": [raw]}) as response:
                assert response.status == 422, raw
    async with node.readers() as db:
        assert await db.scalar(select(Follow.state)) == "pending"
        assert await db.scalar(select(func.count(Object.id))) == 0


async def test_bad_ids_in_manage_forms_change_nothing(node):
    project = await node.create_actor("coop")
    await make_user(node, "ana", project, admin=True)
    update = await publish(node, project, contents={"es": "Asamblea"})
    uris = await add_tagged_replies(node, update)
    async with node.writers() as db, db.begin():
        db.add(Follow(state="pending",
                      follower_id=(await db.scalar(select(Actor.id).where(
                          Actor.username == "ana", Actor.local.is_(False)))),
                      followed_id=project.id))
    manage = f"{node.base}/actors/coop/manage"
    async with browser() as client:
        await login(client, node, "ana")
        for raw in BAD:
            for fields in ({"action": "approve", "request": raw}, {"action": "unblock", "block": raw},
                           {"action": "hide_comment", "comment": raw}):
                response = await post_form(client, manage, fields)
                assert response.status == 400, (fields, response.status)
    async with node.readers() as db:
        assert await db.scalar(select(Follow.state)) == "pending"
        hidden = dict((await db.execute(select(Object.uri, Object.hidden).where(
            Object.uri.in_(uris.values())))).all())
    assert hidden == {uris["visible"]: False, uris["hidden"]: True, uris["held"]: False}


@pytest.mark.parametrize("raw", BAD)
def test_signature_times_must_be_unix_seconds_a_date_can_hold(raw):
    header = f'keyId="https://x.example/k",signature="AAAA",created="{raw}"'
    with pytest.raises(Unauthorized):
        httpsig.parse_signature_header(header)


def test_a_huge_signature_time_is_refused_not_a_crash():
    header = 'keyId="https://x.example/k",signature="AAAA",expires="99999999999999"'
    with pytest.raises(Unauthorized):
        httpsig.parse_signature_header(header)


@pytest.mark.parametrize("raw", [b for b in BAD if b != " 1"])  # forms' spaces are trimmed
def test_profile_counts_and_years_refuse_bad_numbers(raw):
    for field in ("homes_planned", "households", "start_year"):
        with pytest.raises(profile.ProfileError):
            profile.validate_field(field, raw)


@pytest.mark.parametrize("raw", ["²", "0x10"])
def test_retry_after_ignores_bad_numbers(raw):
    assert parse_retry_after(raw, utcnow()) is None
