"""Editing an event (`fedsph event edit` and the members' edit form): only what changes changes,
followers get Update{Event}, and the Note that announced the event is rewritten to match."""

from __future__ import annotations

from types import SimpleNamespace

from sqlalchemy import select

from fedsph.events import commands as event_commands
from fedsph.models import Event, Object
from tests.support.db import add_remote_follower
from tests.support.events import MEETING, make_event
from tests.support.members import browser, login, make_user, post_form
from tests.support.nodes import cli_node, use_data_dir
from tests.support.pages import audit

EDIT_OPTIONS = ("name", "start", "end", "tz", "kind", "place", "online", "languages",
                "interpretation", "join_mode", "related", "text")


def edit_args(event_uri: str, **given) -> SimpleNamespace:
    """What argparse gives `event edit`: None for every option not on the command line."""
    return SimpleNamespace(slug="coop", event=event_uri,
                           **{option: given.get(option) for option in EDIT_OPTIONS})


async def stored(node, obj) -> tuple[Object, Event]:
    async with node.readers() as db:
        return await db.get(Object, obj.id), await db.get(Event, obj.id)


async def test_cli_edit_of_the_start_updates_the_event_and_its_note(node, peer):
    project = await node.create_actor("coop")
    alice = peer.add_actor("alice")
    await add_remote_follower(node, project, alice)
    obj = await make_event(node)
    await node.run_worker()
    note_id = next(a["object"]["id"] for a in peer.activities("Create")
                   if a["object"]["type"] == "Note")

    args = edit_args(obj.uri, start="2027-03-10T10:30")
    assert await event_commands.edit(cli_node(node), args) == 0
    await node.run_worker()
    updates = {a["object"]["type"]: a["object"] for a in peer.activities("Update")}
    assert set(updates) == {"Event", "Note"}
    assert updates["Event"]["startTime"] == "2027-03-10T10:30:00-03:00"
    # Everything not given stays: the end, the place with its coordinates, the languages…
    assert updates["Event"]["endTime"] == "2027-03-10T17:00:00-03:00"
    assert updates["Event"]["location"]["name"] == "FUCVAM"
    assert updates["Event"]["location"]["latitude"] == obj.place["latitude"]
    assert updates["Event"]["attachment"][0]["href"] == MEETING["online_url"]
    assert updates["Event"]["spokenLanguages"] == ["es", "pt"]
    assert updates["Event"]["interpretation"] == ["en"]
    assert updates["Event"]["name"] == MEETING["name"]
    assert "Orden del día" in updates["Event"]["content"]
    note = updates["Note"]
    assert note["id"] == note_id and "updated" in note
    assert "2027-03-10 10:30–17:00 (America/Montevideo)" in note["content"]
    assert "09:00" not in note["content"] and "FUCVAM" in note["content"]


async def test_cli_partial_edits_keep_the_other_fields(node):
    await node.create_actor("coop")
    obj = await make_event(node)
    before, before_event = await stored(node, obj)
    args = edit_args(obj.uri, place="Salón comunal", tz="America/Sao_Paulo", online="",
                     name="Encuentro HUB (nueva sede)")
    assert await event_commands.edit(cli_node(node), args) == 0
    after, event = await stored(node, obj)
    assert after.name == "Encuentro HUB (nueva sede)" and after.content == before.content
    assert after.place == {"type": "Place", "name": "Salón comunal"}
    assert event.online_url is None and event.timezone == "America/Sao_Paulo"
    # The clock times stay 09:00–17:00, now in São Paulo's zone (also UTC-3 in March 2027).
    assert after.document["startTime"] == "2027-03-10T09:00:00-03:00"
    assert (event.kind, event.join_mode, event.languages, event.interpretation,
            event.organizers) == (before_event.kind, before_event.join_mode,
                                  before_event.languages, before_event.interpretation,
                                  before_event.organizers)
    assert after.document["startTime"] and after.updated is not None

    args = edit_args(obj.uri, kind="", languages=[], text="")
    assert await event_commands.edit(cli_node(node), args) == 0
    after, event = await stored(node, obj)
    assert event.kind is None and event.languages is None and after.content is None
    assert after.name == "Encuentro HUB (nueva sede)" and event.timezone == "America/Sao_Paulo"


def test_event_edit_command_refuses_bad_input_with_one_line(tmp_path, monkeypatch, capsys):
    from fedsph.cli import main

    use_data_dir(monkeypatch, tmp_path / "data")
    assert main(["migrate"]) == 0
    assert main(["project", "create", "coop", "--name", "Cooperativa"]) == 0
    capsys.readouterr()
    assert main(["event", "create", "coop", "--name", "Asamblea", "--start", "2027-03-10T09:00",
                 "--end", "2027-03-10T12:00", "--tz", "America/Montevideo",
                 "--place", "Salón comunal"]) == 0
    uri = capsys.readouterr().out.strip()
    for options, message in (
            (["--end", "2027-03-10T08:00"], "an event must end after it starts"),
            (["--tz", "Nowhere/Land"], "'Nowhere/Land' is not a known time zone"),
            (["--kind", "party"], "'party' is not a known event kind"),
            (["--join-mode", "maybe"], "'maybe' is not a known join mode"),
            (["--start", "soon"], "is not a date and time"),
            (["--place", ""], "an event needs a place or an online link"),
            (["--start", ""], "an event needs a start time")):
        assert main(["event", "edit", "coop", uri, *options]) == 1, options
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (options, err)
    assert main(["event", "edit", "coop", uri + "x", "--name", "Y"]) == 1
    assert "is not an event of coop" in capsys.readouterr().err
    assert main(["event", "edit", "coop", uri, "--start", "2027-03-11T09:00",
                 "--end", "2027-03-11T11:00"]) == 0
    assert capsys.readouterr().out == f"edited {uri}\n"
    assert main(["event", "list", "coop"]) == 0
    assert "2027-03-11 09:00 America/Montevideo\tAsamblea\t" + uri in capsys.readouterr().out
    assert main(["event", "cancel", "coop", uri]) == 0
    assert main(["event", "edit", "coop", uri, "--name", "Z"]) == 1
    assert "this event was cancelled" in capsys.readouterr().err


async def test_members_edit_events_from_the_web(node, peer):
    project = await node.create_actor("coop")
    await make_user(node, "ana", project)
    await make_user(node, "bea")
    await add_remote_follower(node, project, peer.add_actor("alice"))
    obj = await make_event(node)
    await node.run_worker()
    page = obj.url[len(node.base):]
    edit = page + "/edit"
    async with browser() as client:
        async with client.get(node.base + edit, allow_redirects=False) as resp:
            assert resp.status == 303 and resp.headers["Location"].startswith("/login")
        await login(client, node, "bea")
        async with client.get(node.base + edit) as resp:
            assert resp.status == 403
        async with client.get(node.base + page) as resp:
            assert edit not in await resp.text()
    async with browser() as client:
        await login(client, node, "ana")
        async with client.get(node.base + page) as resp:
            assert f'href="{edit}"' in await resp.text()
        for path in (edit, edit.replace("/p/", "/actors/", 1)):
            async with client.get(node.base + path) as resp:
                html = await resp.text()
                assert resp.status == 200, path
                assert audit(html) == [], path
        assert 'value="2027-03-10T09:00"' in html and 'value="2027-03-10T17:00"' in html
        assert 'value="America/Montevideo"' in html and 'value="FUCVAM"' in html
        assert 'value="Av. 8 de Octubre 3000"' in html and 'value="es pt"' in html
        assert 'value="hub_meeting" selected' in html and "Orden del día" in html
        assert f'action="{edit}"' in html

        form = {"name": MEETING["name"], "lang": "es", "start": "2027-03-10T09:00",
                "end": "2027-03-10T08:00", "tz": "America/Montevideo", "kind": "hub_meeting",
                "place": "FUCVAM", "address": "Av. 8 de Octubre 3000",
                "online": MEETING["online_url"], "languages": "es pt", "interpretation": "en",
                "join_mode": "free", "related": "", "text": MEETING["content"]}
        response = await post_form(client, node.base + edit, form)
        html = await response.text()
        assert response.status == 400 and "end after it starts" in html
        assert 'value="2027-03-10T08:00"' in html and audit(html) == []
        form["end"] = "2027-03-10T17:00"
        response = await post_form(client, node.base + edit, {**form, "related": "nope"})
        assert response.status == 400 and "is not an http(s) URL" in await response.text()
        response = await client.post(node.base + edit, data=form, allow_redirects=False)
        assert response.status == 403  # no CSRF token

        response = await post_form(client, node.base + edit,
                                   {**form, "start": "2027-03-12T14:00", "end": "2027-03-12T18:00"})
        assert response.status == 303 and response.headers["Location"] == page
        async with client.get(node.base + page) as resp:
            shown = await resp.text()
        assert "2027-03-12 14:00" in shown and "18:00" in shown
    after, event = await stored(node, obj)
    # Unchanged name and address: the place keeps its coordinates.
    assert after.place == obj.place and event.interpretation == ["en"]
    assert after.document["startTime"] == "2027-03-12T14:00:00-03:00"
    await node.run_worker()
    updates = {a["object"]["type"]: a["object"] for a in peer.activities("Update")}
    assert updates["Event"]["startTime"] == "2027-03-12T14:00:00-03:00"
    assert "2027-03-12 14:00–18:00 (America/Montevideo)" in updates["Note"]["content"]
    async with node.readers() as db:
        assert len(list(await db.scalars(select(Object).where(Object.type == "Note")))) == 1


async def test_event_form_takes_related_projects_by_handle(node, peer):
    project = await node.create_actor("coop")
    await make_user(node, "ana", project)
    vecinos = peer.add_actor("vecinos", "Group")
    form = {"name": "Feria", "lang": "es", "start": "2027-05-02T10:00", "end": "", "tz": "UTC",
            "kind": "", "place": "Plaza", "address": "", "online": "", "languages": "es",
            "interpretation": "", "join_mode": "free", "text": "",
            "related": f"@vecinos@{peer.domain} https://elsewhere.example/actors/casa"}
    async with browser() as client:
        await login(client, node, "ana")
        page = f"{node.base}/p/coop/events/new"
        response = await post_form(client, page, {**form, "related": f"nobody@{peer.domain}"})
        assert response.status == 400 and "cannot find" in await response.text()
        response = await post_form(client, page, form)
        assert response.status == 303, await response.text()
    async with node.readers() as db:
        event = await db.scalar(select(Event))
    # The handle is looked up (as `fedsph event create --related` does); an address is kept.
    assert event.related_projects == [vecinos.uri, "https://elsewhere.example/actors/casa"]
