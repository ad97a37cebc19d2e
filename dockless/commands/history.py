"""`dockless history`, `dockless restore` and `dockless diff`: what a tag named when, who moved
it, what changed between two images, and putting a tag back. They use the registry `dockless
login` stored (--registry picks another); the API is chalicelib/routes/history.py."""
import json
import tempfile
from pathlib import Path

import click

from dockless.commands.options import registry_option
from dockless.client.registry import RegistryClient
from dockless.ui import UI


def register(main: click.Group) -> None:
    for command in (history, restore, diff):
        main.add_command(command)


def _name_and_tag(text: str):
    name, colon, tag = text.rpartition(":")
    return (name, tag) if colon and "/" not in tag else (text, None)


@click.command()
@click.argument("name")
@click.option("-n", "--limit", type=click.IntRange(1, 10000), default=50, show_default=True,
              help="Events to show, newest first.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event.")
@registry_option
@click.pass_obj
def history(ui: UI, name, limit, as_json, registry):
    """What each tag of NAME (or NAME:TAG alone) named, when, who moved it and from where: pushes,
    moves, deletes, restores and expiries, newest first.

    \b
    Example:
      dockless history team/app:prod
      dockless history team/app --json -n 500
    """
    repository, tag = _name_and_tag(name)
    client = RegistryClient.logged_in(registry)
    shown, last = 0, None
    while shown < limit:
        params = {"n": min(limit - shown, 1000), **({"tag": tag} if tag else {}), **({"last": last} if last else {})}
        answer = client.request("GET", f"/dockless/v1/{repository}/history", (200,),
                                f"reading the history of {name}", params=params)
        events = answer.json()["history"]
        for event in events:
            ui.result(json.dumps(event, sort_keys=True) if as_json else _event_line(event))
        shown += len(events)
        if not events or "Link" not in answer.headers:
            break
        last = events[-1]["at"]
    if not shown and not as_json:
        ui.info(f"no history for {name}")


def _short(digest) -> str:
    return digest.removeprefix("sha256:")[:12] if digest else "-"


def _event_line(event: dict) -> str:
    return (f"{event['time']}  {event['tag']:<16} {event['action']:<8} {_short(event['from']):<12} -> "
            f"{_short(event['to']):<12} {event['actor']:<12} from {event['source_ip'] or '-'}")


@click.command()
@click.argument("name_tag", metavar="NAME:TAG")
@click.argument("digest", required=False)
@click.option("--at", "when", default=None, metavar="TIME",
              help="Restore what the tag named at this ISO 8601 time (e.g. 2026-11-03T09:00:00Z).")
@registry_option
@click.pass_obj
def restore(ui: UI, name_tag, digest, when, registry):
    """Point NAME:TAG back at DIGEST, or at what it named at --at TIME: a manifest the repository
    has, or deleted within its time-machine window. Needs push; refused for an immutable tag, and in
    verified mode unless a trusted key signed the digest.

    \b
    Example:
      dockless restore team/app:prod --at 2026-11-03T09:00:00Z
      dockless restore team/app:prod sha256:4f1c…
    """
    repository, tag = _name_and_tag(name_tag)
    if tag is None or (digest is None) == (when is None):
        raise click.UsageError("give NAME:TAG and either DIGEST or --at TIME")
    body = {"digest": digest} if digest else {"at": when}
    answer = RegistryClient.logged_in(registry).request(
        "POST", f"/dockless/v1/{repository}/tags/{tag}/restore", (201,), f"restoring {name_tag}", json=body)
    ui.result(f"{name_tag} -> {answer.headers['Docker-Content-Digest']}")


@click.command()
@click.argument("before", metavar="REF_A")
@click.argument("after", metavar="REF_B")
@click.option("--json", "as_json", is_flag=True, help="Everything as one JSON document.")
@click.option("--no-files", is_flag=True, help="Config and layers only: read no layer bytes.")
@registry_option
@click.pass_obj
def diff(ui: UI, before, after, as_json, no_files, registry):
    """What changed from REF_A to REF_B, per platform: config (entrypoint, cmd, env, labels, ports,
    user, workdir, created, history), layers added, removed and shared, and files added, removed
    and changed (type, size, mode, owner, link, content), whiteouts applied as a runtime does.

    A REF is NAME[:TAG|@DIGEST] of the registry logged in to (or host[:port]/NAME… of another one
    logged in to), docker:IMAGE (the local docker daemon) or oci:DIR[:TAG] (an OCI layout). Layers
    stream from the bucket; none is held in memory.

    \b
    Example:
      dockless diff team/app:prod team/app:candidate
      dockless diff team/app:prod docker:team/app:dev     # what will this push change
    """
    from dockless.images.diff import compare, open_side, render
    clients = {}

    def client(url):
        url = url or registry
        if url not in clients:
            clients[url] = RegistryClient.logged_in(url)
        return clients[url]

    with tempfile.TemporaryDirectory(prefix="dockless-diff-") as workdir:
        sides = [open_side(text, client, Path(workdir)) for text in (before, after)]
        answer = compare(*sides, files=not no_files)
    if as_json:
        ui.result(json.dumps(answer, indent=2, sort_keys=True))
    else:
        for line in render(answer):
            ui.result(line)
