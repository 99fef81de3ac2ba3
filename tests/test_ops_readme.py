"""Every command of the README's "Operate" section, run as written against a real node (only the
address is the test node's, and the peer a local server instead of mastodon.social)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.processes import NodeProcess

README = Path(__file__).resolve().parent.parent / "README.md"


def operate_commands() -> list[str]:
    text = README.read_text()
    section = text[text.index("<!-- operate: begin"):text.index("<!-- operate: end -->")]
    return [line for block in re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
            for line in block.splitlines() if line.strip()]


def test_every_operate_command_works(tmp_path):
    commands = operate_commands()
    assert "fedsph doctor" in commands and "fedsph serve" in commands
    exports = [c for c in commands if c.startswith("export ")]
    shown = subprocess.run(["bash", "-c", "; ".join(exports) + "; env"], capture_output=True,
                           text=True, check=True).stdout
    settings = dict(line.split("=", 1) for line in shown.splitlines()
                    if line.startswith("FEDSPH_METRICS_"))
    assert len(settings["FEDSPH_METRICS_TOKEN"]) == 64
    node = NodeProcess(tmp_path / "node", **settings)
    node.cli("bootstrap")
    node.start()  # what `fedsph serve` does
    node.log.chmod(0o600)  # the test's log of the server, kept in the data dir
    bin_dir = str(Path(sys.executable).parent)
    env = {**node.env, "PATH": f"{bin_dir}:{node.env['PATH']}"}
    try:
        for command in commands:
            if command.startswith("export ") or command == "fedsph serve":
                continue
            run = (command.replace("127.0.0.1:8080", node.domain)
                   .replace("https://mastodon.social", node.base))
            result = subprocess.run(["bash", "-c", run], env=env, capture_output=True, text=True,
                                    timeout=60, check=False)
            assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
            if "/healthz" in command:
                assert result.stdout.startswith("HTTP/1.1 200") and "ok" in result.stdout
            if "/metrics" in command:
                assert "fedsph_inbox_items" in result.stdout
                assert "fedsph_http_requests_total" in result.stdout
            if command.startswith("fedsph doctor"):
                assert "doctor: all good (exit 0)" in result.stdout
    finally:
        node.stop()
