"""Mirror rules kept in the registry (chalicelib/pullthrough/mirror_rules.py): added, replaced, listed and
removed by admins, each change audited; a bad rule is refused and changes nothing. Applying them is
`dockless mirror sync`'s, tested in tests/e2e/test_mirror.py."""
import json

import pytest

from chalicelib.metadata.models import AuditEvent
from tests.fixtures import error_code

JSON = {"Content-Type": "application/json"}
RULE = {"source": "registry-1.docker.io/library/alpine", "destination": "localhost:5000/base/alpine", "tags": "3.*"}


def put_rule(client, name, document):
    return client.put(f"/dockless/admin/v1/mirror-rules/{name}", body=json.dumps(document), headers=JSON)


def test_rules_are_added_replaced_listed_and_removed_with_an_audit_event_each(client, registry):
    added = put_rule(client, "alpine", RULE)
    assert added.status_code == 200, added.body
    assert added.json_body == {"name": "alpine", **RULE, "with_signatures": False, "with_referrers": False,
                               "platform": None, "created_by": "admin", "created_at": registry.clock().isoformat()}
    assert put_rule(client, "app", {"source": "localhost:5001/team/app:1", "destination": "localhost:5000/team/app:1",
                                    "with_signatures": True}).status_code == 200
    assert put_rule(client, "alpine", {**RULE, "tags": "*"}).status_code == 200  # replaced
    listed = client.get("/dockless/admin/v1/mirror-rules").json_body["rules"]
    assert [(r["name"], r["tags"], r["with_signatures"]) for r in listed] == [("alpine", "*", False),
                                                                           ("app", None, True)]
    assert client.delete("/dockless/admin/v1/mirror-rules/alpine").status_code == 204
    assert [r["name"] for r in client.get("/dockless/admin/v1/mirror-rules").json_body["rules"]] == ["app"]
    gone = client.delete("/dockless/admin/v1/mirror-rules/alpine")
    assert gone.status_code == 404 and error_code(gone) == "NOT_FOUND"
    actions = sorted(e.action for e in AuditEvent.scan() if e.action.startswith("mirror.rule"))
    assert actions == ["mirror.rule.delete", "mirror.rule.set", "mirror.rule.set", "mirror.rule.set"]


@pytest.mark.parametrize("name, document, message", [
    ("Bad Name", RULE, "'Bad Name' is not a mirror rule's name"),
    ("ok", {**RULE, "source": "alpine"}, "source: 'alpine' is not host[:port]/name[:tag|@digest]"),
    ("ok", {**RULE, "destination": 5}, "destination is host[:port]/name[:tag|@digest]"),
    ("ok", {**RULE, "tags": "v/1"}, "tags is a tag pattern"),
    ("ok", {**RULE, "source": "docker.io/library/alpine@sha256:" + "a" * 64}, "a rule with tags names repositories"),
    ("ok", {**RULE, "with_signatures": "yes"}, "with_signatures is true or false"),
    ("ok", {**RULE, "password": "x"}, "a rule has source, destination"),
    ("ok", {**RULE, "platform": "linux"}, "platform is os/arch[/variant]"),
])
def test_a_bad_rule_is_refused_and_changes_nothing(client, state, name, document, message):
    before = state()
    response = put_rule(client, name, document)
    assert response.status_code == 400 and error_code(response) == "INVALID", response.body
    assert message in json.loads(response.body)["errors"][0]["message"]
    assert state() == before
