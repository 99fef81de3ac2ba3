"""Shared fixtures: a migrated fedsph node running in the test's loop, and fake peers."""

from __future__ import annotations

import io

import pytest

from fedsph.app import connect_features
from tests.fakepeer import FakePeer
from tests.support import testdb
from tests.support.nodes import make_settings, start_node, use_data_dir, wait_long_before_retries
from tests.support.smtp import MailServer

pytest_plugins = ["tests.pgcluster", "tests.dbfixtures"]


def pytest_report_header(config):
    return f"database engine: {testdb.engine()} ({testdb.VARIABLE})"


def pytest_collection_modifyitems(config, items):
    """A test about one engine runs only in that engine's run: `make test` runs both."""
    on_postgresql = testdb.on_postgresql()
    for item in items:
        if on_postgresql and item.get_closest_marker("sqlite"):
            item.add_marker(pytest.mark.skip(reason="about SQLite itself: runs in the SQLite run"))
        elif not on_postgresql and item.get_closest_marker("postgres"):
            item.add_marker(pytest.mark.skip(
                reason=f"PostgreSQL only: runs with {testdb.VARIABLE}=postgresql"))


@pytest.fixture
async def node(tmp_path):
    running = await start_node(make_settings(tmp_path))
    yield running
    await running.runner.cleanup()


@pytest.fixture
async def peer():
    fake = await FakePeer().start()
    yield fake
    await fake.stop()


# -- the command line, run in this process ---------------------------------------------------------

@pytest.fixture
def fedsph(tmp_path, monkeypatch, capsys):
    """Run `fedsph …` in this process against a data dir of the test's own; (exit code, output)."""
    from fedsph.cli import main

    use_data_dir(monkeypatch, tmp_path / "data")

    def run(*args: str, stdin: str = "") -> tuple[int, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    return run


@pytest.fixture
def sqlite_fedsph(tmp_path, monkeypatch, capsys):
    """`fedsph …` in this process with FEDSPH_DATA_DIR given per call (backups made in one
    node's data dir, restored into another's); (exit code, output)."""
    from fedsph.cli import main

    use_data_dir(monkeypatch, tmp_path)

    def run(data_dir, *args: str) -> tuple[int, str]:
        monkeypatch.setenv("FEDSPH_DATA_DIR", str(data_dir))
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out + captured.err
    return run


@pytest.fixture
async def two_nodes(tmp_path):
    """Two running nodes, a and b, each with its own data dir."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    a = await start_node(make_settings(tmp_path / "a"))
    b = await start_node(make_settings(tmp_path / "b"))
    yield a, b
    for running in (a, b):
        await running.runner.cleanup()


@pytest.fixture
async def nodes(tmp_path):
    """A hub node and a project node (with the project `coop`), both running."""
    for name in ("hub", "project"):
        (tmp_path / name).mkdir()
    hub_node = await start_node(make_settings(tmp_path / "hub", hub=True, hub_name="Red Hub"))
    project_node = await start_node(make_settings(tmp_path / "project"))
    await project_node.create_actor("coop", manually_approves=True)
    yield hub_node, project_node
    await project_node.runner.cleanup()
    await hub_node.runner.cleanup()


@pytest.fixture(autouse=True, scope="session")
def _features_connected():
    """The hooks every fedsph process fills at start (fedsph.app.connect_features), for the tests
    that parse documents without starting an app."""
    connect_features()


# E-mail (tests/test_mail*.py): a real SMTP server on loopback, and a node that sends through it.
@pytest.fixture
def mail_server():
    server = MailServer().start()
    yield server
    server.stop()


@pytest.fixture
async def mail_node(tmp_path, mail_server):
    # Mail tests look at what a failed try left: its retry waits until they force it due.
    running = wait_long_before_retries(
        await start_node(make_settings(tmp_path, **mail_server.settings())))
    yield running
    await running.runner.cleanup()
