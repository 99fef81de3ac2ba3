"""The `fedsph` command as an operator uses it: every mistake gets a one-line answer, no traceback."""


import pytest


def test_commands_on_an_unmigrated_database_say_to_migrate(fedsph):
    for command in (["serve"], ["worker"], ["queue"], ["post", "coop", "--text", "hola"]):
        code, out = fedsph(*command)
        assert code == 1
        assert "run `fedsph migrate` first" in out


def test_project_user_post_and_queue(fedsph):
    assert fedsph("migrate")[0] == 0
    code, out = fedsph("project", "create", "coop", "--name", "Cooperativa", "--manual-approval")
    assert code == 0 and "@coop@127.0.0.1:8080" in out
    code, out = fedsph("user", "create", "ana", "--password-stdin", "--project", "coop",
                       stdin="correct horse battery\n")
    assert code == 0 and "created user ana" in out and "password" not in out
    code, out = fedsph("user", "create", "bea")
    assert code == 0 and "with password: " in out  # generated, shown once
    code, out = fedsph("post", "coop", "--text", "Primera piedra", "--lang", "es")
    assert code == 0 and out.strip().startswith("http://127.0.0.1:8080/objects/")
    assert "coop\tCooperativa" in fedsph("project", "list")[1]
    code, out = fedsph("queue")
    assert code == 0 and "deliveries: empty" in out  # no followers yet: nothing to send
    code, out = fedsph("follow-requests", "coop")
    assert code == 0 and out == ""


def test_bootstrap_creates_a_project_and_an_admin_once(fedsph):
    code, out = fedsph("bootstrap")
    assert code == 0
    assert "created project @demo@" in out and "username admin, password " in out
    code, out = fedsph("bootstrap")
    assert code == 0 and "created" not in out


@pytest.mark.parametrize("args, stdin, message", [
    (["project", "create", "coop", "--name", "Again"], "", "the name 'coop' is already taken"),
    (["project", "create", "Bad Slug", "--name", "X"], "", "is not a valid name"),
    (["project", "create", "inbox", "--name", "X"], "", "'inbox' is reserved"),
    (["user", "create", "ana", "--password-stdin"], "short\n", "at least 8 characters"),
    (["user", "create", "ana", "--project", "nope"], "", "no project or user called 'nope'"),
    (["post", "nope", "--text", "hola"], "", "no project or user called 'nope'"),
    (["post", "coop", "--text", ""], "", "an update needs some text"),
    (["follow", "coop", "not a handle"], "", "not a handle of the form user@host"),
    (["follow", "coop", "someone@127.0.0.1:9"], "", "refusing to contact private address"),
    (["follow-requests", "coop", "--approve", "99"], "", "no pending follow request 99"),
    (["edit", "coop", "http://elsewhere.example/x", "--text", "a"], "", "is not an update by coop"),
])
def test_mistakes_get_a_clear_message_and_exit_code_1(fedsph, args, stdin, message):
    fedsph("migrate")
    fedsph("project", "create", "coop", "--name", "Cooperativa")
    code, out = fedsph(*args, stdin=stdin)
    assert code == 1, out
    assert message in out
    assert "Traceback" not in out


def test_bad_configuration_exits_2(fedsph, monkeypatch):
    monkeypatch.setenv("FEDSPH_PORT", "eighty")
    code, out = fedsph("queue")
    assert code == 2 and "FEDSPH_PORT: expected a number" in out


def test_serve_on_a_busy_port_says_so(fedsph, monkeypatch):
    import socket

    fedsph("migrate")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        monkeypatch.setenv("FEDSPH_PORT", str(busy.getsockname()[1]))
        code, out = fedsph("serve")
    assert code == 1 and "cannot listen on 127.0.0.1:" in out and "set FEDSPH_PORT" in out
