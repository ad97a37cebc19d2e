"""Who may do what: `dockless login`, users, robots and teams, tokens, grants, and the audit trail,
each a thin call of the administration API (chalicelib/routes/admin.py) with the stored login."""
import json
import sys

import click

from dockless.client import logins
from dockless.ui import UI
from dockless.commands.options import client_of, registry_option, say


def register(main: click.Group) -> None:
    main.add_command(login)
    main.add_command(user)
    main.add_command(robot)
    main.add_command(team)
    main.add_command(token)
    main.add_command(grant)
    main.add_command(revoke)
    main.add_command(audit)


@click.command()
@click.argument("url")
@click.option("-u", "--username", default=None, help="User or robot name.")
@click.option("--password-stdin", is_flag=True, help="Read the access token from standard input.")
@click.option("--password", default=None, help="The access token (prefer --password-stdin).")
@click.option("--sso", is_flag=True, help="Sign in through the registry's identity provider (single sign-on).")
@click.option("--docker", "for_docker", is_flag=True,
              help="With --sso: let docker use this login too (its config.json, as an identity token).")
@click.pass_obj
def login(ui: UI, url, username, password_stdin, password, sso, for_docker):
    """Log in to a registry: the access token is exchanged for a refresh token, which is stored.
    With --sso, you sign in at the company's identity provider in a browser (on any device) and
    the registry's refresh token (12 hours) is stored.

    \b
    Examples:
      echo "$DOCKLESS_TOKEN" | dockless login http://localhost:5000 -u admin --password-stdin
      dockless login https://registry.example.com --sso --docker
    """
    if sso:
        if username or password or password_stdin:
            raise click.UsageError("--sso signs you in at the identity provider: no -u or password")
        name = logins.login_sso(url, ui.info)
        ui.result(f"logged in to {url.rstrip('/')} as {name}")
        if for_docker:
            ui.result(f"docker logged in to {logins.login_docker(url)} as {name}")
        return
    if for_docker:
        raise click.UsageError("--docker goes with --sso (else: docker login with the same token)")
    secret = sys.stdin.readline().strip() if password_stdin else password
    if not username or not secret:
        raise click.UsageError("give -u NAME and the access token with --password-stdin or --password, or use --sso")
    logins.login(url, username, secret)
    ui.result(f"logged in to {url.rstrip('/')} as {username}")


def _principal_group(kind: str, example: str):
    @click.group(name=kind, help=f"Manage {kind}s.\n\n\b\nExample:\n  {example}")
    def group():
        pass

    @group.command(name="create", help=f"Create a {kind}.")
    @click.argument("name")
    @click.option("--admin", is_flag=True, hidden=kind != "user", help="A registry administrator.")
    @registry_option
    def create(name, admin, registry):
        client_of(registry).admin("POST", "/principals", {"name": name, "kind": kind, "admin": admin})
        say(f"created {kind} {name}")

    @group.command(name="list", help=f"List {kind}s.")
    @registry_option
    def list_(registry):
        principals = client_of(registry).admin("GET", "/principals")["principals"]
        for principal in principals:
            if principal["kind"] == kind:
                extra = " ".join(principal.get("members", [])) if kind == "team" else (
                    "admin" if principal["admin"] else "")
                say(f"{principal['name']}\t{principal['created_at']}\t{extra}".rstrip())

    @group.command(name="delete", help=f"Delete a {kind}; its credentials are revoked.")
    @click.argument("name")
    @registry_option
    def delete(name, registry):
        client_of(registry).admin("DELETE", f"/principals/{name}")
        say(f"deleted {kind} {name}")

    return group


user = _principal_group("user", "dockless user create alice")


robot = _principal_group("robot", "dockless robot create ci && dockless token create ci --expires-days 90")


@robot.command(name="trust", help="Let CI jobs sign in as ROBOT with their OIDC ID token as the password (no stored "
                                  "secret): tokens from ISSUER for AUDIENCE whose sub matches SUBJECT (and each "
                                  "--claim NAME=PATTERN); * matches any run of characters.\n\n\b\nExample:\n"
                                  "  dockless robot trust ci --issuer https://token.actions.githubusercontent.com \\\n"
                                  "      --audience https://registry.example.com --subject 'repo:acme/app:ref:refs/heads/main'\n"
                                  "  # in the job: docker login registry.example.com -u ci --password-stdin <<< \"$ID_TOKEN\"")
@click.argument("name")
@click.option("--issuer", required=True, help="The OIDC issuer's URL, exactly as its tokens' iss.")
@click.option("--audience", required=True, help="The aud the job requests its ID token for.")
@click.option("--subject", required=True, help="The sub claim, or a pattern with *.")
@click.option("--claim", "claims", multiple=True, metavar="NAME=PATTERN", help="Another claim that must match.")
@registry_option
def robot_trust(name, issuer, audience, subject, claims, registry):
    pairs = {}
    for claim in claims:
        key, equals, pattern = claim.partition("=")
        if not equals:
            raise click.UsageError(f"--claim {claim!r}: give NAME=PATTERN")
        pairs[key] = pattern
    trust = client_of(registry).admin("POST", f"/principals/{name}/trusts", {
        "issuer": issuer, "audience": audience, "subject": subject, "claims": pairs})
    say(f"{name} trusts {trust['id']}: {issuer} sub {subject}" + "".join(f" {k}={v}" for k, v in pairs.items()))


@robot.command(name="trusts", help="The federated identities ROBOT trusts.")
@click.argument("name")
@registry_option
def robot_trusts(name, registry):
    for trust in client_of(registry).admin("GET", f"/principals/{name}/trusts")["trusts"]:
        say(f"{trust['id']}\t{trust['issuer']}\taud {trust['audience']}\tsub {trust['subject']}"
            + "".join(f"\t{k}={v}" for k, v in trust["claims"].items()))


@robot.command(name="untrust", help="Stop trusting one of ROBOT's federated identities (its id, from `trusts`).")
@click.argument("name")
@click.argument("trust_id")
@registry_option
def robot_untrust(name, trust_id, registry):
    client_of(registry).admin("DELETE", f"/principals/{name}/trusts/{trust_id}")
    say(f"{name} no longer trusts {trust_id}")


team = _principal_group("team", "dockless team create devs && dockless team add devs alice")


def _membership_command(command: str, method: str, done: str, help_text: str) -> None:
    """`dockless team add|remove TEAM MEMBER`."""
    @team.command(name=command, help=help_text)
    @click.argument("team_name")
    @click.argument("member")
    @registry_option
    def change(team_name, member, registry):
        client_of(registry).admin(method, f"/teams/{team_name}/members/{member}")
        say(done.format(member=member, team=team_name))


_membership_command("add", "PUT", "added {member} to {team}", "Add a user or robot to a team.")


_membership_command("remove", "DELETE", "removed {member} from {team}", "Remove a user or robot from a team.")


@click.group(help="Manage access tokens.\n\n\b\nExample:\n  dockless token create ci --expires-days 90")
def token():
    pass


@token.command(name="create", help="Create an access token for a user or robot; it is shown once.")
@click.argument("name")
@click.option("--expires-days", type=int, default=None, help="Days until it expires [default: never].")
@click.option("--description", default=None, help="What it is for.")
@registry_option
def token_create(name, expires_days, description, registry):
    created = client_of(registry).admin(
        "POST", f"/principals/{name}/tokens", {"expires_in_days": expires_days, "description": description})
    say(created["token"])
    click.get_current_context().find_object(UI).info(f"token {created['id']} for {name}: shown once, store it now")


@token.command(name="list", help="List a principal's tokens (never their secrets).")
@click.argument("name")
@registry_option
def token_list(name, registry):
    for entry in client_of(registry).admin("GET", f"/principals/{name}/tokens")["tokens"]:
        state = "revoked" if entry["revoked"] else "active"
        say(f"{entry['id']}\t{entry['kind']}\t{state}\tcreated {entry['created_at']}\t"
                   f"last used {entry['last_used_at'] or 'never'}\t{entry['description'] or ''}".rstrip())


@token.command(name="revoke", help="Revoke a token by id (see `dockless token list`).")
@click.argument("token_id")
@registry_option
def token_revoke(token_id, registry):
    client_of(registry).admin("DELETE", f"/tokens/{token_id}")
    say(f"revoked {token_id}")


@click.command()
@click.argument("role", type=click.Choice(["read", "write", "admin"]))
@click.argument("resource")
@click.argument("subject")
@registry_option
def grant(role, resource, subject, registry):
    """Grant ROLE on a namespace or repository to user:NAME, team:NAME or * (anyone, read only).

    \b
    Example:
      dockless grant write team team:devs
      dockless grant read team/app user:alice
    """
    client_of(registry).admin("PUT", "/grants", {"resource": resource, "subject": subject, "role": role})
    say(f"granted {role} on {resource} to {subject}")


@click.command()
@click.argument("resource")
@click.argument("subject")
@registry_option
def revoke(resource, subject, registry):
    """Remove SUBJECT's grant on RESOURCE.

    \b
    Example:
      dockless revoke team/app user:alice
    """
    client_of(registry).admin("DELETE", "/grants", params={"resource": resource, "subject": subject})
    say(f"revoked {subject} on {resource}")


@click.command()
@click.option("--repo", "repository", default=None, help="One repository (team/app).")
@click.option("--namespace", default=None, help="A namespace (team).")
@click.option("--actor", default=None, help="A user or robot.")
@click.option("--since", default=None, help="ISO 8601 time [default: 24 hours before --until].")
@click.option("--until", default=None, help="ISO 8601 time [default: now].")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@registry_option
def audit(repository, namespace, actor, since, until, as_json, registry):
    """Who did what: the audit trail of a namespace, a repository or an actor.

    \b
    Example:
      dockless audit --repo team/app --since 2026-11-01T00:00:00Z
      dockless audit --actor deployer --json
    """
    params = {k: v for k, v in {"repository": repository, "namespace": namespace, "actor": actor,
                                "since": since, "until": until}.items() if v}
    for event in client_of(registry).admin("GET", "/audit", params=params)["events"]:
        if as_json:
            say(json.dumps(event, sort_keys=True))
        else:
            where = event["repository"] or "-"
            what = event["reference"] or ""
            say(f"{event['time']}  {event['actor']:<12} {event['action']:<18} {event['outcome']:<8} "
                 f"{where} {what}  from {event['source_ip'] or '-'}".rstrip())
