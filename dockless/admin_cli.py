"""The administration commands: `dockless login`, and the nouns user, robot, team, token, grant,
revoke, repo, quota and cache, each a thin call of the administration API (chalicelib/routes/admin.py) with the
credentials `dockless login` stored."""
import datetime
import json
import re
import sys

import click

from chalicelib.oci.sizes import human
from dockless import logins
from dockless.client import ADMIN, RegistryClient
from dockless.ui import UI


def _client(registry) -> RegistryClient:
    return RegistryClient.logged_in(registry)


def _say(text: str) -> None:
    click.get_current_context().find_object(UI).result(text)


registry_option = click.option("--registry", default=None, help="Registry URL [default: the last one logged in to].")


def register(main: click.Group) -> None:
    main.add_command(login)
    main.add_command(usage)
    for group in (user, robot, team, token, repo):
        main.add_command(group)
    main.add_command(grant)
    main.add_command(revoke)
    main.add_command(audit)
    main.add_command(key)
    main.add_command(gc)
    main.add_command(retention)
    main.add_command(quota)
    main.add_command(cache)


@click.command()
@click.argument("url")
@click.option("-u", "--username", required=True, help="User or robot name.")
@click.option("--password-stdin", is_flag=True, help="Read the access token from standard input.")
@click.option("--password", default=None, help="The access token (prefer --password-stdin).")
@click.pass_obj
def login(ui: UI, url, username, password_stdin, password):
    """Log in to a registry: the access token is exchanged for a refresh token, which is stored.

    \b
    Example:
      echo "$DOCKLESS_TOKEN" | dockless login http://localhost:5000 -u admin --password-stdin
    """
    secret = sys.stdin.readline().strip() if password_stdin else password
    if not secret:
        raise click.UsageError("give the access token with --password-stdin or --password")
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
        _client(registry).admin("POST", "/principals", {"name": name, "kind": kind, "admin": admin})
        _say(f"created {kind} {name}")

    @group.command(name="list", help=f"List {kind}s.")
    @registry_option
    def list_(registry):
        principals = _client(registry).admin("GET", "/principals")["principals"]
        for principal in principals:
            if principal["kind"] == kind:
                extra = " ".join(principal.get("members", [])) if kind == "team" else (
                    "admin" if principal["admin"] else "")
                _say(f"{principal['name']}\t{principal['created_at']}\t{extra}".rstrip())

    @group.command(name="delete", help=f"Delete a {kind}; its credentials are revoked.")
    @click.argument("name")
    @registry_option
    def delete(name, registry):
        _client(registry).admin("DELETE", f"/principals/{name}")
        _say(f"deleted {kind} {name}")

    return group


user = _principal_group("user", "dockless user create alice")
robot = _principal_group("robot", "dockless robot create ci && dockless token create ci --expires-days 90")
team = _principal_group("team", "dockless team create devs && dockless team add devs alice")


def _membership_command(command: str, method: str, done: str, help_text: str) -> None:
    """`dockless team add|remove TEAM MEMBER`."""
    @team.command(name=command, help=help_text)
    @click.argument("team_name")
    @click.argument("member")
    @registry_option
    def change(team_name, member, registry):
        _client(registry).admin(method, f"/teams/{team_name}/members/{member}")
        _say(done.format(member=member, team=team_name))


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
    created = _client(registry).admin(
        "POST", f"/principals/{name}/tokens", {"expires_in_days": expires_days, "description": description})
    _say(created["token"])
    click.get_current_context().find_object(UI).info(f"token {created['id']} for {name}: shown once, store it now")


@token.command(name="list", help="List a principal's tokens (never their secrets).")
@click.argument("name")
@registry_option
def token_list(name, registry):
    for entry in _client(registry).admin("GET", f"/principals/{name}/tokens")["tokens"]:
        state = "revoked" if entry["revoked"] else "active"
        _say(f"{entry['id']}\t{entry['kind']}\t{state}\tcreated {entry['created_at']}\t"
                   f"last used {entry['last_used_at'] or 'never'}\t{entry['description'] or ''}".rstrip())


@token.command(name="revoke", help="Revoke a token by id (see `dockless token list`).")
@click.argument("token_id")
@registry_option
def token_revoke(token_id, registry):
    _client(registry).admin("DELETE", f"/tokens/{token_id}")
    _say(f"revoked {token_id}")


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
    _client(registry).admin("PUT", "/grants", {"resource": resource, "subject": subject, "role": role})
    _say(f"granted {role} on {resource} to {subject}")


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
    _client(registry).admin("DELETE", "/grants", params={"resource": resource, "subject": subject})
    _say(f"revoked {subject} on {resource}")


@click.group(help="Repository and namespace settings.\n\n\b\nExample:\n"
                  "  dockless repo set team/app --immutable-tags 'v*,release-*' --time-machine-days 30\n"
                  "  dockless repo show team/app")
def repo():
    pass


@repo.command(name="set")
@click.argument("name")
@click.option("--verified/--no-verified", default=None,
              help="Serve only manifests a key trusted for the namespace signed.")
@click.option("--auto-sign/--no-auto-sign", default=None, help="The registry signs every tag push with its key.")
@click.option("--immutable-tags", "patterns", default=None, metavar="PATTERNS",
              help="Comma-separated tag patterns (* and ?) that never move or go away; '*' is every tag.")
@click.option("--no-immutable-tags", is_flag=True, help="No immutable tags of this NAME's own.")
@click.option("--time-machine-days", "days", default=None, metavar="N|inherit",
              help="Days a manifest a tag named stays restorable (0 … 3650; inherit: the namespace's, else 14).")
@registry_option
def repo_set(name, verified, auto_sign, patterns, no_immutable_tags, days, registry):
    """Change settings of a namespace (team) or one repository (team/app); a repository gets its
    namespace's settings combined with its own (`dockless repo show`). Each change is audited.

    \b
    Example:
      dockless repo set team --verified --auto-sign
      dockless repo set team/app --immutable-tags 'v*,release-*' --time-machine-days 30
    """
    if patterns is not None and no_immutable_tags:
        raise click.UsageError("give --immutable-tags or --no-immutable-tags, not both")
    changes = {k: v for k, v in {"verified": verified, "auto_sign": auto_sign}.items() if v is not None}
    if patterns is not None or no_immutable_tags:
        changes["immutable_tags"] = [p.strip() for p in (patterns or "").split(",") if p.strip()]
    if days is not None:
        changes["time_machine_days"] = None if days == "inherit" else _whole_number(days)
    if not changes:
        raise click.UsageError("change at least one setting (see --help)")
    _show_settings(_client(registry).admin("PUT", "/settings", {"resource": name, **changes}))


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is a number of days or 'inherit'", param_hint="--time-machine-days")


@repo.command(name="show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="The registry's answer as JSON.")
@registry_option
def repo_show(name, as_json, registry):
    """The settings of a namespace or repository: its own, who changed each last, and (for a
    repository) what applies with its namespace's.

    \b
    Example:
      dockless repo show team/app
    """
    shown = _client(registry).admin("GET", "/settings", params={"resource": name})
    if as_json:
        _say(json.dumps(shown, indent=2, sort_keys=True))
    else:
        _show_settings(shown)


SETTING_LABELS = (("verified", "verified"), ("auto_sign", "auto-sign"), ("immutable_tags", "immutable-tags"),
                  ("time_machine_days", "time-machine-days"), ("retention", "retention"))


def _setting_text(field: str, value) -> str:
    if field == "immutable_tags":
        return ",".join(value) or "none"
    if field == "time_machine_days" and value is None:
        return "inherit"
    if field == "retention":
        return _rules_text(value)
    return {True: "on", False: "off"}.get(value, str(value))


def _show_settings(shown: dict) -> None:
    """One line per setting: what applies, the NAME's own value, and who changed it last."""
    _say(f"{'setting':<18} {'applies':<16} {'own':<16} changed")
    for field, label in SETTING_LABELS:
        change = shown["changes"].get(field)
        changed = f"{change['at']} by {change['by']}" if change else "-"
        _say(f"{label:<18} {_setting_text(field, shown['applied'][field]):<16} "
             f"{_setting_text(field, shown['own'][field]):<16} {changed}")


@repo.command(name="delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask; delete.")
@registry_option
def repo_delete(name, yes, registry):
    """Delete the repository NAME whole, at once (no time machine): its tags, manifests,
    signatures and blob links; refused while a tag of it is immutable. Its history and audit
    trail stay.

    \b
    Example:
      dockless repo delete team/old-app --yes
    """
    if not yes:
        click.confirm(f"Delete {name} with every image and tag in it?", abort=True, err=True)
    gone = _client(registry).admin("DELETE", "/repositories", params={"name": name})
    _say(f"deleted {name}: {gone['tags']} tags, {gone['manifests']} manifests, {gone['links']} blobs "
         f"({human(gone['bytes_freed'])} freed from its namespace)")


@repo.command(name="visibility", help="Make a repository public (anonymous pull) or private.")
@click.argument("name")
@click.argument("visibility", type=click.Choice(["public", "private"]))
@registry_option
def repo_visibility(name, visibility, registry):
    client = _client(registry)
    if visibility == "public":
        client.admin("PUT", "/grants", {"resource": name, "subject": "*", "role": "read"})
    else:
        client.admin("DELETE", "/grants", params={"resource": name, "subject": "*"})
    _say(f"{name} is {visibility}")


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
    for event in _client(registry).admin("GET", "/audit", params=params)["events"]:
        if as_json:
            _say(json.dumps(event, sort_keys=True))
        else:
            where = event["repository"] or "-"
            what = event["reference"] or ""
            _say(f"{event['time']}  {event['actor']:<12} {event['action']:<18} {event['outcome']:<8} "
                 f"{where} {what}  from {event['source_ip'] or '-'}".rstrip())


@click.command()
@click.option("--namespace", default=None, help="One namespace (team) [default: every repository].")
@click.option("--since", default=None, help="ISO 8601 time; pushes, pulls and collections after it [default: 30 days ago].")
@click.option("--json", "as_json", is_flag=True, help="The whole report as one JSON document.")
@registry_option
def usage(namespace, since, as_json, registry):
    """What each repository stores, its pushes and pulls, and an estimated monthly cost; what each
    namespace stores against its quota and what garbage collection freed; the bucket's bytes
    before and after garbage collection.

    A repository's bytes count every blob it links; a namespace's count each distinct blob once
    (what its quota counts). The estimate (chalicelib/lifecycle/prices.py, list prices with their date) is S3
    storage plus the pushes and pulls of the period scaled to 30 days, at the request counts
    bench/cost.py measures.

    \b
    Example:
      dockless usage --namespace team --since 2026-11-01T00:00:00Z
    """
    from chalicelib.lifecycle import prices
    params = {k: v for k, v in {"namespace": namespace, "since": since}.items() if v}
    answer = _client(registry).admin("GET", "/usage", params=params)
    since_at = datetime.datetime.fromisoformat(answer["since"])
    days = (datetime.datetime.fromisoformat(answer["until"]) - since_at).total_seconds() / 86400
    if as_json:
        _say(json.dumps(answer, indent=2, sort_keys=True))
        return
    _say(f"{'repository':<32} {'stored':>10} {'pushes':>7} {'pulls':>7} {'$/month':>9}   "
         f"(prices of {prices.PRICES_AS_OF}, {days:.0f} days)")
    for row in answer["repositories"]:
        _say(f"{row['repository']:<32} {human(row['stored_bytes']):>10} {row['pushes']:>7} "
             f"{row['pulls']:>7} {row['estimated_monthly_usd']:>9.4f}")
    _say(f"\n{'namespace':<32} {'stored':>10} {'quota':>10} {'used':>7} {'gc freed':>10}")
    for row in answer["namespaces"]:
        limit = human(row["quota_bytes"]) if row["quota_bytes"] else "none"
        used = f"{row['used_percent']:.0f} %" if row["used_percent"] is not None else "-"
        _say(f"{row['namespace']:<32} {human(row['stored_bytes']):>10} {limit:>10} {used:>7} "
             f"{human(row['gc_freed_bytes']):>10}")
    bucket = answer["bucket"]
    if bucket["bytes_before"] is None:
        _say(f"\nbucket: no full garbage collection in these {days:.0f} days")
    else:
        _say(f"\nbucket: {human(bucket['bytes_before'])} before garbage collection, {human(bucket['bytes_after'])} "
             f"after ({bucket['gc_runs']} runs, {human(bucket['gc_freed_bytes'])} freed)")


@click.group(help="Storage quotas: the bytes of distinct blobs a namespace may store.\n\n\b\nExample:\n"
                  "  dockless quota set team 10GiB\n  dockless quota show team")
def quota():
    pass


def _say_quota(answer) -> None:
    limit = answer["quota_bytes"]
    used = f" ({answer['stored_bytes'] * 100 / limit:.0f} %)" if limit else ""
    _say(f"{answer['namespace']}: {human(answer['stored_bytes'])} stored of "
         f"{human(limit) + used if limit else 'no quota'}")


@quota.command(name="set")
@click.argument("namespace")
@click.argument("size")
@registry_option
def quota_set(namespace, size, registry):
    """Limit what NAMESPACE stores to SIZE (10GiB, 500MB, 1TiB). Pushes past it are refused; one
    stored beyond it already (a lowered quota) refuses new manifests until images are deleted.

    \b
    Example:
      dockless quota set team 10GiB
    """
    from chalicelib.oci.sizes import parse
    try:
        limit = parse(size)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="SIZE") from None
    if limit <= 0:
        raise click.BadParameter("a quota is at least one byte", param_hint="SIZE")
    _say_quota(_client(registry).admin("PUT", f"/quotas/{namespace}", {"bytes": limit}))


@quota.command(name="remove")
@click.argument("namespace")
@registry_option
def quota_remove(namespace, registry):
    """No quota for NAMESPACE."""
    _say_quota(_client(registry).admin("PUT", f"/quotas/{namespace}", {"bytes": None}))


@quota.command(name="show")
@click.argument("namespace")
@registry_option
def quota_show(namespace, registry):
    """What NAMESPACE stores, and its quota."""
    _say_quota(_client(registry).admin("GET", f"/quotas/{namespace}"))


@click.group(help="Trusted signing keys of a namespace (published at /keys/<namespace>/KEYS).\n\n\b\n"
                  "Example:\n  gpg --armor --export $FPR > release.asc && dockless key add team release.asc")
def key():
    pass


@key.command(name="add", help="Trust the public key(s) in an ASCII-armoured FILE for NAMESPACE.")
@click.argument("namespace")
@click.argument("file", type=click.File("r"))
@registry_option
def key_add(namespace, file, registry):
    added = _client(registry).request("PUT", f"{ADMIN}/keys/{namespace}", (201,),
                                      f"adding keys for {namespace}", data=file.read()).json()
    for entry in added["keys"]:
        _say(f"added {entry['fingerprint']} {' '.join(entry['uids'])}")
    for warning in added["warnings"]:
        click.get_current_context().find_object(UI).info(f"warning: {warning}")


@key.command(name="list", help="The keys trusted for NAMESPACE.")
@click.argument("namespace")
@registry_option
def key_list(namespace, registry):
    listing = _client(registry).request("GET", f"/keys/{namespace}", (200,), f"listing the keys of {namespace}")
    for entry in listing.json()["keys"]:
        _say(f"{entry['fingerprint']}\t{entry['algorithm']}/{entry['length']}\t{entry['capabilities']}\t"
             f"{' '.join(entry['uids'])}")


@key.command(name="remove", help="Stop trusting a key for NAMESPACE.")
@click.argument("namespace")
@click.argument("fingerprint")
@registry_option
def key_remove(namespace, fingerprint, registry):
    _client(registry).admin("DELETE", f"/keys/{namespace}/{fingerprint}")
    _say(f"removed {fingerprint} from {namespace}")


GC_LINES = (("manifests_doomed", "manifests doomed (deleted by a run an hour or more from now)"),
            ("manifests_deleted", "manifests deleted"), ("signatures_deleted", "signatures deleted"),
            ("links_doomed", "blob links doomed"), ("links_deleted", "blob links deleted"),
            ("objects_candidates", "objects found unreferenced"), ("objects_deleted", "objects deleted"))


@click.command()
@click.option("--dry-run", is_flag=True, help="Say what a run would doom and delete; change nothing.")
@click.option("--namespace", default=None, help="Only this namespace's repositories (objects: full runs only).")
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
@registry_option
def gc(dry_run, namespace, as_json, registry):
    """Run garbage collection now (the registry runs it every hour): manifests nothing keeps past
    their time-machine window, blob links no manifest needs, objects nothing links. Each is first
    doomed, and deleted by a later run if still unneeded, so nothing a push relies on is lost.

    \b
    Example:
      dockless gc --dry-run
      dockless gc --namespace team
    """
    from chalicelib.oci.sizes import human as human_bytes
    body = {"dry_run": dry_run, **({"namespace": namespace} if namespace else {})}
    report = _client(registry).request("POST", f"{ADMIN}/gc", (200,), "collecting garbage", json=body,
                                       timeout=900).json()
    if as_json:
        _say(json.dumps(report, indent=2, sort_keys=True))
        return
    _say(f"{'dry run: ' if dry_run else ''}{report['repositories']} repositories, {report['objects_found']} objects")
    for field, label in GC_LINES:
        _say(f"  {report[field]:>8}  {label}")
    _say(f"  {human_bytes(report['bytes_deleted']):>8}  freed")
    for expiry in report["expired"]:
        _say(f"  expired {expiry['repository']}{':' + expiry['tag'] if expiry['tag'] else '@' + expiry['digest']} "
             f"({expiry['reason']})")
    for what in report["would_delete"]:
        _say(f"  would delete {what}")
    _say(f"cost: {report['dynamodb_read_units']} DynamoDB read units, {report['dynamodb_write_units']} write units, "
         f"{report['s3_requests']} S3 requests")


def _rules_text(rules) -> str:
    """keep-last=20,untagged-days=7,exempt=v*|prod, or none."""
    if not rules:
        return "none"
    said = [f"{rule.replace('_', '-')}={value}" for rule, value in rules.items() if rule != "exempt" and value is not None]
    return ",".join(said + ([f"exempt={'|'.join(rules['exempt'])}"] if rules.get("exempt") else [])) or "none"


@click.group(help="Retention rules: which tags and untagged images expire.\n\n\b\nExample:\n"
                  "  dockless retention set team --keep-last 20 --untagged-days 7 --exempt 'v*,prod'\n"
                  "  dockless retention preview team")
def retention():
    pass


@retention.command(name="set")
@click.argument("name")
@click.option("--keep-last", type=click.IntRange(0, 3650), default=None, help="Keep the N tags pushed last.")
@click.option("--keep-days", type=click.IntRange(0, 3650), default=None, help="Keep tags pushed in the last D days.")
@click.option("--untagged-days", type=click.IntRange(0, 3650), default=None,
              help="Expire manifests no tag has named for D days.")
@click.option("--unpulled-days", type=click.IntRange(0, 3650), default=None,
              help="Expire tags whose image was not pulled for D days.")
@click.option("--exempt", default=None, metavar="PATTERNS", help="Tag patterns that never expire (v*,prod).")
@click.option("--clear", is_flag=True, help="No rules of NAME's own (a repository then follows its namespace).")
@registry_option
def retention_set(name, keep_last, keep_days, untagged_days, unpulled_days, exempt, clear, registry):
    """Set the retention rules of a namespace (team) or repository (team/app); they replace the
    rules NAME had. A tag expires when no keep rule keeps it, or it was not pulled for
    --unpulled-days; exempt patterns, immutable tags and signed images never expire. The hourly
    garbage collection applies them (expiries are history and audit events by `retention`).

    \b
    Example:
      dockless retention set team --keep-last 20 --untagged-days 7 --unpulled-days 90 --exempt 'v*,prod'
    """
    rules = {"keep_last": keep_last, "keep_days": keep_days, "untagged_days": untagged_days,
             "unpulled_days": unpulled_days, "exempt": [p.strip() for p in (exempt or "").split(",") if p.strip()]}
    if clear == any(value not in (None, []) for value in rules.values()):  # 0 is a rule too
        raise click.UsageError("give rules, or --clear")
    shown = _client(registry).admin("PUT", "/settings", {"resource": name, "retention": None if clear else rules})
    _say(f"retention of {name}: {_rules_text(shown['own']['retention'])}")


@retention.command(name="preview")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="The registry's answer as JSON.")
@registry_option
def retention_preview(name, as_json, registry):
    """What the rules would expire in NAME now, and the bytes of the blobs only those images need.

    \b
    Example:
      dockless retention preview team
    """
    from chalicelib.oci.sizes import human as human_bytes
    answer = _client(registry).admin("GET", "/retention", params={"resource": name})
    if as_json:
        _say(json.dumps(answer, indent=2, sort_keys=True))
        return
    for expiry in answer["expiring"]:
        what = f"{expiry['repository']}:{expiry['tag']}" if expiry["tag"] else f"{expiry['repository']}@{expiry['digest']}"
        _say(f"{what}  ({expiry['reason']})")
    _say(f"{len(answer['expiring'])} to expire, {human_bytes(answer['bytes'])} of blobs only they need")


@click.group(help="Pull-through cache namespaces: a namespace that keeps copies of another registry's images.\n\n"
                  "\b\nExample:\n  dockless cache add hub --upstream https://registry-1.docker.io\n"
                  "  docker pull localhost:5000/hub/library/alpine:3.20")
def cache():
    pass


DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _seconds(text: str) -> int:
    match = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if not match:
        raise click.BadParameter(f"not a duration: {text!r} (write e.g. 90s, 30m, 6h or 1d)")
    return int(match.group(1)) * DURATION_UNITS[match.group(2)]


def _say_cache(answer) -> None:
    who = answer.get("changed") or {}  # `cache show` says who set it up; `cache list` does not
    _say(f"{answer['namespace']}: a cache of {answer['url']}"
         f" (as {answer['username'] or 'anonymous'}; tags checked again after {answer['freshness_seconds']} s)"
         + (f"; set by {who['by']} at {who['at']}" if who else ""))


@cache.command(name="add")
@click.argument("namespace")
@click.option("--upstream", required=True, help="The registry to cache, e.g. https://registry-1.docker.io.")
@click.option("--username", default=None, help="Sign in to the upstream as this user.")
@click.option("--password-stdin", is_flag=True, help="Read the upstream password from standard input.")
@click.option("--freshness", default="6h", show_default=True,
              help="How long a cached tag is served before the upstream is asked again (90s, 30m, 6h, 1d).")
@registry_option
def cache_add(namespace, upstream, username, password_stdin, freshness, registry):
    """Make NAMESPACE a pull-through cache of UPSTREAM: a pull of NAMESPACE/NAME:TAG fetches NAME:TAG
    from the upstream the first time (and when the tag is due for a check), keeps a verified copy,
    and serves it from then on, also while the upstream is down. Nobody can push to it. The
    password is kept in Secrets Manager and never shown again.

    \b
    Example:
      dockless cache add hub --upstream https://registry-1.docker.io
      echo "$HUB_TOKEN" | dockless cache add hub --upstream https://registry-1.docker.io \\
          --username me --password-stdin
      docker pull localhost:5000/hub/library/alpine:3.20
    """
    document = {"url": upstream, "freshness_seconds": _seconds(freshness)}
    if username is not None or password_stdin:
        password = sys.stdin.readline().rstrip("\n") if password_stdin else None
        if not username or not password:
            raise click.UsageError("an upstream sign-in needs --username and the password on --password-stdin")
        document.update(username=username, password=password)
    _say_cache(_client(registry).admin("PUT", f"/caches/{namespace}", document))


@cache.command(name="list")
@registry_option
def cache_list(registry):
    """Every cache namespace and the registry it caches."""
    for entry in _client(registry).admin("GET", "/caches")["caches"]:
        _say_cache(entry)


@cache.command(name="show")
@click.argument("namespace")
@registry_option
def cache_show(namespace, registry):
    """The registry NAMESPACE caches, who it signs in as, and who set it up."""
    _say_cache(_client(registry).admin("GET", f"/caches/{namespace}"))


@cache.command(name="remove")
@click.argument("namespace")
@registry_option
def cache_remove(namespace, registry):
    """NAMESPACE caches no more: what it holds stays, pushes are allowed again, the password is deleted."""
    _client(registry).admin("DELETE", f"/caches/{namespace}")
    _say(f"{namespace}: no longer a cache")
