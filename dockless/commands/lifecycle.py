"""What storage holds and for how long: `dockless usage`, `quota`, `gc` and `retention`."""
import datetime
import json

import click

from chalicelib.oci.sizes import human
from dockless.client.registry import ADMIN
from dockless.commands.options import client_of, registry_option, rules_text, say


def register(main: click.Group) -> None:
    main.add_command(usage)
    main.add_command(gc)
    main.add_command(retention)
    main.add_command(quota)


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
    bench/cost.py measures (every item a request bills: CloudFront and its function, Lambda@Edge,
    API Gateway, Lambda on arm64, logs, DynamoDB, S3); last, what the registry bills per month
    whatever its traffic (metrics, alarms, secrets, KMS).

    \b
    Example:
      dockless usage --namespace team --since 2026-11-01T00:00:00Z
    """
    from chalicelib.lifecycle import prices
    from chalicelib.policy import vulnerabilities
    params = {k: v for k, v in {"namespace": namespace, "since": since}.items() if v}
    answer = client_of(registry).admin("GET", "/usage", params=params)
    since_at = datetime.datetime.fromisoformat(answer["since"])
    days = (datetime.datetime.fromisoformat(answer["until"]) - since_at).total_seconds() / 86400
    if as_json:
        say(json.dumps(answer, indent=2, sort_keys=True))
        return
    say(f"{'repository':<32} {'stored':>10} {'pushes':>7} {'pulls':>7} {'$/month':>9}   "
         f"(prices of {prices.PRICES_AS_OF}, {days:.0f} days)")
    for row in answer["repositories"]:
        say(f"{row['repository']:<32} {human(row['stored_bytes']):>10} {row['pushes']:>7} "
             f"{row['pulls']:>7} {row['estimated_monthly_usd']:>9.4f}")
    say(f"\n{'namespace':<32} {'stored':>10} {'quota':>10} {'used':>7} {'gc freed':>10}")
    for row in answer["namespaces"]:
        limit = human(row["quota_bytes"]) if row["quota_bytes"] else "none"
        used = f"{row['used_percent']:.0f} %" if row["used_percent"] is not None else "-"
        say(f"{row['namespace']:<32} {human(row['stored_bytes']):>10} {limit:>10} {used:>7} "
             f"{human(row['gc_freed_bytes']):>10}")
    if answer.get("tags"):
        say(f"\n{'tag':<48} vulnerabilities")
        for row in answer["tags"]:
            say(f"{row['repository'] + ':' + row['tag']:<48} {vulnerabilities.describe(row['status'], row['summary'], row.get('complete', True))}")
    bucket = answer["bucket"]
    if bucket["bytes_before"] is None:
        say(f"\nbucket: no full garbage collection in these {days:.0f} days")
    else:
        say(f"\nbucket: {human(bucket['bytes_before'])} before garbage collection, {human(bucket['bytes_after'])} "
             f"after ({bucket['gc_runs']} runs, {human(bucket['gc_freed_bytes'])} freed)")
    fixed = answer.get("fixed_monthly_usd", {})
    say(f"\nthe registry, whatever its traffic: ${sum(fixed.values()):.2f}/month")
    for item, cost in fixed.items():
        say(f"  {item:<50} {cost:>9.2f}")


@click.group(help="Storage quotas: the bytes of distinct blobs a namespace may store.\n\n\b\nExample:\n"
                  "  dockless quota set team 10GiB\n  dockless quota show team")
def quota():
    pass


def _say_quota(answer) -> None:
    limit = answer["quota_bytes"]
    used = f" ({answer['stored_bytes'] * 100 / limit:.0f} %)" if limit else ""
    say(f"{answer['namespace']}: {human(answer['stored_bytes'])} stored of "
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
    _say_quota(client_of(registry).admin("PUT", f"/quotas/{namespace}", {"bytes": limit}))


@quota.command(name="remove")
@click.argument("namespace")
@registry_option
def quota_remove(namespace, registry):
    """No quota for NAMESPACE."""
    _say_quota(client_of(registry).admin("PUT", f"/quotas/{namespace}", {"bytes": None}))


@quota.command(name="show")
@click.argument("namespace")
@registry_option
def quota_show(namespace, registry):
    """What NAMESPACE stores, and its quota."""
    _say_quota(client_of(registry).admin("GET", f"/quotas/{namespace}"))


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
    report = client_of(registry).request("POST", f"{ADMIN}/gc", (200,), "collecting garbage", json=body,
                                       timeout=900).json()
    if as_json:
        say(json.dumps(report, indent=2, sort_keys=True))
        return
    say(f"{'dry run: ' if dry_run else ''}{report['repositories']} repositories, {report['objects_found']} objects")
    for field, label in GC_LINES:
        say(f"  {report[field]:>8}  {label}")
    say(f"  {human_bytes(report['bytes_deleted']):>8}  freed")
    for expiry in report["expired"]:
        say(f"  expired {expiry['repository']}{':' + expiry['tag'] if expiry['tag'] else '@' + expiry['digest']} "
             f"({expiry['reason']})")
    for what in report["would_delete"]:
        say(f"  would delete {what}")
    say(f"cost: {report['dynamodb_read_units']} DynamoDB read units, {report['dynamodb_write_units']} write units, "
         f"{report['s3_requests']} S3 requests")


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
    shown = client_of(registry).admin("PUT", "/settings", {"resource": name, "retention": None if clear else rules})
    say(f"retention of {name}: {rules_text(shown['own']['retention'])}")


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
    answer = client_of(registry).admin("GET", "/retention", params={"resource": name})
    if as_json:
        say(json.dumps(answer, indent=2, sort_keys=True))
        return
    for expiry in answer["expiring"]:
        what = f"{expiry['repository']}:{expiry['tag']}" if expiry["tag"] else f"{expiry['repository']}@{expiry['digest']}"
        say(f"{what}  ({expiry['reason']})")
    say(f"{len(answer['expiring'])} to expire, {human_bytes(answer['bytes'])} of blobs only they need")
