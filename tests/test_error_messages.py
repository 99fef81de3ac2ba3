"""Validation messages (UserError) reach web pages in the visitor's language; str(), the CLI and
logs keep the English text."""

from __future__ import annotations

import contextlib
import html as html_lib
import io

import aiohttp
import pytest

from fedsph.cli import main
from fedsph.errors import N_, Term, UserError
from fedsph.hub.directory import FilterError, parse_filters
from fedsph.i18n import get_translations
from fedsph.projects import post_fields, profile
from fedsph.projects.media import MediaError, clean_alt
from tests.support.members import csrf_from, login, make_user, multipart
from tests.support.nodes import use_data_dir


def test_str_is_english_and_translate_uses_the_catalog():
    with pytest.raises(profile.ProfileError) as caught:
        profile.validate_field("start_year", "19")
    exc = caught.value
    assert isinstance(exc, UserError) and not isinstance(exc, ValueError)
    assert str(exc) == "start_year: 19 is not a year from 1800 to 2100"
    assert exc.translate(get_translations("es").gettext) == (
        "start_year: 19 no es un año entre 1800 y 2100")
    assert exc.translate(get_translations("en").gettext) == str(exc)


@pytest.mark.parametrize("raise_it, english", [
    (lambda: clean_alt(""), "Describe the image in a few words"),
    (lambda: parse_filters({"q": "x" * 500}), "q: at most 200 characters"),
    (lambda: post_fields.language_tag("not a tag!"), "'not a tag!' is not a language tag"),
])
def test_every_converted_error_is_a_translatable_user_error(raise_it, english):
    with pytest.raises(UserError) as caught:
        raise_it()
    assert isinstance(caught.value, UserError) and str(caught.value).startswith(english)
    assert caught.value.translate(get_translations("fr").gettext) != str(caught.value)
    assert isinstance(MediaError("x"), UserError) and isinstance(FilterError("x"), UserError)
    assert not isinstance(MediaError("x"), ValueError)  # a ValueError is a bug, never a message


def test_terms_are_translated_and_a_broken_translation_falls_back_to_english():
    exc = UserError(N_("the %(what)s time %(value)r is not a date and time like 2027-03-10T09:00"),
                    what=Term("start"), value="soon")
    assert str(exc).startswith("the start time 'soon'")
    assert exc.translate(get_translations("es").gettext).startswith("la hora de inicio 'soon'")
    broken = UserError("%(limit)s", limit=3)
    assert broken.translate(lambda message: "%(other)s") == "3"


@contextlib.asynccontextmanager
async def spanish_browser():
    """A browser asking for Spanish pages, keeping cookies for 127.0.0.1."""
    async with aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            headers={"Accept": "text/html", "Accept-Language": "es-UY,es;q=0.9"}) as client:
        yield client


async def test_a_spanish_visitor_sees_form_errors_in_spanish(node):
    await make_user(node, "ana", await node.create_actor("coop", "Group"))
    async with spanish_browser() as client:
        await login(client, node, "ana")
        edit = f"{node.base}/actors/coop/edit"
        token = await csrf_from(client, edit)
        bad = {"languages": "es", "name_es": "Cooperativa", "start_year": "19"}
        async with client.post(edit, data=multipart(token, bad), allow_redirects=False) as response:
            assert response.status == 400
            page = html_lib.unescape(await response.text())
        assert "start_year: 19 no es un año entre 1800 y 2100" in page
        assert "is not a year" not in page

        compose = f"{node.base}/actors/coop/compose"
        token = await csrf_from(client, compose)
        empty = {"text_es": " "}
        async with client.post(compose, data=multipart(token, empty),
                               allow_redirects=False) as response:
            assert response.status == 400
            page = html_lib.unescape(await response.text())
        assert "una novedad necesita algo de texto" in page and "needs some text" not in page
        long_title = {"text_es": "Hola", "title_es": "t" * 300}
        async with client.post(compose, data=multipart(token, long_title),
                               allow_redirects=False) as response:
            assert response.status == 400
            page = html_lib.unescape(await response.text())
        assert "un título tiene como máximo 200 caracteres" in page


def test_the_cli_still_speaks_english(tmp_path, monkeypatch, capsys):
    use_data_dir(monkeypatch, tmp_path / "data")
    monkeypatch.setenv("LANG", "es_UY.UTF-8")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["migrate"]) == 0
    assert main(["project", "create", "coop", "--name", "Cooperativa"]) == 0
    capsys.readouterr()
    assert main(["project", "set", "coop", "start_year", "19"]) == 1
    assert main(["post", "coop", "--text", ""]) == 1
    out = "".join(capsys.readouterr())
    assert "start_year: 19 is not a year from 1800 to 2100" in out
    assert "an update needs some text" in out
