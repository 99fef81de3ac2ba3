"""Issue 4 end to end: a member of node A uses a Mastodon app (Mastodon.py) to follow a project on
node B and talk with it, across two real `fedsph serve` processes on loopback.

On A, `ana` registers an app and logs in twice (password grant, then the authorization-code flow
through the login and consent pages), posts a photo with alt text, finds B's project `obra` by its
handle and follows it. On B, `rosa`, a member of obra, uses an app logged in as the project (the
consent page lets her pick it) to post an update, follow ana back and answer her. Each step is
checked on the other node too, waiting for the workers that deliver in the background.
"""

from __future__ import annotations

import io

import pytest
import requests
from mastodon import Mastodon, MastodonNotFoundError
from PIL import Image

from tests.mastodon_client import OOB, PASSWORD, authorized
from tests.processes import NodeProcess, wait_for

pytestmark = pytest.mark.e2e

ALT = "Ana's cooperative garden, with tomatoes in raised beds"
SCOPES = ["read", "write", "follow"]
UPDATE = "Levantamos el techo del bloque B"
REPLY = "¡Qué alegría! Vamos a ver la obra el sábado"
ANSWER = "Las esperamos el sábado a las diez"


@pytest.fixture
def nodes(tmp_path):
    a, b = NodeProcess(tmp_path / "a"), NodeProcess(tmp_path / "b")
    a.cli("migrate")
    a.cli("user", "create", "ana", "--password-stdin", stdin=PASSWORD + "\n")
    b.cli("migrate")
    b.cli("project", "create", "obra", "--name", "Obra Común")
    b.cli("user", "create", "rosa", "--password-stdin", "--project", "obra",
          stdin=PASSWORD + "\n")
    try:
        for node in (a, b):
            node.start()
        yield a, b
    finally:
        for node in (a, b):
            node.stop()


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 240), (60, 140, 60)).save(out, "JPEG")
    return out.getvalue()


def home_with(api: Mastodon, text: str):
    """The status of ana's home timeline whose content has `text`, if it has arrived."""
    return next((s for s in api.timeline_home(limit=40) if text in s.content), None)


def page_of(url: str) -> str:
    return requests.get(url, headers={"Accept": "text/html"}, timeout=10).text


def gone(api: Mastodon, status_id) -> bool:
    try:
        api.status(status_id)
    except MastodonNotFoundError:
        return True
    return False


def test_member_on_a_follows_and_talks_with_project_on_b(nodes):
    a, b = nodes

    # -- 1. an app on A; ana logs in with the password grant and with the code flow ------------
    app = Mastodon.create_app("Cooperativa app", api_base_url=a.base, website="https://a.test/",
                              scopes=SCOPES, redirect_uris=OOB)
    ana = Mastodon(client_id=app[0], client_secret=app[1], api_base_url=a.base)
    ana.log_in("ana", PASSWORD, scopes=SCOPES, allow_http=True)
    ana_by_code = authorized(a, "ana", app=app)  # out-of-band: the code is read from the page
    assert ana.app_verify_credentials().name == "Cooperativa app"
    me = ana.account_verify_credentials()
    assert me.username == "ana" and me.acct == "ana"
    assert ana_by_code.account_verify_credentials().id == me.id
    assert ana_by_code.access_token != ana.access_token
    # rosa's app on B acts as the project; the code comes back in a redirect to loopback.
    obra = authorized(b, "rosa", account="obra", redirect_uri="http://127.0.0.1/callback")
    obra_me = obra.account_verify_credentials()
    assert obra_me.username == "obra"

    # -- 2. a photo with alt text, and a status with it ----------------------------------------
    media = ana.media_post(jpeg(), mime_type="image/jpeg", description=ALT)
    assert media.type == "image" and media.description == ALT
    garden = ana.status_post("Our garden this morning", media_ids=[media])
    assert [m.description for m in garden.media_attachments] == [ALT]

    # -- 3. ana finds obra on B by its handle and follows it ------------------------------------
    found = ana.search_v2(f"obra@{b.domain}", resolve=True).accounts
    assert [account.acct for account in found] == [f"obra@{b.domain}"]
    remote_obra = found[0]
    ana.account_follow(remote_obra.id)
    wait_for(lambda: ana.account_relationships(remote_obra.id)[0].following, timeout=20,
             what="B to accept ana's follow")

    # -- 4. the project posts an update on B; it reaches ana's home on A -----------------------
    update = obra.status_post(UPDATE, language="es")
    arrived = wait_for(lambda: home_with(ana, UPDATE), timeout=20,
                       what="obra's update to reach ana's home timeline")
    assert arrived.uri == update.uri and arrived.account.acct == f"obra@{b.domain}"

    # -- 5. ana replies and favourites; B shows the comment and counts the favourite ------------
    # No @mention: like Mastodon, A delivers a reply to the author of the post it answers.
    reply = ana.status_post(REPLY, in_reply_to_id=arrived.id)
    assert reply.in_reply_to_id == arrived.id and reply.mentions == []
    assert ana.status_favourite(arrived.id).favourited is True
    wait_for(lambda: REPLY in page_of(update.url), timeout=20,
             what="ana's reply to show as a comment on B's page")
    wait_for(lambda: any(REPLY in s.content for s in obra.status_context(update.id).descendants),
             timeout=10, what="ana's reply in the update's context on B")
    wait_for(lambda: obra.status(update.id).favourites_count == 1, timeout=20,
             what="ana's favourite to be counted on B")

    # -- 6. paging through ana's home, two at a time --------------------------------------------
    for n in range(3):
        ana.status_post(f"Nota {n} para la paginación")
    everything = [s.id for s in ana.timeline_home(limit=40)]
    assert len(everything) >= 6 and everything == sorted(everything, reverse=True)
    assert {garden.id, arrived.id, reply.id} <= set(everything)
    seen, page = [], ana.timeline_home(limit=2)
    while page:
        assert len(page) <= 2
        seen += [s.id for s in page]
        page = ana.fetch_next(page)
    assert seen == everything  # newest first, each once, none missing

    # -- 7. obra follows ana back and answers her post; ana is notified on A -------------------
    [remote_ana] = obra.search_v2(f"ana@{a.domain}", resolve=True).accounts
    obra.account_follow(remote_ana.id)
    wait_for(lambda: obra.account_relationships(remote_ana.id)[0].following, timeout=20,
             what="A to accept obra's follow")
    [garden_on_b] = obra.search_v2(garden.uri, resolve=True).statuses
    assert [m.description for m in garden_on_b.media_attachments] == [ALT]
    answer = obra.status_post(f"@ana@{a.domain} {ANSWER}", in_reply_to_id=garden_on_b.id)
    assert [m.acct for m in answer.mentions] == [f"ana@{a.domain}"]

    [follow] = wait_for(lambda: ana.notifications(types=["follow"]), timeout=20,
                        what="the follow notification on A")
    assert follow.account.acct == f"obra@{b.domain}"
    [mention] = wait_for(lambda: ana.notifications(types=["mention"]), timeout=20,
                         what="the mention notification on A")
    assert mention.account.acct == f"obra@{b.domain}" and ANSWER in mention.status.content
    assert mention.status.in_reply_to_id == garden.id

    # -- 8. ana deletes her post: gone on A, and B drops it when the Delete arrives ------------
    ana.status_delete(garden.id)
    assert gone(ana, garden.id)
    assert requests.get(garden.uri, headers={"Accept": "application/activity+json"},
                        timeout=10).status_code == 410
    wait_for(lambda: gone(obra, garden_on_b.id), timeout=20, what="the Delete to reach B")

    assert "Traceback" not in a.server_log() + b.server_log()

