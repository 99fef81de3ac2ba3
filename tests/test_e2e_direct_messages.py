"""Issue 13, items 1 and 2 end to end: direct messages between real `fedsph serve` processes.

Two nodes with Mastodon.py clients: alice on A writes `visibility="direct"` to bob on B; bob is
notified, finds it as an unread conversation whose last status is direct, and answers direct;
alice finds the answer in her conversation. carol, on bob's node and a follower of alice, sees
none of it anywhere, and nothing was stored for her.

And a peer that puts the addressing only on the activity (as some servers do) sends bob a DM
through B's shared inbox, and carol one through her personal inbox that names nobody: each
arrives direct, for its addressee alone, with a mention notification.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from mastodon import Mastodon, MastodonNotFoundError

from tests.fakepeer import AS
from tests.mastodon_client import PASSWORD
from tests.mastodon_peer import MastodonPeer
from tests.processes import NodeProcess, wait_for
from tests.support import testdb

pytestmark = pytest.mark.e2e

SCOPES = ["read", "write", "follow"]
SECRET = "the meeting moved to the back room #plans"
ANSWER = "thanks, I will be there"


def client(node: NodeProcess, username: str) -> Mastodon:
    app = Mastodon.create_app("dm tests", api_base_url=node.base, scopes=SCOPES)
    api = Mastodon(client_id=app[0], client_secret=app[1], api_base_url=node.base)
    api.log_in(username, PASSWORD, scopes=SCOPES, allow_http=True)
    return api


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    a, b = NodeProcess(tmp_path_factory.mktemp("a")), NodeProcess(tmp_path_factory.mktemp("b"))
    a.cli("migrate")
    a.cli("user", "create", "alice", "--password-stdin", stdin=PASSWORD + "\n")
    b.cli("migrate")
    for name in ("bob", "carol"):
        b.cli("user", "create", name, "--password-stdin", stdin=PASSWORD + "\n")
    try:
        for node in (a, b):
            node.start()
        yield a, b
    finally:
        for node in (a, b):
            node.stop()


def gone(api: Mastodon, call, *args) -> bool:
    try:
        call(*args)
    except MastodonNotFoundError:
        return True
    return False


def count(node: NodeProcess, statement: str, **params) -> int:
    return testdb.sql(node.data_dir, statement, **params)[0][0]


def test_a_direct_conversation_between_two_nodes(nodes):
    a, b = nodes
    alice, bob, carol = client(a, "alice"), client(b, "bob"), client(b, "carol")
    [bob_on_a] = alice.search_v2(f"bob@{b.domain}", resolve=True).accounts
    [alice_on_b] = carol.search_v2(f"alice@{a.domain}", resolve=True).accounts
    carol.account_follow(alice_on_b.id)  # a follower of alice: she must still see nothing
    wait_for(lambda: carol.account_relationships(alice_on_b.id)[0].following, timeout=30,
             what="A to accept carol's follow")

    dm = alice.status_post(f"@bob@{b.domain} {SECRET}", visibility="direct")
    assert dm.visibility == "direct" and [m.acct for m in dm.mentions] == [bob_on_a.acct]

    # bob: a mention notification, and an unread conversation whose last status is the DM
    [mention] = wait_for(lambda: bob.notifications(types=["mention"]), timeout=30,
                         what="the DM's mention notification on B")
    assert mention.account.acct == f"alice@{a.domain}"
    assert mention.status.visibility == "direct" and "back room" in mention.status.content
    on_b = mention.status
    [conversation] = bob.conversations()
    assert conversation.unread is True and conversation.last_status.id == on_b.id
    assert conversation.last_status.visibility == "direct"
    assert [acc.acct for acc in conversation.accounts] == [f"alice@{a.domain}"]
    assert bob.conversations_read(conversation.id).unread is False

    # bob answers direct; alice sees it in her conversation, unread, and is notified
    answer = bob.status_reply(on_b, ANSWER, visibility="direct")
    assert answer.visibility == "direct" and answer.in_reply_to_id == on_b.id

    def answered():
        found = alice.conversations()
        return found if found and ANSWER in found[0].last_status.content else None

    [on_a] = wait_for(answered, timeout=30, what="bob's answer in alice's conversation")
    assert on_a.unread is True and on_a.last_status.visibility == "direct"
    assert on_a.last_status.in_reply_to_id == dm.id
    assert [acc.acct for acc in on_a.accounts] == [f"bob@{b.domain}"]
    assert [n.status.id for n in alice.notifications(types=["mention"])] == [on_a.last_status.id]
    [bob_side] = bob.conversations()
    assert bob_side.id == conversation.id and bob_side.last_status.id == answer.id

    # carol, on bob's node and following alice, sees none of it
    for timeline in (carol.timeline_home(), carol.timeline_public(), carol.timeline_local(),
                     carol.timeline_hashtag("plans"), carol.account_statuses(alice_on_b.id)):
        assert not [s for s in timeline if s.id in (on_b.id, answer.id)]
    for status_id in (on_b.id, answer.id):
        assert gone(carol, carol.status, status_id)
        assert gone(carol, carol.status_context, status_id)
    assert carol.conversations() == [] and carol.notifications() == []
    assert gone(carol, carol.conversations_read, conversation.id)
    carol_id = count(b, "SELECT id FROM actors WHERE username = 'carol' AND local = :t", t=True)
    carol_uri = testdb.sql(b.data_dir, "SELECT uri FROM actors WHERE id = :id", id=carol_id)[0][0]
    assert count(b, "SELECT count(*) FROM notifications WHERE recipient_id = :id", id=carol_id) == 0
    assert count(b, "SELECT count(*) FROM conversations WHERE actor_id = :id", id=carol_id) == 0
    assert count(b, "SELECT count(*) FROM object_audience WHERE actor_uri = :u", u=carol_uri) == 0
    assert bob.conversations()[0].unread is False  # carol's tries changed nothing of bob's
    assert "Traceback" not in a.server_log() + b.server_log()


class PeerThread:
    """The strict Mastodon-like peer, serving from an event loop of its own thread: B fetches
    eva's actor from it while the test waits on B."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.peer = self.run(MastodonPeer().start())

    def run(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def close(self) -> None:
        self.run(self.peer.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def peer():
    running = PeerThread()
    yield running
    running.close()


def test_a_dm_addressed_only_on_the_activity_arrives_direct(nodes, peer):
    """The peer runs its own HTTP server; B is a real process that fetches eva's actor from it."""
    mastodon = peer.peer
    _, b = nodes
    bob, carol = client(b, "bob"), client(b, "carol")
    bob_uri = f"{b.base}/actors/bob"
    eva = mastodon.add_actor("eva")
    before = {n.id for n in bob.notifications(types=["mention"])}

    def send(inbox: str, text: str, **addressing) -> dict:
        note = {"id": mastodon.new_id("statuses"), "type": "Note", "attributedTo": eva.uri,
                "content": f"<p>{text}</p>", "published": "2026-12-06T10:00:00Z"}
        create = {"@context": AS, "id": mastodon.new_id(), "type": "Create", "actor": eva.uri,
                  "object": note, **addressing}
        status, body = peer.run(mastodon.post(eva, inbox, create))
        assert status == 202, body
        return note

    note = send(f"{b.base}/inbox", "only the activity names you", to=[bob_uri], cc=[])

    def arrived():
        return [n for n in bob.notifications(types=["mention"]) if n.id not in before]

    [mention] = wait_for(arrived, timeout=30, what="eva's DM to reach bob")
    assert mention.status.uri == note["id"] and mention.status.visibility == "direct"
    assert mention.account.acct.startswith("eva@")
    assert gone(carol, carol.status, mention.status.id)
    assert note["id"] in [c.last_status.uri for c in bob.conversations()]

    # Named nowhere, sent to carol's own inbox: a DM to carol alone.
    quiet = send(f"{b.base}/actors/carol/inbox", "for your eyes only")
    [to_carol] = wait_for(lambda: carol.notifications(types=["mention"]), timeout=30,
                          what="eva's DM to reach carol's own inbox")
    assert to_carol.status.uri == quiet["id"] and to_carol.status.visibility == "direct"
    assert gone(bob, bob.status, to_carol.status.id)
    assert [c.last_status.uri for c in carol.conversations()] == [quiet["id"]]
    assert not mastodon.failures
    assert "Traceback" not in b.server_log()
