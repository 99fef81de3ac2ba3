"""Settings come from defaults, a TOML file, the environment and overrides, in that order."""

from pathlib import Path

import pytest

from fedsph.config import ConfigError, load_settings


def test_defaults_serve_a_sqlite_node_on_port_8080():
    settings = load_settings(environ={})
    assert settings.base_url == "http://127.0.0.1:8080"
    assert settings.domain == "127.0.0.1:8080"
    assert settings.allow_private_networks is False
    assert settings.effective_database_url.startswith("sqlite+aiosqlite:///")
    assert settings.effective_database_url.endswith("data/fedsph.sqlite3")


def test_environment_overrides_defaults():
    settings = load_settings(environ={
        "FEDSPH_BASE_URL": "https://coop.example/", "FEDSPH_PORT": "9000",
        "FEDSPH_ALLOW_PRIVATE_NETWORKS": "yes", "FEDSPH_DATA_DIR": "/srv/fedsph",
        "FEDSPH_DATABASE_URL": "postgresql+asyncpg://fedsph@db/fedsph",
    })
    assert settings.base_url == "https://coop.example"  # trailing slash dropped
    assert settings.domain == "coop.example"
    assert settings.port == 9000
    assert settings.allow_private_networks is True
    assert settings.data_dir == Path("/srv/fedsph")
    assert settings.effective_database_url == "postgresql+asyncpg://fedsph@db/fedsph"


def test_a_moved_port_moves_the_default_base_url():
    assert load_settings(environ={"FEDSPH_PORT": "8181"}).base_url == "http://127.0.0.1:8181"


def test_toml_file_is_read_and_environment_wins(tmp_path):
    config = tmp_path / "fedsph.toml"
    config.write_text('base_url = "https://toml.example"\nnode_name = "Red Habitat"\nport = 8123\n')
    settings = load_settings(environ={"FEDSPH_CONFIG": str(config), "FEDSPH_PORT": "8124"})
    assert settings.base_url == "https://toml.example"
    assert settings.node_name == "Red Habitat"
    assert settings.port == 8124


@pytest.mark.parametrize("environ, message", [
    ({"FEDSPH_PORT": "eighty"}, "FEDSPH_PORT: expected a number"),
    ({"FEDSPH_PORT": "70000"}, "FEDSPH_PORT must be 1-65535"),
    ({"FEDSPH_ALLOW_PRIVATE_NETWORKS": "maybe"}, "expected true/false"),
    ({"FEDSPH_BASE_URL": "coop.example"}, "must be an http(s) URL"),
    ({"FEDSPH_BASE_URL": "https://coop.example/fedsph"}, "must not have a path"),
    ({"FEDSPH_CONFIG": "/nonexistent/fedsph.toml"}, "FEDSPH_CONFIG=/nonexistent/fedsph.toml"),
])
def test_bad_values_name_the_setting(environ, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings(environ=environ)


def test_unknown_key_in_the_toml_file_is_refused(tmp_path):
    config = tmp_path / "fedsph.toml"
    config.write_text('colour = "green"\n')
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        load_settings(environ={"FEDSPH_CONFIG": str(config)})
