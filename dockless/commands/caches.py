"""Pull-through cache namespaces: `dockless cache add|list|show|remove`."""
import re
import sys

import click

from dockless.commands.options import client_of, registry_option, say


def register(main: click.Group) -> None:
    main.add_command(cache)


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
    say(f"{answer['namespace']}: a cache of {answer['url']}"
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
    _say_cache(client_of(registry).admin("PUT", f"/caches/{namespace}", document))


@cache.command(name="list")
@registry_option
def cache_list(registry):
    """Every cache namespace and the registry it caches."""
    for entry in client_of(registry).admin("GET", "/caches")["caches"]:
        _say_cache(entry)


@cache.command(name="show")
@click.argument("namespace")
@registry_option
def cache_show(namespace, registry):
    """The registry NAMESPACE caches, who it signs in as, and who set it up."""
    _say_cache(client_of(registry).admin("GET", f"/caches/{namespace}"))


@cache.command(name="remove")
@click.argument("namespace")
@registry_option
def cache_remove(namespace, registry):
    """NAMESPACE caches no more: what it holds stays, pushes are allowed again, the password is deleted."""
    client_of(registry).admin("DELETE", f"/caches/{namespace}")
    say(f"{namespace}: no longer a cache")
