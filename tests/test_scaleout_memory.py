"""What keeps `fedsph serve` small at idle (bench/memory.py measures it): the modules it does not
load, the head revision read without Alembic, and the document cache's bound as a setting."""

from __future__ import annotations

import subprocess
import sys

import pytest
from alembic.script import ScriptDirectory

from fedsph.config import ConfigError, load_settings
from fedsph.db import alembic_config, head_revision
from fedsph.web.documents import make_document_cache

# Loaded only when their work is asked for: migrating, an iCal export, an upload, a login of an
# unknown name, the other engine's upserts; /metrics, when FEDSPH_METRICS_* turns it on.
NOT_AT_SERVE = ("alembic", "mako", "icalendar", "PIL.ImageCms", "sqlalchemy.dialects.postgresql",
                "prometheus_client")


def test_serving_does_not_load_what_only_other_commands_need(tmp_path):
    script = ("import sys, fedsph.cli\n"
              "from fedsph.app import create_app\n"
              "from fedsph.config import load_settings\n"
              f"create_app(load_settings(environ={{'FEDSPH_DATA_DIR': {str(tmp_path)!r}}}))\n"
              f"print([m for m in {NOT_AT_SERVE!r} if m in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.strip() == "[]"


def test_the_head_revision_is_alembics():
    expected = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head_revision() == expected


def test_the_document_cache_bound_is_a_setting():
    assert load_settings(environ={}).document_cache_seconds == 30
    settings = load_settings(environ={"FEDSPH_DOCUMENT_CACHE_SECONDS": "2"})
    assert make_document_cache(settings.document_cache_seconds).ttl == 2
    for bad in ("-1", "3601", "soon"):
        with pytest.raises(ConfigError, match="FEDSPH_DOCUMENT_CACHE_SECONDS"):
            load_settings(environ={"FEDSPH_DOCUMENT_CACHE_SECONDS": bad})


def test_no_cache_means_every_request_builds_the_document():
    cache = make_document_cache(0)
    cache["actor", "coop"] = b"{}"
    assert ("actor", "coop") not in cache
