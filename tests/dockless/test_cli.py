"""Every command fails the same way: one `error:` line on stderr saying what the registry (or the
network, or the file) said, exit code 1, nothing on stdout, no traceback, nothing changed."""
import pytest
from click.testing import CliRunner

from chalicelib.meta.models import Principal, SigningKey
from dockless.cli import main


@pytest.fixture
def cli(stack, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKLESS_CONFIG", str(tmp_path / "logins.json"))

    def run(*args, input=None):
        return CliRunner().invoke(main, list(args), input=input)
    return run


@pytest.fixture
def logged_in(cli, stack):
    assert cli("login", stack.url, "-u", "admin", "--password-stdin", input=stack.admin_token).exit_code == 0
    return cli


def failed_cleanly(result, *said):
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    for text in said:
        assert text in result.stderr
    return result


def test_a_refused_admin_call_is_one_error_line_with_the_registrys_code(logged_in):
    failed_cleanly(logged_in("user", "create", "Not A Name"), "400 INVALID: invalid administration request: name must match")
    assert Principal.count("Not A Name") == 0
    failed_cleanly(logged_in("token", "revoke", "0123456789abcdef"), "404 NOT_FOUND", "no credential")


def test_key_commands_go_through_the_same_client(logged_in, tmp_path):
    not_a_key = tmp_path / "key.asc"
    not_a_key.write_text("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot a key\n-----END PGP PUBLIC KEY BLOCK-----\n")
    failed_cleanly(logged_in("key", "add", "clitest", str(not_a_key)), "adding keys for clitest", "400 INVALID")
    assert SigningKey.count("clitest") == 0
    listed = logged_in("key", "list", "clitest")
    assert listed.exit_code == 0 and listed.stdout == ""
    failed_cleanly(logged_in("key", "list", "Bad_Namespace"), "listing the keys of Bad_Namespace", "400")


def test_not_logged_in_and_unreachable_registries_are_one_line_too(cli, stack):
    failed_cleanly(cli("user", "list"), "not logged in")
    failed_cleanly(cli("login", stack.url, "-u", "admin", "--password-stdin", input="dkl_wrong"),
                   "login refused: 401 UNAUTHORIZED")
    failed_cleanly(cli("pull", "127.0.0.1:9/team/app:1", "out"), "did not answer")
