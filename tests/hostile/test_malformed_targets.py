"""A handle or URL that cannot even be parsed (typed in a form or on the command line, or a
redirect another server sends) is a clear refusal, never a 500 or a traceback; an event's time
zone name that the file system cannot hold is an unknown zone, not a stalled worker item."""

from __future__ import annotations

import io
import tarfile

import pytest
from sqlalchemy import func, select

from fedsph.errors import FetchError, UserError
from fedsph.events.fields import zone
from fedsph.events.received import event_columns
from fedsph.federation.remote import check_url
from fedsph.models import Follow
from tests.support.members import browser, login, make_user, post_form

BAD_URLS = ["https://[y/x", "https://example.org:99999/", "http://[::1/"]


@pytest.mark.parametrize("url", BAD_URLS)
def test_an_unparseable_url_is_a_fetch_error(url):
    with pytest.raises(FetchError):
        check_url(url, allow_private=False)


@pytest.mark.parametrize("target", ["x@[y", "https://[y/users/x"])
async def test_the_manage_page_refuses_an_unparseable_handle_and_stores_nothing(node, target):
    project = await node.create_actor("coop", "Group")
    await make_user(node, "ana", project=project)
    async with browser() as client:
        await login(client, node, "ana")
        response = await post_form(client, f"{node.base}/actors/coop/manage",
                                   {"action": "follow", "handle": target})
        assert response.status == 400
    async with node.readers() as db:
        assert await db.scalar(select(func.count(Follow.id))) == 0


def test_the_cli_refuses_an_unparseable_handle_in_one_line(fedsph):
    fedsph("migrate")
    fedsph("project", "create", "coop", "--name", "Coop")
    code, out = fedsph("follow", "coop", "x@[bad")
    assert code == 1 and "Traceback" not in out and "cannot find" in out


@pytest.mark.sqlite  # restore puts back a SQLite file
def test_a_restore_with_a_broken_manifest_is_one_line(fedsph, tmp_path):
    archive = tmp_path / "broken.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in (("fedsph-backup.json", b"{not json"), ("fedsph.sqlite3", b"xx")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    code, out = fedsph("restore", str(archive))
    assert code == 1 and "not a readable fedsph backup" in out and "Traceback" not in out


@pytest.mark.parametrize("name", ["a" * 300, "../" * 100 + "etc/passwd"])
def test_a_zone_name_the_file_system_cannot_hold_is_an_unknown_zone(name):
    with pytest.raises(UserError, match="not a known time zone"):
        zone(name)


def test_a_received_event_with_such_a_zone_is_kept_in_utc_and_one_before_time_is_not():
    base = {"type": "Event", "startTime": "2027-03-10T09:00:00", "timezone": "a" * 300}
    assert event_columns(base)["timezone"] is None  # an unknown zone: times shown in UTC
    with pytest.raises(ValueError, match="not a date"):
        event_columns({**base, "timezone": "UTC", "startTime": "0001-01-01T00:00:00+05:00"})
