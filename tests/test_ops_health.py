"""/healthz answers 503, quickly and without details, when the database cannot be reached."""

from __future__ import annotations

import shutil

import aiohttp

from fedsph.web.keys import ENGINE
from tests.support import testdb
from tests.support.nodes import make_settings, start_node


def _take_database_away(node) -> callable:
    """Make the node's database unreachable for real; returns what brings it back."""
    if testdb.on_postgresql():
        _server, name = node.settings.database_url.rsplit("/", 1)
        server_url = testdb.current().server_url
        testdb._execute(server_url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        f"WHERE datname = '{name}'", f'ALTER DATABASE "{name}" RENAME TO "{name}_away"')
        return lambda: testdb._execute(server_url, f'ALTER DATABASE "{name}_away" RENAME TO "{name}"')
    database = node.settings.data_dir / "fedsph.sqlite3"
    away = database.with_name("away.sqlite3")
    database.rename(away)
    database.mkdir()  # a directory where the file was: SQLite cannot open it

    def bring_back():
        shutil.rmtree(database)
        away.rename(database)
    return bring_back


async def test_healthz_says_503_when_the_database_is_gone(tmp_path):
    node = await start_node(make_settings(tmp_path))
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(node.base + "/healthz") as response:
                assert (response.status, await response.text()) == (200, "ok\n")
            await node.app[ENGINE].dispose()  # the pool's open connections would still work
            bring_back = _take_database_away(node)
            try:
                async with http.get(node.base + "/healthz") as response:
                    body = await response.text()
                    assert response.status == 503
                    assert body == "database unreachable\n"  # no path, URL or error text
            finally:
                await node.app[ENGINE].dispose()
                bring_back()
            async with http.get(node.base + "/healthz") as response:
                assert response.status == 200
    finally:
        await node.runner.cleanup()
