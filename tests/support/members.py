"""Members: users, a browser-like client that logs in and posts forms, and API tokens."""

from __future__ import annotations

import contextlib
import re
from urllib.parse import urlsplit

import aiohttp
import requests
from argon2 import PasswordHasher

from fedsph.accounts import new_token
from fedsph.admin.user_commands import create_user
from fedsph.api.tokens import issue_token
from fedsph.federation.actors import create_local_actor
from fedsph.models import Actor, Membership, OAuthApp, User

PASSWORD = "correct horse battery"


CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


async def make_user(node, username: str, project: Actor | None = None, admin: bool = False,
                    password: str = PASSWORD) -> User:
    async with node.writers() as db, db.begin():
        person = await create_local_actor(db, node.urls, node.settings.domain, username, "Person")
        user = User(username=username, password_hash=PasswordHasher().hash(password),
                    is_admin=admin, actor_id=person.id)
        db.add(user)
        await db.flush()
        if project is not None:
            db.add(Membership(user_id=user.id, project_id=project.id))
    return user


@contextlib.asynccontextmanager
async def browser():
    """A client that keeps cookies for 127.0.0.1 (aiohttp refuses IP cookies unless unsafe)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                     headers={"Accept": "text/html"}) as client:
        yield client


async def csrf_from(client, url: str) -> str:
    async with client.get(url) as response:
        assert response.status == 200, await response.text()
        found = CSRF_RE.search(await response.text())
    assert found, "the page has no CSRF field"
    return found.group(1)


async def login(client, node, username: str, password: str = PASSWORD, next_url: str = "/"):
    token = await csrf_from(client, f"{node.base}/login")
    return await client.post(f"{node.base}/login", allow_redirects=False, data={
        "csrf": token, "username": username, "password": password, "next": next_url})


async def post_form(client, url: str, fields: dict, page: str | None = None):
    """Post a form the way a browser does: with the CSRF token from the page it is on."""
    token = await csrf_from(client, page or url)
    return await client.post(url, data={"csrf": token, **fields}, allow_redirects=False)


def multipart(token: str, fields: dict, files: dict | None = None) -> aiohttp.FormData:
    """The compose form as a browser sends it: the CSRF field first, then fields, then files."""
    form = aiohttp.FormData()
    form.add_field("csrf", token)
    for name, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            form.add_field(name, item)
    for name, data in (files or {}).items():
        form.add_field(name, data, filename=f"{name}.jpg", content_type="image/jpeg")
    return form


async def member_token(node, username: str, project: str | None) -> tuple[str, Actor]:
    """A member of `project` (or of none) and a token acting as their own Person."""
    user = await create_user(node, username, PASSWORD, False, project)
    async with node.writers() as db, db.begin():
        app = OAuthApp(client_id=new_token()[:32], client_secret_hash="-", name="tests",
                       redirect_uris="urn:ietf:wg:oauth:2.0:oob", scopes="read write follow")
        db.add(app)
        await db.flush()
        token, _ = await issue_token(db, app, user.id, user.actor_id, ["read", "write", "follow"])
        actor = await db.get(Actor, user.actor_id)
    return token, actor


async def api(node, token: str, method: str, path: str, **kwargs):
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http, \
            http.request(method, node.base + path, **kwargs) as response:
        return response.status, await response.json()


REDIRECT = "https://app.example/callback"


def login_and_consent(node, auth_url: str, project: str) -> str:
    """A browser: follow the authorize URL, log in, choose `project`, return the redirect."""
    browser = requests.Session()
    page = browser.get(auth_url, timeout=10)
    assert urlsplit(page.url).path == "/login", page.url
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    following = re.search(r'name="next" value="([^"]+)"', page.text).group(1)
    consent = browser.post(node.base + "/login", timeout=10, data={
        "csrf": csrf, "next": following.replace("&amp;", "&"), "username": "ana",
        "password": PASSWORD})
    assert urlsplit(consent.url).path == "/oauth/authorize", consent.url
    assert "fedsph tests" in consent.text
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', consent.text))
    form = {k: v.replace("&amp;", "&") for k, v in form.items()}
    accounts = dict(re.findall(r'name="account" value="(\d+)".*?\n?<label[^>]*>[^<]*<span '
                               r'class="handle">@([^<]+)</span>', consent.text, re.DOTALL))
    chosen = next(i for i, name in accounts.items() if name == project)
    answer = browser.post(node.base + "/oauth/authorize", data={
        **form, "account": chosen, "decision": "allow"}, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]
