"""Every command fails the same way: one `error:` line on stderr saying what the registry (or the
network, or the file) said, exit code 1, nothing on stdout, no traceback, nothing changed."""
import pytest
from click.testing import CliRunner

from chalicelib.metadata.models import Principal, SigningKey
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
    refused = failed_cleanly(cli("pull", "127.0.0.1:9/team/app:1", "out"), "did not answer (connection refused")
    assert "HTTPConnectionPool" not in refused.stderr


def test_repo_set_refusals_change_nothing(logged_in):
    from chalicelib.metadata import keys
    from chalicelib.metadata.models import RepositorySetting
    failed_cleanly(logged_in("repo", "set", "clitest/app", "--immutable-tags", "v/1"),
                   "400 INVALID", "immutable_tags: at most 20 patterns of tag characters and * ?")
    failed_cleanly(logged_in("repo", "set", "clitest/app", "--time-machine-days", "9999"),
                   "400 INVALID", "time_machine_days is 0 … 3650")
    assert RepositorySetting.count(keys.resource("clitest/app")) == 0
    for args in (["repo", "set", "clitest/app"], ["repo", "set", "clitest/app", "--time-machine-days", "soon"],
                 ["repo", "set", "clitest/app", "--immutable-tags", "v*", "--no-immutable-tags"],
                 ["restore", "clitest/app:prod"], ["restore", "clitest/app", "sha256:" + "0" * 64],
                 ["restore", "clitest/app:prod", "sha256:" + "0" * 64, "--at", "2026-01-01T00:00:00Z"]):
        result = logged_in(*args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stdout == ""
    assert RepositorySetting.count(keys.resource("clitest/app")) == 0


def test_history_and_restore_of_what_does_not_exist_are_one_error_line(logged_in):
    failed_cleanly(logged_in("history", "clitest/none"), "reading the history of clitest/none", "404 NAME_UNKNOWN")
    failed_cleanly(logged_in("restore", "clitest/none:prod", "--at", "2026-01-01T00:00:00Z"),
                   "restoring clitest/none:prod: 404 MANIFEST_UNKNOWN: clitest/none:prod named no manifest at "
                   "2026-01-01T00:00:00+00:00")
    failed_cleanly(logged_in("diff", "clitest/none:a", "clitest/none:b"), "fetching the manifest a", "404")
    failed_cleanly(logged_in("diff", "oci:/nonexistent", "clitest/none:b"), "/nonexistent")


def test_gc_prints_what_it_did_and_what_it_cost(logged_in):
    result = logged_in("gc", "--dry-run")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("dry run: ") and "repositories" in lines[0]
    assert "manifests doomed" in lines[1] and lines[-1].startswith("cost: ")
    assert "DynamoDB read units" in lines[-1] and "S3 requests" in lines[-1]
    failed_cleanly(logged_in("gc", "--namespace", "Not_A_Namespace"), "collecting garbage: 400 INVALID")


@pytest.mark.parametrize("rule, shown", [(("--keep-last", "0"), "keep-last=0"),
                                         (("--untagged-days", "0"), "untagged-days=0")])
def test_a_retention_rule_of_zero_is_a_rule(logged_in, rule, shown):
    result = logged_in("retention", "set", "zero", *rule)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"retention of zero: {shown}\n"
    from chalicelib.metadata import keys
    from chalicelib.metadata.models import RepositorySetting
    import json
    stored = json.loads(RepositorySetting.get(keys.resource("zero")).retention)
    assert stored[rule[0][2:].replace("-", "_")] == 0


def test_a_login_file_and_the_local_ca_key_are_the_owners_alone_whatever_was_there(cli, stack, tmp_path):
    import os
    import stat
    from dockless.local import tls
    logins = tmp_path / "logins.json"
    logins.write_text('{"registries": {}}')
    os.chmod(logins, 0o644)
    assert cli("login", stack.url, "-u", "admin", "--password-stdin", input=stack.admin_token).exit_code == 0
    assert stat.S_IMODE(logins.stat().st_mode) == 0o600
    assert stack.url in logins.read_text()
    key = tmp_path / "tls" / "private" / "ca.key"
    key.parent.mkdir(parents=True)
    key.write_text("left from before")
    os.chmod(key, 0o644)
    tls.server_context(tmp_path / "tls")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and key.read_bytes().startswith(b"-----BEGIN")
    assert sorted(p.name for p in key.parent.iterdir()) == ["ca.key"]  # nothing staged left


def test_a_login_to_a_registry_that_does_not_answer_says_so_in_words(cli):
    result = failed_cleanly(cli("login", "http://127.0.0.1:9", "-u", "admin", "--password-stdin", input="x"),
                            "http://127.0.0.1:9 did not answer (connection refused")
    assert "HTTPConnectionPool" not in result.stderr and "Errno" not in result.stderr


def test_sign_and_verify_use_the_stored_login_and_the_anonymous_are_told_to_log_in(cli, logged_in, stack, tmp_path,
                                                                                   monkeypatch):
    host = stack.url.split("://", 1)[1]
    keyring = tmp_path / "KEYS"
    keyring.write_text("")
    # Logged in: the registry is asked as admin, and answers that there is no such image.
    failed_cleanly(logged_in("verify", f"{host}/signed/app:1", "--keyring", str(keyring)), "404", "UNKNOWN")
    failed_cleanly(logged_in("sign", f"{host}/signed/app:1", "--key", "0" * 40), "404", "UNKNOWN")
    # Without a login (another config file): told to log in, not to ask for a grant.
    monkeypatch.setenv("DOCKLESS_CONFIG", str(tmp_path / "nobody.json"))
    refused = failed_cleanly(cli("verify", f"{host}/signed/app:1", "--keyring", str(keyring)),
                             "401 UNAUTHORIZED", "log in (docker login, dockless login)")
    assert "ask an admin" not in refused.stderr


def test_a_key_added_for_some_repositories_says_so_and_a_bad_name_changes_nothing(logged_in, tmp_path):
    from tests.notary import Notary
    root = tmp_path / "root.crt"
    root.write_text(Notary().root_pem)
    failed_cleanly(logged_in("key", "add", "clitest", str(root), "--repository", "../up"), "400 INVALID", "repositories")
    assert SigningKey.count("clitest") == 0
    added = logged_in("key", "add", "clitest", str(root), "--repository", "app", "--repository", "tools/*")
    assert added.exit_code == 0 and "(for clitest/app, clitest/tools/* only)" in added.stdout, added.output
    listed = logged_in("key", "list", "clitest")
    assert "(for clitest/app, clitest/tools/* only)" in listed.stdout
