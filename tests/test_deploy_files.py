"""The shipped deploy/ files, checked with the tools that will read them (issue 14, item 4):
the systemd units with `systemd-analyze verify`, the nginx example with `nginx -t` and then in
front of a real node, the Caddyfile with `caddy validate`, and the README's useradd and install
lines. The README's "Deploy" section names which test runs each of its commands.
tests/test_deploy_caddy.py runs the Caddyfile, tests/test_deploy_command.py the environment file
and the `fedsph` command.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fedsph.config import load_settings
from tests.fakepeer import free_port
from tests.processes import NodeProcess, stop_process, wait_for
from tests.support import testdb
from tests.support.caddy import loopback_addresses, readme_lines
from tests.support.tls import make_ca

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
PROGRAM = "/opt/fedsph/bin/fedsph"
ENV_FILE = "/etc/fedsph/fedsph.env"
VENV_PROGRAM = Path(sys.executable).parent / "fedsph"


def _need(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        pytest.skip(f"{tool} is not installed (`make tls-proxies` installs caddy, nginx, curl "
                    "and systemd-analyze)")
    return found


# The files, and nginx in front of nodes, do not depend on the database engine: run in the SQLite
# run only. test_deploy_caddy.py and test_deploy_hardening.py run on both engines.
engine_independent = testdb.sqlite_run_only("deploy/ files do not depend on the database engine")


@engine_independent
def test_systemd_units_pass_systemd_analyze_verify(tmp_path):
    """`systemd-analyze verify` of both units, as shipped but for the two paths that exist only on
    an installed machine (the program and the environment file), which it checks exist."""
    _need("systemd-analyze")
    env_file = tmp_path / "fedsph.env"
    shutil.copy(DEPLOY / "fedsph.env", env_file)
    units = []
    for name in ("fedsph-web.service", "fedsph-worker.service"):
        text = (DEPLOY / name).read_text()
        assert text.count(PROGRAM) == 1 and text.count(ENV_FILE) >= 1
        unit = tmp_path / name
        unit.write_text(text.replace(PROGRAM, str(VENV_PROGRAM)).replace(ENV_FILE, str(env_file)))
        units.append(str(unit))
        for setting in ("User=fedsph", "EnvironmentFile=", "Restart=on-failure",
                        "NoNewPrivileges=yes", "ProtectSystem=strict",
                        "ReadWritePaths=/var/lib/fedsph", "WorkingDirectory=/var/lib/fedsph"):
            assert setting in text, f"{name} lacks {setting}"
    [line] = readme_lines("sudo systemd-analyze verify ")
    command = line.removeprefix("sudo ").replace("/etc/systemd/system/", f"{tmp_path}/")
    assert command.split()[2:] == units
    checked = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=60,
                             check=False)
    assert checked.returncode == 0 and not checked.stderr.strip(), checked.stderr
    web, worker = ((DEPLOY / name).read_text() for name in ("fedsph-web.service",
                                                             "fedsph-worker.service"))
    assert f"ExecStart={PROGRAM} serve --no-worker" in web
    assert f"ExecStart={PROGRAM} worker" in worker


@engine_independent
def test_caddyfile_passes_caddy_validate(tmp_path):
    """The README's check after editing /etc/caddy/Caddyfile, run on the shipped file."""
    _need("caddy")
    env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data"),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    [line] = readme_lines("sudo caddy validate ")
    command = line.removeprefix("sudo ").replace("/etc/caddy/Caddyfile", str(DEPLOY / "Caddyfile"))
    checked = subprocess.run(command, shell=True, env=env, capture_output=True, text=True,
                             timeout=60, check=False)
    assert checked.returncode == 0 and "Valid configuration" in checked.stdout, checked.stderr
    # The admin API on a socket only root and caddy reach, not on localhost:2019.
    assert "\n{\n\tadmin unix//var/lib/caddy/admin.sock\n}\n" in (DEPLOY / "Caddyfile").read_text()


@engine_independent
def test_caddys_admin_api_is_a_socket_that_reload_reaches(tmp_path):
    """The shipped global options run: the admin API listens on a unix socket only its owner
    (caddy, and root) may use, not on localhost:2019, and `caddy reload` (Debian's `systemctl
    reload caddy`) finds it through the Caddyfile."""
    _need("caddy")
    socket_path = tmp_path / "admin.sock"
    text = (DEPLOY / "Caddyfile").read_text()
    assert text.count("admin unix//var/lib/caddy/admin.sock") == 1
    config = tmp_path / "Caddyfile"
    config.write_text(text.replace("/var/lib/caddy/admin.sock", str(socket_path))
                      .replace("coop.example.org {", f"http://127.0.0.1:{free_port()} {{"))
    env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data"),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    command = ["caddy", "--adapter", "caddyfile", "--config", str(config)]
    log = tmp_path / "caddy.log"
    # The socket's mode follows the umask: the one a service gets (systemd's 022), not the
    # test runner's, which may be anything.
    with open(log, "w") as output:
        caddy = subprocess.Popen(["caddy", "run", *command[1:]], env=env, stdout=output,
                                 stderr=subprocess.STDOUT, umask=0o022)
    try:
        wait_for(socket_path.exists, what="Caddy's admin socket")
        assert socket_path.stat().st_mode & 0o777 == 0o755, log.read_text()  # write: owner only
        reloaded = subprocess.run(["caddy", "reload", *command[1:], "--force"], env=env,
                                  capture_output=True, text=True, timeout=60, check=False)
        assert reloaded.returncode == 0, (reloaded.stderr, log.read_text())
        if shutil.which("ss"):  # without iproute2 the rest still holds
            assert caddy.pid not in _listeners_of(2019), log.read_text()
    finally:
        stop_process(caddy)


def _listeners_of(port: int) -> set[int]:
    """The ids of processes with a socket listening on `port` (ss, from iproute2)."""
    shown = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True,
                           text=True, check=True).stdout
    return {int(part.split("=")[1].rstrip(",)")) for part in shown.split()
            for part in part.split(",") if part.startswith("pid=")}


def _nginx_config(tmp_path: Path, certificate, key, site_text: str) -> Path:
    """A whole nginx.conf around the shipped site file, its logs and pid in tmp_path."""
    (tmp_path / "logs").mkdir(exist_ok=True)
    site = tmp_path / "fedsph-site.conf"
    site.write_text(site_text.replace("/etc/letsencrypt/live/coop.example.org/fullchain.pem",
                                      str(certificate))
                    .replace("/etc/letsencrypt/live/coop.example.org/privkey.pem", str(key)))
    config = tmp_path / "nginx.conf"
    # As root nginx would hand its connections to `nobody`, who cannot enter tmp_path.
    config.write_text(f"""
user root;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/logs/error.log;
events {{}}
http {{
    access_log {tmp_path}/logs/access.log;
    client_body_temp_path {tmp_path}/body;
    proxy_temp_path {tmp_path}/proxy;
    include {site};
}}
""")
    return config


def _nginx(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["nginx", "-c", str(config), "-p", str(config.parent), *args],
                          capture_output=True, text=True, timeout=60, check=False)


@engine_independent
def test_nginx_example_passes_nginx_t(tmp_path):
    """`nginx -t` of the shipped example, with a test certificate where certbot's would be."""
    _need("nginx")
    ca = make_ca(tmp_path / "ca")
    text = (DEPLOY / "nginx.conf").read_text()
    assert "client_max_body_size 45m;" in text and "proxy_pass http://127.0.0.1:8080;" in text
    checked = _nginx(_nginx_config(tmp_path, ca.cert_file, ca.key_file, text), "-t")
    assert checked.returncode == 0 and "test is successful" in checked.stderr, checked.stderr


@pytest.mark.e2e
@engine_independent
def test_nginx_example_in_front_of_a_node(tmp_path):
    """The shipped example serving a real node on port 443 of a loopback address (listening
    there only, with a test certificate and the node as upstream): https ids, the visitor's
    address logged, a body past the limit refused by nginx."""
    _need("nginx")
    _need("curl")
    [address] = loopback_addresses(1)
    ca = make_ca(tmp_path / "ca", address)
    node = NodeProcess(tmp_path / "node", FEDSPH_BASE_URL=f"https://{address}",
                       FEDSPH_TRUSTED_PROXIES="127.0.0.1")
    # B, a node without a proxy trusting the test authority, follows coop through nginx.
    other = NodeProcess(tmp_path / "other", FEDSPH_CA_BUNDLE=str(ca.ca_file))
    text = (DEPLOY / "nginx.conf").read_text()
    for old, replacement in (("127.0.0.1:8080", f"127.0.0.1:{node.port}"),
                             ("listen 443 ssl http2;", f"listen {address}:443 ssl http2;"),
                             ("listen [::]:443 ssl http2;\n", ""),
                             ("listen 80;\n", f"listen 127.0.0.1:{free_port()};\n"),
                             ("listen [::]:80;\n", "")):
        assert text.count(old) == 1, f"deploy/nginx.conf no longer has {old!r} once"
        text = text.replace(old, replacement)
    config = _nginx_config(tmp_path, ca.cert_file, ca.key_file, text)
    node.cli("migrate")
    node.cli("project", "create", "coop", "--name", "Coop")
    other.cli("migrate")
    other.cli("project", "create", "beta", "--name", "Beta")
    node.start()
    other.start()
    nginx = subprocess.Popen(["nginx", "-c", str(config), "-p", str(tmp_path), "-g",
                              "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        curl = ["curl", "-sS", "--cacert", str(ca.ca_file), "--interface", "127.0.0.9"]
        wait_for(lambda: subprocess.run([*curl, "-o", "/dev/null", f"https://{address}/"],
                                        capture_output=True, check=False).returncode == 0,
                 what="nginx to answer")
        actor = subprocess.run([*curl, "-H", "Accept: application/activity+json",
                                "-H", "X-Forwarded-For: 203.0.113.66",
                                f"https://{address}/actors/coop?nginx-test=1"],
                               capture_output=True, text=True, check=True).stdout
        assert json.loads(actor)["id"] == f"https://{address}/actors/coop"
        [line] = wait_for(lambda: [line for line in node.server_log().splitlines()
                                   if "nginx-test=1" in line], what="the access log line")
        assert 'fedsph.access: 127.0.0.9 "GET ' in line and "203.0.113.66" not in line
        too_big = subprocess.run([*curl, "-o", "/dev/null", "-w", "%{http_code}",
                                  "--data-binary", "@-", f"https://{address}/actors/coop/inbox"],
                                 input=b"x" * (46 * 1024 * 1024), capture_output=True,
                                 check=False)
        assert too_big.stdout == b"413"
        assert "inbox" not in "".join(line for line in node.server_log().splitlines()
                                      if "POST" in line)
        assert testdb.sql(node.data_dir, "SELECT count(*) FROM inbox_items") == [(0,)]
        # Signed requests through nginx: B finds coop (WebFinger, the actor) over HTTPS and
        # delivers a signed Follow to coop's inbox, which checks the signature over the Host
        # header nginx passed on, and accepts.
        assert "pending" in other.cli("follow", "beta", f"coop@{address}").stdout
        followers = f"https://{address}/actors/coop/followers?page=1"
        wait_for(lambda: f"{other.base}/actors/beta" in subprocess.run(
            [*curl, "-H", "Accept: application/activity+json", followers],
            capture_output=True, text=True, check=False).stdout, timeout=60,
            what="coop to accept beta's signed Follow delivered through nginx")
        assert any(('"POST /inbox"' in line or '"POST /actors/coop/inbox"' in line)
                   and " 202 " in line
                   for line in node.server_log().splitlines()), node.server_log()[-2000:]
    finally:
        stop_process(nginx)
        node.stop()
        other.stop()
    assert "Traceback" not in node.server_log() and "Traceback" not in other.server_log()


@engine_independent
def test_the_readme_useradd_and_install_lines_in_a_scratch_root(tmp_path):
    """The README's `useradd` and `install` lines as written, but inside tmp_path: useradd with
    --prefix (its own passwd and group files), paths under tmp_path, and root as owner where
    the line names the fedsph user, who exists only in tmp_path's passwd."""
    if os.geteuid() != 0:
        pytest.skip("useradd and install -o need root")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    for name in ("passwd", "group", "shadow", "gshadow"):
        (root / "etc" / name).touch()
    for folder in ("var/lib", "usr/local/bin"):
        (root / folder).mkdir(parents=True)
    make_ca(tmp_path / "ca")
    shutil.copy(tmp_path / "ca" / "ca.pem", tmp_path / "root.crt")  # step "private authority"
    # (The copy of a backup to the admin's home and a backup from elsewhere are
    # tests/test_deploy_command.py's, run as another user; the upgrade installs the `fedsph`
    # command again.)
    lines = readme_lines("sudo useradd ") + readme_lines("sudo install ")
    assert len(lines) == 7, lines
    for line in lines:
        command = line.removeprefix("sudo ")
        if command.startswith("useradd "):  # its paths are the user's, inside the prefix
            command = command.replace("useradd ", f"useradd --prefix {root} ", 1)
        else:
            command = (command.replace("/usr/local/src/fedsph/deploy/", f"{DEPLOY}/")
                       .replace("-o fedsph", "-o root").replace("-g fedsph", "-g root"))
            for path in ("/var/lib/fedsph", "/etc/fedsph", "/usr/local/bin/fedsph"):
                command = command.replace(f" {path}", f" {root}{path}")
        subprocess.run(command, shell=True, cwd=tmp_path, check=True, timeout=60)
    [entry] = (root / "etc" / "passwd").read_text().splitlines()
    name, _, uid, _, _, home, shell = entry.split(":")
    assert (name, home, shell) == ("fedsph", "/var/lib/fedsph", "/usr/sbin/nologin")
    assert int(uid) < 1000  # a system user
    assert (root / "var/lib/fedsph").stat().st_mode & 0o777 == 0o700
    env_file = root / "etc/fedsph/fedsph.env"
    assert env_file.stat().st_mode & 0o777 == 0o600 and env_file.stat().st_uid == 0
    assert env_file.read_text() == (DEPLOY / "fedsph.env").read_text()
    assert (root / "usr/local/bin/fedsph").stat().st_mode & 0o777 == 0o755
    bundle = root / "etc/fedsph/private-ca.crt"
    assert load_settings({"FEDSPH_CA_BUNDLE": str(bundle)}).ca_bundle == str(bundle)


@engine_independent
def test_make_tls_proxies_removes_its_policy_rc_d_when_interrupted(tmp_path):
    """`make tls-proxies` keeps Debian's packages from starting services while it installs them
    with a policy-rc.d it makes: Ctrl-C during the install must not leave it behind (every
    later package install on the machine would then start nothing). apt-get here only waits,
    the tools it would install missing from PATH, the file in tmp_path."""
    fake = tmp_path / "bin"
    fake.mkdir()
    for tool in ("chmod", "rm", "sleep"):
        (fake / tool).symlink_to(shutil.which(tool))
    started = tmp_path / "apt-started"
    (fake / "apt-get").write_text(f"#!/bin/sh\ntouch {started}\nexec sleep 60\n")
    (fake / "touch").symlink_to(shutil.which("touch"))
    (fake / "apt-get").chmod(0o755)
    policy = tmp_path / "policy-rc.d"
    make = subprocess.Popen([shutil.which("make"), "-s", "-C", str(ROOT), "tls-proxies",
                             f"POLICY_RC_D={policy}"], env={"PATH": str(fake)},
                            start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not started.exists():
            assert make.poll() is None and time.monotonic() < deadline, make.stdout.read()
            time.sleep(0.05)
        assert policy.read_text() == "#!/bin/sh\nexit 101\n"  # in place while installing
        os.killpg(make.pid, signal.SIGINT)  # Ctrl-C reaches make, its shell and apt-get
        make.wait(timeout=30)
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait()
    assert make.returncode != 0 and not policy.exists()
