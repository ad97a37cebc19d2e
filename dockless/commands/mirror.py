"""`dockless mirror`: copy images between registries now (`dockless mirror SRC DEST`), keep mirror
rules in the registry (`dockless mirror rule add|list|remove`), and apply them from a runner
(`dockless mirror sync`). The copying is dockless/images/mirror.py's."""
from pathlib import Path
from typing import Optional

import click

from chalicelib.oci import spec
from chalicelib.oci.reference import Reference
from dockless.commands.options import registry_option
from dockless.client.registry import ClientError, RegistryClient
from dockless.ui import UI, Exit


def register(main: click.Group) -> None:
    main.add_command(mirror)


class CopyByDefault(click.Group):
    """`dockless mirror SRC DEST …` is the group's hidden `copy` command; `rule` and `sync` are
    subcommands."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["copy", *args]
        return super().parse_args(ctx, args)


@click.group(cls=CopyByDefault)
def mirror():
    """Copy images between registries, now or by rules kept in the registry.

    \b
    Example:
      dockless mirror registry-1.docker.io/library/alpine:3.20 localhost:5000/base/alpine:3.20
      dockless mirror localhost:5001/team/app localhost:5000/team/app --tags 'v*' --with-signatures
      dockless mirror rule add alpine registry-1.docker.io/library/alpine localhost:5000/base/alpine --tags '3.*'
      dockless mirror sync

    A copy's options: `dockless mirror copy --help`.
    """


def _spool(path: Optional[str]) -> Path:
    return Path(path) if path else Path.home() / ".cache" / "dockless" / "mirror"


spool_option = click.option("--spool", type=click.Path(file_okay=False), default=None,
                             help="Where downloaded layers wait for their upload; a run killed half-way resumes "
                                  "from it [default: ~/.cache/dockless/mirror].")


def copy_images(ui: UI, source: str, destination: str, pattern: Optional[str], spool: Path, dry_run: bool,
                with_signatures: bool, with_referrers: bool, source_client: RegistryClient,
                destination_client: RegistryClient, platform: Optional[str] = None):
    """Copy SOURCE's image (or its tags matching `pattern`, "*" for all) to DESTINATION, printing a
    line per image; returns the run's report and how many images it copied."""
    from dockless.images.mirror import Mirror

    src, dest = Reference.parse(source), Reference.parse(destination)
    if pattern and (src.digest or dest.digest):
        raise click.UsageError("tags are copied between repositories: give SOURCE and DESTINATION without a digest")
    copier = Mirror(source_client, destination_client, spool, ui, dry_run=dry_run, with_signatures=with_signatures,
                    with_referrers=with_referrers, platform=platform)
    # One image goes to DESTINATION's tag or digest if it names one, else to SOURCE's; tags keep theirs.
    named = "@" in destination or ":" in destination.rsplit("/", 1)[-1]
    one = dest.reference if named else src.reference
    references = copier.tags(src, pattern)
    for reference in references:
        said = len(copier.report.lines)
        copier.image(src.name, reference, dest.name, reference if pattern else one)
        for line in copier.report.lines[said:]:
            ui.result(line)
    return copier.report, len(references)


def summary(report, images: int, where: str, dry_run: bool, with_signatures: bool) -> str:
    from chalicelib.oci import sizes
    if dry_run:
        return f"dry run: {images} images; nothing copied"
    return (f"mirrored {images} images to {where}: {report.copied_blobs} blobs copied "
            f"({sizes.human(report.copied_bytes)}), {report.skipped_blobs} already there"
            + (f", {sizes.human(report.resumed_bytes)} resumed" if report.resumed_bytes else "")
            + (f", {report.signatures} signatures" if with_signatures else ""))


def what_to_copy(function):
    """SOURCE DESTINATION and which tags, signatures and referrers: a copy's and a rule's."""
    for option in reversed([
            click.argument("source"), click.argument("destination"),
            click.option("--all-tags", is_flag=True, help="Every tag of SOURCE's repository."),
            click.option("--tags", "pattern", default=None, help="The tags matching this pattern (* and ?), e.g. 'v*'."),
            click.option("--with-signatures", is_flag=True,
                         help="Each image's signatures too (the containers/image extension)."),
            click.option("--with-referrers", is_flag=True,
                         help="The artifacts that refer to each image too (SBOMs, attestations)."),
            click.option("--platforms", default="all", show_default=True,
                         help="all: an index with every platform (digests unchanged); os/arch[/variant]: only "
                              "that platform's image, which the destination's tag then names.")]):
        function = option(function)
    return function


def _platform(platforms: str) -> Optional[str]:
    if platforms == "all":
        return None
    if not spec.PLATFORM_RE.fullmatch(platforms):
        raise click.BadParameter("all, or one os/arch[/variant] such as linux/amd64", param_hint="--platforms")
    return platforms


def _pattern(all_tags: bool, pattern: Optional[str]) -> Optional[str]:
    if all_tags and pattern:
        raise click.UsageError("give --all-tags or --tags, not both")
    return "*" if all_tags else pattern


@mirror.command(name="copy", hidden=True)
@what_to_copy
@click.option("--dry-run", is_flag=True, help="List what would be copied; copy nothing.")
@click.option("--src-username", envvar="DOCKLESS_SRC_USERNAME", default=None,
              help="User at the source [env: DOCKLESS_SRC_USERNAME].")
@click.option("--src-password", envvar="DOCKLESS_SRC_PASSWORD", default=None,
              help="Password or token at the source [env: DOCKLESS_SRC_PASSWORD].")
@click.option("-u", "--username", envvar="DOCKLESS_USERNAME", default=None,
              help="User at the destination [env: DOCKLESS_USERNAME].")
@click.option("--password", envvar="DOCKLESS_PASSWORD", default=None,
              help="Access token at the destination [env: DOCKLESS_PASSWORD].")
@spool_option
@click.pass_obj
def copy(ui: UI, source, destination, all_tags, pattern, with_signatures, with_referrers, platforms, dry_run,
         src_username, src_password, username, password, spool):
    """Copy images from SOURCE to DESTINATION (host[:port]/name[:tag|@digest], any two registries;
    localhost and 127.0.0.1 are spoken to over plain HTTP), every platform of an index, layers the
    destination has skipped, layer bytes straight to the bucket when DESTINATION is a dockless
    registry. Run it again after an interruption: it resumes. Credentials: -u and --password (or
    DOCKLESS_USERNAME and DOCKLESS_PASSWORD) for DESTINATION, and for SOURCE too when it is the same
    registry; --src-username and --src-password for another SOURCE; else what `dockless login`
    stored for each registry; else none.

    \b
    Example:
      dockless mirror registry-1.docker.io/library/alpine:3.20 localhost:5000/base/alpine:3.20
      dockless mirror registry.example.com/team/app localhost:5000/team/app --all-tags --dry-run
    """
    src, dest = Reference.parse(source), Reference.parse(destination)
    if src_username is None and src_password is None and src.host == dest.host:
        src_username, src_password = username, password  # one registry, one set of credentials
    report, images = copy_images(ui, source, destination, _pattern(all_tags, pattern), _spool(spool), dry_run,
                                 with_signatures, with_referrers, RegistryClient.of(src.base_url, src_username, src_password),
                                 RegistryClient.of(dest.base_url, username, password), _platform(platforms))
    ui.result(summary(report, images, f"{dest.host}/{dest.name}", dry_run, with_signatures))


@mirror.group()
def rule():
    """Mirror rules kept in the registry, applied by `dockless mirror sync` (admins).

    \b
    Example:
      dockless mirror rule add alpine registry-1.docker.io/library/alpine localhost:5000/base/alpine --tags '3.*'
      dockless mirror rule list
      dockless mirror rule remove alpine
    """


@rule.command(name="add")
@click.argument("name")
@what_to_copy
@registry_option
@click.pass_obj
def rule_add(ui: UI, name, source, destination, all_tags, pattern, with_signatures, with_referrers, platforms,
             registry):
    """Add (or replace) the rule NAME: keep SOURCE copied to DESTINATION. The registry keeps no
    credentials for it: the runner of `dockless mirror sync` brings its own."""
    document = {"source": source, "destination": destination, "with_signatures": with_signatures,
                "with_referrers": with_referrers, "platform": _platform(platforms)}
    if _pattern(all_tags, pattern):
        document["tags"] = _pattern(all_tags, pattern)
    ui.result(_rule_line(RegistryClient.logged_in(registry).admin("PUT", f"/mirror-rules/{name}", document)))


@rule.command(name="list")
@registry_option
@click.pass_obj
def rule_list(ui: UI, registry):
    """The mirror rules, one per line."""
    for found in RegistryClient.logged_in(registry).admin("GET", "/mirror-rules")["rules"]:
        ui.result(_rule_line(found))


@rule.command(name="remove")
@click.argument("name")
@registry_option
@click.pass_obj
def rule_remove(ui: UI, name, registry):
    """Remove the rule NAME."""
    RegistryClient.logged_in(registry).admin("DELETE", f"/mirror-rules/{name}")
    ui.result(f"removed mirror rule {name}")


def _rule_line(found: dict) -> str:
    extras = [f"tags {found['tags']}"] if found["tags"] else []
    extras += [f"platform {found['platform']}"] if found.get("platform") else []
    extras += [flag.replace("_", " ") for flag in ("with_signatures", "with_referrers") if found[flag]]
    return f"{found['name']}: {found['source']} -> {found['destination']}" + (f" ({', '.join(extras)})" if extras
                                                                               else "")


@mirror.command()
@click.option("--rule", "only", default=None, help="Apply this rule only.")
@click.option("--dry-run", is_flag=True, help="List what each rule would copy; copy nothing.")
@spool_option
@registry_option
@click.pass_obj
def sync(ui: UI, only, dry_run, spool, registry):
    """Apply the registry's mirror rules, reporting what each copied. Meant for a scheduled CI job;
    credentials for each registry come from `dockless login` on the runner. Exits 1 if a rule failed
    (the others are still applied).

    \b
    Example:
      dockless login https://registry.example.com -u mirror-bot --password-stdin < token
      dockless mirror sync
    """
    found = RegistryClient.logged_in(registry).admin("GET", "/mirror-rules")["rules"]
    chosen = [r for r in found if only is None or r["name"] == only]
    if only and not chosen:
        raise ClientError(f"no mirror rule {only!r}")
    failed = []
    for each in chosen:
        try:
            src, dest = Reference.parse(each["source"]), Reference.parse(each["destination"])
            report, images = copy_images(ui, each["source"], each["destination"], each["tags"], _spool(spool), dry_run,
                                         each["with_signatures"], each["with_referrers"], RegistryClient.of(src.base_url),
                                         RegistryClient.of(dest.base_url), each.get("platform"))
        except (ClientError, ValueError, OSError) as error:
            ui.error(f"rule {each['name']}: {error}")
            failed.append(each["name"])
            continue
        ui.result(f"rule {each['name']}: " + summary(report, images, f"{dest.host}/{dest.name}", dry_run,
                                                      each["with_signatures"]))
    if failed:
        raise SystemExit(Exit.FAILED)
