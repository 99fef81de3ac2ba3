"""Every entity the client API returns, checked against the attributes Mastodon documents for it
(tests/mastodon_schema.py). The answers are read raw with requests, not through Mastodon.py, whose
objects convert types and would hide a string sent where an integer belongs.
"""

from __future__ import annotations

from io import BytesIO

import pytest
import requests
from PIL import Image

from tests.mastodon_client import PASSWORD, start_server, stop_server
from tests.mastodon_schema import mismatches, mismatches_of_list
from tests.processes import wait_for

pytestmark = pytest.mark.e2e

OOB = "urn:ietf:wg:oauth:2.0:oob"

def png() -> bytes:
    out = BytesIO()
    Image.new("RGB", (640, 480), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


class Client:
    """A bearer token and the raw JSON answers it gets."""

    def __init__(self, base: str, token: str):
        self.base, self.http = base, requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, expect: int = 200, **kwargs):
        answer = self.http.request(method, self.base + path, timeout=15, **kwargs)
        assert answer.status_code == expect, (path, answer.status_code, answer.text[:300])
        return answer.json()

    def get(self, path: str, **kwargs):
        return self.call("GET", path, **kwargs)

    def post(self, path: str, **kwargs):
        return self.call("POST", path, **kwargs)


def register(base: str, found: dict) -> dict:
    answer = requests.post(f"{base}/api/v1/apps", timeout=15, json={
        "client_name": "schema check", "redirect_uris": OOB, "scopes": "read write follow",
        "website": "https://example.org/app"})
    assert answer.status_code == 200, answer.text
    found["POST /api/v1/apps"] = ("CredentialApplication", answer.json())
    return answer.json()


def token_for(base: str, app: dict, username: str, found: dict) -> Client:
    answer = requests.post(f"{base}/oauth/token", timeout=15, data={
        "grant_type": "password", "username": username, "password": PASSWORD,
        "client_id": app["client_id"], "client_secret": app["client_secret"],
        "scope": "read write follow"})
    assert answer.status_code == 200, answer.text
    found[f"POST /oauth/token ({username})"] = ("Token", answer.json())
    return Client(base, answer.json()["access_token"])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("mastodon-schema"))
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def answers(server) -> dict[str, tuple[str, object]]:
    """One of every entity, keyed by the request that returned it: (entity name, raw JSON).
    Entity names ending in [] are arrays of it, in {} maps of it."""
    found: dict[str, tuple[str, object]] = {}
    app = register(server.base, found)
    ana = token_for(server.base, app, "ana", found)
    bea = token_for(server.base, app, "bea", found)
    found["GET /api/v1/apps/verify_credentials"] = (
        "Application", ana.get("/api/v1/apps/verify_credentials"))

    me = ana.get("/api/v1/accounts/verify_credentials")
    found["GET /api/v1/accounts/verify_credentials"] = ("CredentialAccount", me)
    bea_id = bea.get("/api/v1/accounts/verify_credentials")["id"]
    found["GET /api/v1/accounts/:id"] = ("Account", ana.get(f"/api/v1/accounts/{bea_id}"))

    found["POST /api/v1/accounts/:id/follow"] = (
        "Relationship", bea.post(f"/api/v1/accounts/{me['id']}/follow"))
    wait_for(lambda: bea.get("/api/v1/accounts/relationships", params={"id[]": me["id"]})[0][
        "following"], what="bea's follow of ana to be accepted")
    found["GET /api/v1/accounts/relationships"] = (
        "Relationship[]", ana.get("/api/v1/accounts/relationships", params={"id[]": bea_id}))

    media = ana.post("/api/v2/media", files={"file": ("wall.png", png(), "image/png")},
                     data={"description": "A red wall"})
    found["POST /api/v2/media"] = ("MediaAttachment", media)
    posted = ana.post("/api/v1/statuses", json={
        "status": "Obras en la fachada con @bea #Fachada", "media_ids": [media["id"]],
        "spoiler_text": "Ruido", "language": "es"})
    found["POST /api/v1/statuses"] = ("Status", posted)
    reply = bea.post("/api/v1/statuses", json={
        "status": "@ana ¡qué bien!", "in_reply_to_id": posted["id"]})
    found["POST /api/v1/statuses (reply)"] = ("Status", reply)
    found["GET /api/v1/statuses/:id"] = ("Status", bea.get(f"/api/v1/statuses/{posted['id']}"))
    # Issue 13: editing, then the source and the versions.
    found["PUT /api/v1/statuses/:id"] = ("Status", ana.call("PUT", f"/api/v1/statuses/{posted['id']}",
        json={"status": "Obras terminadas con @bea #Fachada", "spoiler_text": "Ruido"}))
    found["GET /api/v1/statuses/:id/source"] = (
        "StatusSource", ana.get(f"/api/v1/statuses/{posted['id']}/source"))
    found["GET /api/v1/statuses/:id/history"] = (
        "StatusEdit[]", bea.get(f"/api/v1/statuses/{posted['id']}/history"))
    found["GET /api/v1/statuses/:id/source (not hers)"] = (
        "Error", bea.get(f"/api/v1/statuses/{posted['id']}/source", expect=404))
    for status in (posted, reply):
        found[f"GET /api/v1/statuses/{status['id']}/context"] = (
            "Context", ana.get(f"/api/v1/statuses/{status['id']}/context"))
    found["POST /api/v1/statuses/:id/favourite"] = (
        "Status", bea.post(f"/api/v1/statuses/{posted['id']}/favourite"))
    reblog = bea.post(f"/api/v1/statuses/{posted['id']}/reblog")
    assert reblog["reblog"] is not None
    found["POST /api/v1/statuses/:id/reblog"] = ("Status", reblog)
    # Issue 13, item 4: a boost's own id reads it (the wrapper); see tests/test_boost_ids.py.
    found["GET /api/v1/statuses/:id (a boost)"] = (
        "Status", bea.get(f"/api/v1/statuses/{reblog['id']}"))
    found["GET /api/v1/timelines/home (bea)"] = ("Status[]", bea.get("/api/v1/timelines/home"))
    found["GET /api/v1/timelines/tag/fachada"] = (
        "Status[]", ana.get("/api/v1/timelines/tag/fachada"))
    found["GET /api/v1/accounts/:id/statuses"] = (
        "Status[]", bea.get(f"/api/v1/accounts/{me['id']}/statuses"))

    def all_kinds() -> list | None:
        notes = ana.get("/api/v1/notifications")
        return notes if {"follow", "mention", "favourite"} <= {n["type"] for n in notes} else None

    notes = wait_for(all_kinds, what="ana's follow, mention and favourite notifications")
    found["GET /api/v1/notifications"] = ("Notification[]", notes)
    found["GET /api/v1/notifications/:id"] = (
        "Notification", ana.get(f"/api/v1/notifications/{notes[0]['id']}"))

    found["POST /api/v1/markers"] = ("Marker{}", ana.post("/api/v1/markers", data={
        "home[last_read_id]": posted["id"], "notifications[last_read_id]": notes[0]["id"]}))
    found["GET /api/v1/markers"] = (
        "Marker{}", ana.get("/api/v1/markers", params={"timeline[]": ["home", "notifications"]}))
    # Issue 13: a direct message and the conversations it makes.
    dm = ana.post("/api/v1/statuses", json={"status": "@bea a word for you",
                                             "visibility": "direct"})
    assert dm["visibility"] == "direct"
    found["POST /api/v1/statuses (direct)"] = ("Status", dm)
    conversations = bea.get("/api/v1/conversations")
    assert conversations and conversations[0]["last_status"]["id"] == dm["id"]
    found["GET /api/v1/conversations"] = ("Conversation[]", conversations)
    found["POST /api/v1/conversations/:id/read"] = (
        "Conversation", bea.post(f"/api/v1/conversations/{conversations[0]['id']}/read"))
    found["GET /api/v1/conversations (author)"] = (
        "Conversation[]", ana.get("/api/v1/conversations"))
    found["GET /api/v1/instance"] = ("V1Instance", ana.get("/api/v1/instance"))
    found["GET /api/v2/instance"] = ("Instance", ana.get("/api/v2/instance"))
    found["GET /api/v2/search"] = ("Search", ana.get("/api/v2/search", params={"q": "bea"}))
    found["GET /api/v2/search (status url)"] = (
        "Search", ana.get("/api/v2/search", params={"q": posted["url"]}))
    found["GET /api/v1/preferences"] = ("Preferences", ana.get("/api/v1/preferences"))
    found["GET /api/v1/statuses/:unknown"] = (
        "Error", ana.get("/api/v1/statuses/999999999", expect=404))
    found["POST /api/v1/statuses (blank)"] = (
        "Error", ana.post("/api/v1/statuses", json={"status": ""}, expect=422))
    found["POST /oauth/token (bad grant)"] = ("Error", requests.post(
        f"{server.base}/oauth/token", timeout=15, data={"grant_type": "password",
                                                         "client_id": app["client_id"]}).json())
    return found


def _problems(name: str, value, path: str) -> list[str]:
    if name.endswith("[]"):
        return mismatches_of_list(value, name[:-2], path)
    if name.endswith("{}"):
        assert isinstance(value, dict) and value, (path, value)
        return [p for key, item in value.items()
                for p in mismatches(item, name[:-2], f"{path}.{key}")]
    return mismatches(value, name, path)


def test_every_entity_matches_mastodon_documentation(answers):
    problems = [f"{request}: {problem}" for request, (name, value) in answers.items()
                for problem in _problems(name, value, name.rstrip("[]{}"))]
    assert problems == [], "\n".join(problems)


def test_the_sample_has_the_nested_parts_worth_checking(answers):
    """The check above proves little about parts the sample never had."""
    _, posted = answers["POST /api/v1/statuses"]
    assert posted["media_attachments"] and posted["tags"] and posted["spoiler_text"]
    assert [m["acct"] for m in posted["mentions"]] == ["bea"]
    _, reblog = answers["POST /api/v1/statuses/:id/reblog"]
    assert reblog["reblog"]["id"] == posted["id"]
    _, notes = answers["GET /api/v1/notifications"]
    assert any(n["type"] in ("mention", "favourite") and n.get("status") for n in notes)
    _, context = answers[f"GET /api/v1/statuses/{posted['id']}/context"]
    assert context["descendants"]
    _, search = answers["GET /api/v2/search"]
    assert search["accounts"]
    _, error = answers["POST /oauth/token (bad grant)"]
    assert "error" in error
    _, history = answers["GET /api/v1/statuses/:id/history"]
    assert len(history) == 2 and history[0]["media_attachments"] and history[0]["spoiler_text"]


def test_validator_reports_every_mismatch_with_its_path():
    account = {"id": "7", "username": "ana", "acct": "ana", "url": "https://x.example/@ana",
               "display_name": "", "note": "", "avatar": "https://x.example/a.png",
               "avatar_static": "https://x.example/a.png", "header": "https://x.example/h.png",
               "header_static": "https://x.example/h.png", "locked": False, "bot": False,
               "group": False, "discoverable": None, "created_at": "2024-01-01T00:00:00.000Z",
               "last_status_at": "2024-02-01", "statuses_count": 0, "followers_count": 0,
               "following_count": 0, "emojis": [],
               "fields": [{"name": "web", "value": "x", "verified_at": None}]}
    assert mismatches(account, "Account") == []
    broken = {**account, "id": 7, "locked": None, "statuses_count": "0",
              "fields": [{"name": "web", "value": "x", "verified_at": "yesterday"}]}
    del broken["bot"]
    problems = mismatches({"account": broken, "reblog": None, "visibility": "friends"}, "Status")
    for expected in ("Status.id: missing", "Status.account.id: expected id, got 7",
                     "Status.account.locked: unexpected null", "Status.account.bot: missing",
                     "Status.account.fields[0].verified_at: expected datetime, got 'yesterday'",
                     "Status.account.statuses_count: expected integer, got '0'",
                     "Status.visibility: 'friends' is not one of public, unlisted, private, direct"):
        assert expected in problems
    assert not any(p.startswith("Status.reblog:") for p in problems)  # nullable
    assert not any(p.startswith("Status.pinned:") for p in problems)  # optional
