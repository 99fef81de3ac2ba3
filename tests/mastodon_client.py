"""A real `fedsph serve` with a project (casa) and two members (ana in casa, bea on her own), and
Mastodon.py clients logged in with the password grant: what the client-API tests share."""

from __future__ import annotations

from mastodon import Mastodon

from tests.processes import NodeProcess

PASSWORD = "correct horse battery"


def start_server(data_dir) -> NodeProcess:
    server = NodeProcess(data_dir)
    server.cli("migrate")
    server.cli("project", "create", "casa", "--name", "Casa Común")
    server.cli("user", "create", "ana", "--password-stdin", "--project", "casa",
               stdin=PASSWORD + "\n")
    server.cli("user", "create", "bea", "--password-stdin", stdin=PASSWORD + "\n")
    server.start()
    return server


def stop_server(server: NodeProcess) -> None:
    server.stop()
    assert "Traceback" not in server.server_log()


def logged_in(server: NodeProcess, username: str, app_name: str = "fedsph tests") -> Mastodon:
    client_id, client_secret = Mastodon.create_app(app_name, api_base_url=server.base)
    api = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=server.base)
    api.log_in(username, PASSWORD, allow_http=True, scopes=["read", "write", "follow"])
    return api
