"""Every command the README tells a volunteer to paste is run by a test, or says why it cannot be.

Issue 14 asks that each command in the install, deploy, operate and upgrade sections be exercised
by a test. The tests that run them live beside their features (several read their lines straight
from the README); this file is the index that keeps README and tests together. A command added to
a shell block of the README without an entry here fails this test, and so does an entry whose
test no longer exists or that no README line uses any more.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

# What a command line starts with (a regular expression, matched at the start of the line with
# its leading `sudo ` and `cd … && ` removed) → the test that runs it, as "file::function", or
# "not run: why". The first matching entry wins.
RAN_BY: tuple[tuple[str, str], ...] = (
    # Quick start: CI runs `make test`; `make run` is `migrate`, `bootstrap`, `serve` as below.
    (r"make test\b", "not run: it is the command that runs every test (.ci/run)"),
    (r"make run\b", "not run as one command: its steps are (an editable install: tests/test_package.py; `fedsph migrate`, `bootstrap`, `serve`: tests/test_cli.py and the end-to-end tests)"),
    # Install
    (r"python3 -m venv ~/fedsph-env", "tests/test_package.py::test_a_wheel_in_a_fresh_environment_migrates_serves_speaks_spanish_and_upgrades"),
    (r"rm -rf dist", "tests/test_package.py::test_a_wheel_in_a_fresh_environment_migrates_serves_speaks_spanish_and_upgrades"),
    (r"~/fedsph-env/bin/pip (wheel|install)", "tests/test_package.py::test_a_wheel_in_a_fresh_environment_migrates_serves_speaks_spanish_and_upgrades"),
    (r"export FEDSPH_DATA_DIR=", "tests/test_package.py::test_a_wheel_in_a_fresh_environment_migrates_serves_speaks_spanish_and_upgrades"),
    (r"~/fedsph-env/bin/fedsph (migrate|bootstrap|serve)", "tests/test_package.py::test_a_wheel_in_a_fresh_environment_migrates_serves_speaks_spanish_and_upgrades"),
    # Deploy (run as root in the tests: `sudo` is dropped)
    (r"apt (update|install)", "not run: installs system packages (`make postgres-server tls-proxies` install the same ones for the tests)"),
    (r"git (clone|pull)", "not run: the tests work in this checkout"),
    (r"nano ", "not run: an editor"),
    (r"(certbot|ln -s /etc/nginx|systemctl |nginx -t$)", "not run: needs a public name or a running systemd; tests/test_deploy_files.py::test_nginx_example_passes_nginx_t checks the nginx example"),
    (r"cp /usr/local/src/fedsph/deploy/", "not run: copies a file into /etc (tests/test_deploy_files.py reads the shipped files in place)"),
    (r"python3 -m venv /opt/fedsph", "not run: the Install section's `python3 -m venv`, elsewhere (tests/test_package.py)"),
    (r"/opt/fedsph/bin/pip install", "not run: the Install section's pip lines, elsewhere (tests/test_package.py)"),
    (r"useradd |install -d |install -m 6\d\d /usr/local/src|install -m 755 /usr/local/src|install -m 644 root.crt", "tests/test_deploy_files.py::test_the_readme_useradd_and_install_lines_in_a_scratch_root"),
    (r"(BACKUP|NAME)=(backup|before-upgrade)-|\(umask 077 && sudo -u fedsph cat ", "tests/test_deploy_command.py::test_the_fedsph_command_runs_as_the_service_user_with_its_settings"),
    (r"-u fedsph sh -c 'umask 077 && cat > ", "tests/test_deploy_command.py::test_a_backup_from_elsewhere_is_written_by_the_fedsph_user"),
    (r"caddy validate", "tests/test_deploy_files.py::test_caddyfile_passes_caddy_validate"),
    (r"systemd-analyze verify", "tests/test_deploy_files.py::test_systemd_units_pass_systemd_analyze_verify"),
    (r"curl (\"https://coop\.example\.org/\.well-known|-H \"Accept: application/activity\+json\" https://coop)", "tests/test_deploy_caddy.py::test_two_nodes_federate_over_https_through_caddy"),
    (r"fedsph (migrate|project create|user create|backup /var/lib/fedsph/\$(BACKUP|NAME)|restore /var/lib/fedsph/\$NAME)", "tests/test_deploy_command.py::test_the_fedsph_command_runs_as_the_service_user_with_its_settings"),
    # Operate
    (r"fedsph doctor|fedsph serve$|curl -i http://127\.0\.0\.1:8080/healthz|export FEDSPH_METRICS_TOKEN=|curl -H \"Authorization: Bearer", "tests/test_ops_readme.py::test_every_operate_command_works"),
    # Accounts
    (r"fedsph (user (list|disable|enable|password|delete)|project delete)", "tests/test_accounts_e2e.py::test_disable_enable_password_list_delete_from_the_command_line"),
    (r"fedsph user reset-link", "tests/test_mail_e2e.py::test_reset_invite_and_confirm_through_a_real_node_and_smtp_server"),
    # E-mail
    (r"export FEDSPH_SMTP_", "tests/test_mail.py::test_the_readme_example_settings_load"),
    (r"fedsph invite \S+ --email", "tests/test_mail_e2e.py::test_reset_invite_and_confirm_through_a_real_node_and_smtp_server"),
    # Profiles (Using the web pages)
    (r"fedsph project set ", "tests/test_profile.py"),
    # Operating: PostgreSQL, backups, upgrades
    (r"export FEDSPH_DATABASE_URL=postgresql", "not run as written: the tests' throwaway cluster has its own URL (tests/dbfixtures.py); `make test` runs every test on PostgreSQL"),
    (r"\.venv/bin/fedsph (migrate|serve)", "tests/test_upgrade.py::test_a_node_at_an_old_revision_upgrades_with_its_data"),
    (r"NAME=fedsph-before-upgrade-", "tests/test_deploy_command.py::test_the_upgrading_sections_backup_gets_a_new_name_each_time"),
    (r"\.venv/bin/fedsph (backup|restore)", "tests/test_backup.py::test_a_backup_restores_projects_updates_keys_and_photos"),
)

SHELL_BLOCK = re.compile(r"^ *```(?:sh|shell|bash|console)\n(.*?)^ *```", re.DOTALL | re.MULTILINE)


def readme_commands() -> list[str]:
    """Each command line of the README's shell blocks, without comments and prompts."""
    lines = []
    for block in SHELL_BLOCK.findall(README.read_text()):
        for raw in block.splitlines():
            line = raw.split("  #")[0].strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def bare(line: str) -> str:
    """The command itself: no `cd DIR && ` before it, no `sudo`."""
    line = re.sub(r"^cd \S+ && ", "", line)
    return line.removeprefix("sudo ")


def test_every_readme_command_is_run_by_a_test_or_says_why_not():
    unknown = [line for line in readme_commands()
               if not any(re.match(pattern, bare(line)) for pattern, _ in RAN_BY)]
    assert not unknown, ("README commands no test is named for (add the test that runs each to "
                         f"RAN_BY in {Path(__file__).name}): {unknown}")


def test_every_named_test_exists():
    for _, where in RAN_BY:
        if where.startswith("not run"):
            continue
        path, _, function = where.partition("::")
        source = (ROOT / path).read_text()
        if function:
            assert re.search(rf"^(async )?def {function}\(", source, re.MULTILINE), f"{where} is gone"


def test_every_entry_is_still_used():
    commands = [bare(line) for line in readme_commands()]
    stale = [pattern for pattern, _ in RAN_BY
             if not any(re.match(pattern, command) for command in commands)]
    assert not stale, f"entries no README command uses any more: {stale}"
