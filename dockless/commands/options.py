"""What the commands that call a registry share: --registry, the client of the stored login, the
result line, how retention rules read."""

import click

from dockless.client.registry import RegistryClient
from dockless.ui import UI


def client_of(registry) -> RegistryClient:
    return RegistryClient.logged_in(registry)


def say(text: str) -> None:
    click.get_current_context().find_object(UI).result(text)


registry_option = click.option("--registry", default=None, help="Registry URL [default: the last one logged in to].")


def rules_text(rules) -> str:
    """keep-last=20,untagged-days=7,exempt=v*|prod, or none."""
    if not rules:
        return "none"
    said = [f"{rule.replace('_', '-')}={value}" for rule, value in rules.items() if rule != "exempt" and value is not None]
    return ",".join(said + ([f"exempt={'|'.join(rules['exempt'])}"] if rules.get("exempt") else [])) or "none"
