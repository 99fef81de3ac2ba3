"""Only a UserError (or an HTTP problem) reaches people as a message; any other exception is a
bug that keeps its traceback: in the CLI, on web pages and in the client API."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import orjson
import pytest
from aiohttp.test_utils import make_mocked_request

from fedsph import cli
from fedsph.api.errors import api_middleware
from fedsph.errors import UserError
from fedsph.web.middleware import errors as web_errors


async def refuse(node, args):
    raise UserError("the river is too high to cross today")


def test_a_user_error_from_a_command_is_one_line_and_exit_1(fedsph, monkeypatch):
    assert fedsph("migrate")[0] == 0
    monkeypatch.setitem(cli.COMMANDS, "queue", refuse)
    code, out = fedsph("queue")
    assert code == 1
    assert out.strip().splitlines() == ["fedsph: the river is too high to cross today"]


def test_a_bug_in_a_command_keeps_its_traceback(fedsph, monkeypatch):
    def broken(settings, args):
        raise ValueError("a bug, not a mistake of the operator")

    monkeypatch.setitem(cli.WITHOUT_NODE, "migrate", broken)
    with pytest.raises(ValueError, match="a bug"):
        fedsph("migrate")


def test_the_fedsph_command_prints_a_bug_with_its_traceback(tmp_path):
    script = ("import fedsph.cli as cli\n"
              "def broken(settings, args): raise KeyError('no such column')\n"
              "cli.WITHOUT_NODE['migrate'] = broken\n"
              "raise SystemExit(cli.main(['migrate']))\n")
    env = {**os.environ, "FEDSPH_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, check=False,
                          text=True, timeout=60)
    assert done.returncode != 0
    assert "Traceback (most recent call last)" in done.stderr
    assert "KeyError: 'no such column'" in done.stderr


def _fails(exc: Exception):
    async def handler(request):
        raise exc
    return handler


async def test_an_unexpected_value_error_in_a_web_handler_is_a_logged_500(caplog):
    request = make_mocked_request("GET", "/actors/coop", headers={"Accept": "application/json"})
    with caplog.at_level(logging.ERROR, logger="fedsph.web"):
        response = await web_errors(request, _fails(ValueError("invalid literal")))
    assert response.status == 500  # not a 400: the visitor did nothing wrong
    assert b"invalid literal" not in response.body
    logged = [r for r in caplog.records if r.name == "fedsph.web"]
    assert logged and logged[0].exc_info and logged[0].exc_info[0] is ValueError


async def test_a_user_error_in_a_web_handler_is_a_400_with_its_message(caplog):
    request = make_mocked_request("POST", "/actors/coop/manage",
                                  headers={"Accept": "application/json"})
    response = await web_errors(request, _fails(UserError("not a domain")))
    assert response.status == 400
    assert orjson.loads(response.body) == {"error": "not a domain"}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_an_unexpected_error_in_an_api_handler_is_a_json_500(caplog):
    request = make_mocked_request("GET", "/api/v1/timelines/home")
    with caplog.at_level(logging.ERROR, logger="fedsph.api"):
        response = await api_middleware(request, _fails(ValueError("invalid literal")))
    assert response.status == 500
    assert response.headers["Content-Type"] == "application/json"
    assert orjson.loads(response.body) == {"error": "Internal server error"}
    logged = [r for r in caplog.records if r.name == "fedsph.api"]
    assert logged and logged[0].exc_info and logged[0].exc_info[0] is ValueError


async def test_a_user_error_in_an_api_handler_is_a_422():
    request = make_mocked_request("POST", "/api/v1/statuses")
    response = await api_middleware(request, _fails(UserError("an update needs some text")))
    assert response.status == 422
    assert orjson.loads(response.body) == {"error": "Validation failed: an update needs some text"}


@pytest.mark.parametrize("link_id", ["x", "-1", "9" * 30])
def test_a_link_number_that_is_no_row_id_is_a_user_error(fedsph, link_id):
    fedsph("migrate")
    fedsph("project", "create", "coop", "--name", "Cooperativa")
    code, out = fedsph("link", "accept", "coop", link_id)
    assert code == 1 and f"coop has no solidarity link {link_id}" in out
    assert "Traceback" not in out
