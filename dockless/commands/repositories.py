"""Repositories and their settings (`dockless repo`), and the keys a namespace trusts (`dockless key`)."""
import json

import click

from chalicelib.oci.sizes import human
from chalicelib.signing.notation import STORE_MARK, STORES, SUBJECT_PREFIX
from dockless.client.registry import ADMIN
from dockless.ui import UI
from dockless.commands.options import client_of, registry_option, rules_text, say


def register(main: click.Group) -> None:
    main.add_command(repo)
    main.add_command(key)


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
@click.option("--refuse-severity", "severity", default=None, metavar="low|medium|high|critical|none",
              type=click.Choice(["low", "medium", "high", "critical", "none"], case_sensitive=False),
              help="Serve no image with a vulnerability this severe (advisories accepted apart), except to pushers.")
@registry_option
def repo_set(name, verified, auto_sign, patterns, no_immutable_tags, days, severity, registry):
    """Change settings of a namespace (team) or one repository (team/app); a repository gets its
    namespace's settings combined with its own (`dockless repo show`). Each change is audited.

    \b
    Example:
      dockless repo set team --verified --auto-sign
      dockless repo set team/app --immutable-tags 'v*,release-*' --time-machine-days 30
      dockless repo set team --refuse-severity high
    """
    if patterns is not None and no_immutable_tags:
        raise click.UsageError("give --immutable-tags or --no-immutable-tags, not both")
    changes = {k: v for k, v in {"verified": verified, "auto_sign": auto_sign}.items() if v is not None}
    if patterns is not None or no_immutable_tags:
        changes["immutable_tags"] = [p.strip() for p in (patterns or "").split(",") if p.strip()]
    if days is not None:
        changes["time_machine_days"] = None if days == "inherit" else _whole_number(days)
    if severity is not None:
        changes["refuse_severity"] = None if severity.lower() == "none" else severity.lower()
    if not changes:
        raise click.UsageError("change at least one setting (see --help)")
    _show_settings(client_of(registry).admin("PUT", "/settings", {"resource": name, **changes}))


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
    shown = client_of(registry).admin("GET", "/settings", params={"resource": name})
    if as_json:
        say(json.dumps(shown, indent=2, sort_keys=True))
    else:
        _show_settings(shown)


SETTING_LABELS = (("verified", "verified"), ("auto_sign", "auto-sign"), ("immutable_tags", "immutable-tags"),
                  ("time_machine_days", "time-machine-days"), ("retention", "retention"),
                  ("refuse_severity", "refuse-severity"))


def _setting_text(field: str, value) -> str:
    if field == "immutable_tags":
        return ",".join(value) or "none"
    if field == "time_machine_days" and value is None:
        return "inherit"
    if field == "retention":
        return rules_text(value)
    if field == "refuse_severity":
        return (value or "none").lower()
    return {True: "on", False: "off"}.get(value, str(value))


def _show_settings(shown: dict) -> None:
    """One line per setting: what applies, the NAME's own value, and who changed it last."""
    say(f"{'setting':<18} {'applies':<16} {'own':<16} changed")
    for field, label in SETTING_LABELS:
        change = shown["changes"].get(field)
        changed = f"{change['at']} by {change['by']}" if change else "-"
        say(f"{label:<18} {_setting_text(field, shown['applied'][field]):<16} "
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
    gone = client_of(registry).admin("DELETE", "/repositories", params={"name": name})
    say(f"deleted {name}: {gone['tags']} tags, {gone['manifests']} manifests, {gone['links']} blobs "
         f"({human(gone['bytes_freed'])} freed from its namespace)")


@repo.command(name="visibility", help="Make a repository public (anonymous pull) or private.")
@click.argument("name")
@click.argument("visibility", type=click.Choice(["public", "private"]))
@registry_option
def repo_visibility(name, visibility, registry):
    client = client_of(registry)
    if visibility == "public":
        client.admin("PUT", "/grants", {"resource": name, "subject": "*", "role": "read"})
    else:
        client.admin("DELETE", "/grants", params={"resource": name, "subject": "*"})
    say(f"{name} is {visibility}")


@click.group(help="What a namespace trusts to sign its images: OpenPGP keys (published at "
                  "/keys/<namespace>/KEYS), cosign public keys (at /keys/<namespace>/cosign.pub), and for "
                  "keyless cosign signatures a sigstore trusted root with the identities it certifies, "
                  "and root certificates for notation signatures.\n\n\b\n"
                  "Example:\n  gpg --armor --export $FPR > release.asc && dockless key add team release.asc\n"
                  "  dockless key add team cosign.pub\n"
                  "  dockless key add team trusted_root.json\n"
                  "  dockless key add team wabbit-networks-root.crt\n"
                  "  dockless key add team --issuer https://token.actions.githubusercontent.com \\\n"
                  "      --subject 'https://github.com/acme/app/.github/workflows/*@refs/heads/main'")
def key():
    pass


@key.command(name="add", help="Trust the public key(s) in FILE for NAMESPACE: ASCII-armoured OpenPGP keys, "
                              "cosign's PEM public key (cosign.pub), a sigstore trusted root (JSON, as "
                              "`cosign trusted-root create` writes it), or root certificates (PEM) for notation's "
                              "trust store; or, with --issuer and --subject instead "
                              "of FILE, a keyless identity: certificates the trusted root's authority issued for "
                              "that OIDC issuer and subject (an email or URI; * matches any run of characters).")
@click.argument("namespace")
@click.argument("file", type=click.File("r"), required=False)
@click.option("--issuer", default=None, help="The OIDC issuer's URL, exactly as certificates name it.")
@click.option("--subject", default=None, help="The signer's email or URI, or a pattern with *.")
@click.option("--x509-subject", default=None,
              help="Instead of FILE: a notation trusted identity, the signing certificate's subject DN or part of it "
                   "(at least C, ST and O: 'C=US, ST=WA, O=acme'); with none, any certificate the roots issued counts.")
@click.option("--trust-store", type=click.Choice(list(STORES)), default="ca", show_default=True,
              help="With FILE of root certificates: notation's trust store they join. tsa roots turn on timestamp "
                   "verification (each notation.x509 signature must then carry a timestamp they vouch for); "
                   "signingAuthority roots vouch for notary.x509.signingAuthority signatures.")
@click.option("--repository", "repositories", multiple=True, metavar="NAME",
              help="Trust it for this repository of NAMESPACE only (repeat for more; * matches any run: "
                   "'tools/*'); by default for every repository of NAMESPACE.")
@registry_option
def key_add(namespace, file, issuer, subject, x509_subject, trust_store, repositories, registry):
    given = [file is not None, issuer is not None or subject is not None, x509_subject is not None]
    if sum(given) != 1 or (issuer is None) != (subject is None):
        raise click.UsageError("give FILE, or --issuer and --subject, or --x509-subject")
    if trust_store != "ca" and file is None:
        raise click.UsageError(f"--trust-store {trust_store} goes with a FILE of root certificates")
    body = file.read() if file is not None else f"{SUBJECT_PREFIX} {x509_subject}" if x509_subject is not None \
        else json.dumps({"issuer": issuer, "subject": subject})
    if trust_store != "ca":
        body = f"{STORE_MARK} {trust_store}\n{body}"
    added = client_of(registry).request("PUT", f"{ADMIN}/keys/{namespace}", (201,), f"adding keys for {namespace}",
                                        data=body, params={"repositories": ",".join(repositories)} if repositories
                                        else None).json()
    for entry in added["keys"]:
        say(f"added {entry['fingerprint']} {' '.join(entry['uids']) or entry['algorithm']}{_scope(entry)}")
    for warning in added["warnings"]:
        click.get_current_context().find_object(UI).info(f"warning: {warning}")


@key.command(name="list", help="The keys trusted for NAMESPACE.")
@click.argument("namespace")
@registry_option
def key_list(namespace, registry):
    listing = client_of(registry).request("GET", f"/keys/{namespace}", (200,), f"listing the keys of {namespace}")
    for entry in listing.json()["keys"]:
        say(f"{entry['fingerprint']}\t{entry['algorithm']}/{entry['length']}\t{entry['capabilities']}\t"
             f"{' '.join(entry['uids'])}{_scope(entry)}")


def _scope(entry: dict) -> str:
    return f" (for {', '.join(entry['repositories'])} only)" if entry.get("repositories") else ""


@key.command(name="remove", help="Stop trusting a key for NAMESPACE.")
@click.argument("namespace")
@click.argument("fingerprint")
@registry_option
def key_remove(namespace, fingerprint, registry):
    client_of(registry).admin("DELETE", f"/keys/{namespace}/{fingerprint}")
    say(f"removed {fingerprint} from {namespace}")
