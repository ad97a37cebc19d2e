"""A namespace's webhooks: `dockless webhook add|list|remove|rotate|deliveries|redeliver`, each a
call of the administration API (chalicelib/routes/admin.py, chalicelib/events/webhooks.py)."""
import json

import click

from dockless.commands.options import client_of, registry_option, say

KINDS = ("delete", "gc", "push", "quota", "retention", "scan", "signature", "tag")


def register(main: click.Group) -> None:
    main.add_command(webhook)


@click.group(help="Webhooks: a namespace's events POSTed to a URL, signed per Standard Webhooks.\n\n"
                  "\b\nExample:\n  dockless webhook add team https://ci.example.com/hooks/registry --events push,tag\n"
                  "  dockless webhook deliveries team wh_0123456789abcdef")
def webhook():
    pass


@webhook.command(name="add", help="Send NAMESPACE's events to URL; prints the signing secret (whsec_…) once.")
@click.argument("namespace")
@click.argument("url")
@click.option("--events", default=None, metavar="KIND,...",
              help=f"Only these kinds ({', '.join(KINDS)}); default: all.")
@registry_option
def add(namespace, url, events, registry):
    body = {"url": url}
    if events:
        body["events"] = [kind.strip() for kind in events.split(",") if kind.strip()]
    answer = client_of(registry).admin("POST", f"/webhooks/{namespace}", body)
    say(f"webhook {answer['webhook']['id']} sends {','.join(answer['webhook']['events'])} events of {namespace} "
        f"to {answer['webhook']['url']}")
    say(f"signing secret (shown once): {answer['secret']}")


@webhook.command(name="list", help="NAMESPACE's webhooks.")
@click.argument("namespace")
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
@registry_option
def list_(namespace, as_json, registry):
    found = client_of(registry).admin("GET", f"/webhooks/{namespace}")["webhooks"]
    if as_json:
        say(json.dumps(found, indent=2))
        return
    for hook in found:
        say(f"{hook['id']}  {hook['url']}  {','.join(hook['events'])}  (by {hook['created_by'] or '-'}, "
            f"{hook['created_at'][:19]})")


@webhook.command(name="remove", help="Stop sending NAMESPACE's events to webhook ID.")
@click.argument("namespace")
@click.argument("webhook_id")
@registry_option
def remove(namespace, webhook_id, registry):
    client_of(registry).admin("DELETE", f"/webhooks/{namespace}/{webhook_id}")
    say(f"removed webhook {webhook_id}")


@webhook.command(name="rotate", help="A new signing secret (printed once); the old one signs too for a day.")
@click.argument("namespace")
@click.argument("webhook_id")
@registry_option
def rotate(namespace, webhook_id, registry):
    secret = client_of(registry).admin("POST", f"/webhooks/{namespace}/{webhook_id}/rotate")["secret"]
    say(f"new signing secret (shown once; the old one signs too for 24 hours): {secret}")


@webhook.command(name="deliveries", help="Webhook ID's delivery log, newest first.")
@click.argument("namespace")
@click.argument("webhook_id")
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
@registry_option
def deliveries(namespace, webhook_id, as_json, registry):
    found = client_of(registry).admin("GET", f"/webhooks/{namespace}/{webhook_id}/deliveries")["deliveries"]
    if as_json:
        say(json.dumps(found, indent=2))
        return
    for entry in found:
        answered = entry["last_status"] if entry["last_status"] is not None else "-"
        say(f"{entry['id']}  {entry['status']:<9}  {answered}  attempts {entry['attempts']}  {entry['type']}  "
            f"{entry['subject'] or ''}" + (f"  ({entry['last_error']})" if entry["last_error"] else ""))


@webhook.command(name="redeliver", help="Send delivery DELIVERY_ID again (the same webhook-id and body).")
@click.argument("namespace")
@click.argument("webhook_id")
@click.argument("delivery_id")
@registry_option
def redeliver(namespace, webhook_id, delivery_id, registry):
    client_of(registry).admin("POST", f"/webhooks/{namespace}/{webhook_id}/deliveries/{delivery_id}/redeliver")
    say(f"queued {delivery_id} again")
