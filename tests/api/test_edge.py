"""The edge's claim in pull tokens (chalicelib/access/edge.py): what a token lists, when it lists
nothing, what leaves it, and the decision the edge makes from it (the same cases run through the
deployed gate's JavaScript in tests/infra/test_edge.py)."""
import base64
import dataclasses
import json

import pytest
from pynamodb.exceptions import UpdateError

from chalicelib.access import edge
from chalicelib.backend import use_backend
from chalicelib.metadata.models import BlobLink, Repository
from chalicelib.metadata import keys
from tests.api.conftest import JSON
from tests.api.test_auth import claims_of, get_token
from tests.fixtures import digest_of

SECRET = b"edge-secret-for-tests"


@pytest.fixture
def edged(registry):
    """The registry with an edge secret, as a deployment has one."""
    backend = dataclasses.replace(registry, settings=dataclasses.replace(registry.settings, edge_secret=SECRET))
    use_backend(backend)
    yield backend
    use_backend(registry)


@pytest.fixture
def reader(client, edged):
    assert client.post("/dockless/admin/v1/principals", body=json.dumps({"name": "rea"}), headers=JSON).status_code == 201
    secret = client.post("/dockless/admin/v1/principals/rea/tokens", body="{}", headers=JSON).json_body["token"]
    for repo in ("team/app", "team/tool"):
        client.put("/dockless/admin/v1/grants", body=json.dumps({"resource": repo, "subject": "user:rea", "role": "read"}),
                   headers=JSON)
    return secret


def token(anonymous, secret, *scopes):
    response = get_token(anonymous, "rea", secret, scopes)
    assert response.status_code == 200, response.body
    return response.json_body["token"]


def listed(token_text):
    blobs = claims_of(token_text)["edge"]["blobs"]
    return {blobs[i:i + edge.ENTRY_HEX] for i in range(0, len(blobs), edge.ENTRY_HEX)}


def prefixes(manifest_body):
    """The entries of an image pushed through the API (its blobs at their content-addressed keys)."""
    document = json.loads(manifest_body)
    return {d["digest"][7:] for d in [document["config"], *document["layers"]]}


def test_a_pull_token_lists_the_blobs_of_the_image_pushed_last(anonymous, push, reader):
    first, _ = push.image("team/app", "v1", layers=(b"base", b"one"))
    second, _ = push.image("team/app", "v2", layers=(b"base", b"two"))
    issued = token(anonymous, reader, "repository:team/app:pull")
    claims = claims_of(issued)
    assert claims["edge"]["repo"] == "team/app" and claims["edge"]["exp"] == claims["exp"]
    assert listed(issued) == prefixes(second) != prefixes(first)
    for layer in json.loads(second)["layers"]:
        assert edge.admits(SECRET, f"Bearer {issued}", "GET", f"/v2/team/app/blobs/{layer['digest']}",
                           claims["nbf"]) == f"blobs/sha256/{layer['digest'][7:]}"


def test_no_claim_without_pull_for_one_repository_or_without_a_secret(anonymous, push, reader, client, registry):
    push.image("team/app", "v1")
    push.image("team/tool", "v1")
    assert "edge" not in claims_of(token(anonymous, reader, "repository:team/app:pull", "repository:team/tool:pull"))
    assert "edge" not in claims_of(token(anonymous, reader, "repository:team/other:pull"))  # nothing held
    assert "edge" not in claims_of(token(anonymous, reader, "repository:team/app:push"))  # push refused, pull not asked
    use_backend(registry)  # no edge secret: no claim
    assert "edge" not in claims_of(token(anonymous, reader, "repository:team/app:pull"))


def test_signatures_and_indexes_leave_the_set_as_the_image_left_it(anonymous, push, reader, client):
    image, digest = push.image("team/app", "v1")
    sig_tag = digest.replace(":", "-") + ".sig"
    push.image("team/app", sig_tag, layers=(b"a signature payload",))
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": len(image)}]}).encode()
    assert push.manifest("team/app", "multi", index).status_code == 201
    assert listed(token(anonymous, reader, "repository:team/app:pull")) == prefixes(image)


def test_a_deleted_blob_leaves_the_set_at_once(anonymous, push, reader, client):
    image, _ = push.image("team/app", "v1", layers=(b"keep", b"secret layer"))
    secret_layer = json.loads(image)["layers"][1]["digest"]
    assert client.delete(f"/v2/team/app/blobs/{secret_layer}").status_code == 202
    issued = token(anonymous, reader, "repository:team/app:pull")
    assert listed(issued) == prefixes(image) - {secret_layer[7:]}
    assert not edge.admits(SECRET, f"Bearer {issued}", "GET", f"/v2/team/app/blobs/{secret_layer}",
                           claims_of(issued)["nbf"])
    # ...and the function, where the edge sends it, answers as it always did.
    assert anonymous.get(f"/v2/team/app/blobs/{secret_layer}",
                         headers={"Authorization": f"Bearer {issued}"}).status_code == 404


def test_a_push_that_read_its_links_before_a_deletion_does_not_list_the_deleted_blob(anonymous, push, reader,
                                                                                         client):
    """The races a push's write is held to: the deletion's version (an item read before it), or,
    for a repository's first image, the links themselves."""
    image, _ = push.image("team/app", "v1", layers=(b"keep", b"gone"))
    gone = json.loads(image)["layers"][1]["digest"]
    link = BlobLink.get("team/app", gone)  # as a push read it, with the item
    item = Repository.get(*edge.item_key("team/app")[1])
    assert client.delete(f"/v2/team/app/blobs/{gone}").status_code == 202
    before = Repository.get(*edge.item_key("team/app")[1]).edge_blobs
    assert gone[7:] not in before
    edge.remember("team/app", [link], item)
    assert Repository.get(*edge.item_key("team/app")[1]).edge_blobs == before
    # A first image: no item was read; the link deleted meanwhile is not listed.
    Repository.get(*edge.item_key("team/app")[1]).delete()
    kept = BlobLink.get("team/app", json.loads(image)["layers"][0]["digest"])
    edge.remember("team/app", [link, kept], None)
    assert Repository.get(*edge.item_key("team/app")[1]).edge_blobs == {kept.digest[7:]}


def test_a_deletion_leaves_no_edge_item_where_there_was_none(anonymous, push, reader, client):
    """A repository whose only push was refused, or that never had an image, keeps no item."""
    push.blob("team/app", b"a blob no manifest names")
    assert client.delete(f"/v2/team/app/blobs/{digest_of(b'a blob no manifest names')}").status_code == 202
    assert Repository.count(keys.edge_partition("team/app")) == 0


def test_a_blob_the_repository_does_not_link_is_never_listed(anonymous, push, reader, client):
    """Knowing a digest is not enough: team/tool's layer is served through team/app's token only
    by the function, which refuses it."""
    push.image("team/app", "v1")
    other, _ = push.image("team/tool", "v1", layers=(b"only in tool",))
    foreign = json.loads(other)["layers"][0]["digest"]
    issued = token(anonymous, reader, "repository:team/app:pull")
    assert not edge.admits(SECRET, f"Bearer {issued}", "GET", f"/v2/team/app/blobs/{foreign}", claims_of(issued)["nbf"])
    assert anonymous.get(f"/v2/team/app/blobs/{foreign}", headers={"Authorization": f"Bearer {issued}"}).status_code == 404


def _forge(issued, **changes):
    header, body, signature = issued.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["edge"] = {**claims["edge"], **changes}
    text = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"Bearer {header}.{text}.{signature}"


def edge_cases(issued, layer, now):
    """(authorization, method, path, expected) the gate must decide; shared with the JavaScript gate's test."""
    claims = claims_of(issued)["edge"]
    other_entry = "0" * edge.ENTRY_HEX
    path = f"/v2/team/app/blobs/{layer}"
    return [
        (f"Bearer {issued}", "GET", path, True),
        (f"bearer {issued}", "GET", path, True),
        (f"Bearer {issued}", "HEAD", path, False),                       # HEAD: the function's
        (f"Bearer {issued}", "GET", f"/v2/team/tool/blobs/{layer}", False),  # another repository
        (f"Bearer {issued}", "GET", path.replace("/team/app/", "/team%2Fapp/"), False),  # encoded: the function's
        (f"Bearer {issued}", "GET", f"/v2/team/app/blobs/sha256:{'f' * 64}", False),  # not listed
        (_forge(issued, blobs=claims["blobs"] + other_entry), "GET", f"/v2/team/app/blobs/sha256:{other_entry}", False),
        (_forge(issued, repo="team/tool"), "GET", f"/v2/team/tool/blobs/{layer}", False),  # MAC over the repository
        (_forge(issued, exp=claims["exp"] + 3600), "GET", path, False),    # MAC over the expiry
        (_forge(issued, mac="0" * 64), "GET", path, False),
        (_forge(issued, exp=str(claims["exp"])), "GET", path, False),     # malformed claim
        (_forge(issued, blobs=claims["blobs"][1:]), "GET", path, False),   # misaligned list
        (f"Basic {base64.b64encode(b'rea:x').decode()}", "GET", path, False),
        ("Bearer not.a.token", "GET", path, False),
        ("Bearer " + "a" * 9000, "GET", path, False),
        ("", "GET", path, False),
    ]


def test_the_gate_admits_only_what_the_claim_proves(anonymous, push, reader):
    image, _ = push.image("team/app", "v1")
    layer = json.loads(image)["layers"][0]["digest"]
    issued = token(anonymous, reader, "repository:team/app:pull")
    now = claims_of(issued)["nbf"]
    for authorization, method, path, expected in edge_cases(issued, layer, now):
        assert (edge.admits(SECRET, authorization, method, path, now) is not None) is expected, (authorization[:60], path)
    assert not edge.admits(SECRET, f"Bearer {issued}", "GET", f"/v2/team/app/blobs/{layer}", claims_of(issued)["exp"])
    assert not edge.admits(b"another secret", f"Bearer {issued}", "GET", f"/v2/team/app/blobs/{layer}", now)
    assert not edge.admits(None, f"Bearer {issued}", "GET", f"/v2/team/app/blobs/{layer}", now)


def test_a_direct_uploads_blob_is_served_from_its_own_key():
    """A blob a direct upload left at its session's key: the entry names that key, under the MAC."""
    digest = "sha256:" + "ab" * 32
    listed_as = edge.entry(digest, f"blobs/direct/{'c' * 32}")
    assert listed_as == "ab" * 16 + "c" * 32 and edge.entry(digest, "blobs/elsewhere/x") is None
    assert edge.entry("sha512:" + "ab" * 64, f"blobs/sha512/{'ab' * 64}") is None
    served = edge.claim(SECRET, "team/app", 2_000_000_000, [listed_as])
    token_text = "Bearer x." + base64.urlsafe_b64encode(json.dumps({"edge": served}).encode()).decode().rstrip("=") + ".y"
    assert edge.admits(SECRET, token_text, "GET", f"/v2/team/app/blobs/{digest}", 0) == f"blobs/direct/{'c' * 32}"


def test_the_claim_holds_at_most_its_limit(anonymous, push, reader):
    many = [f"layer {n}".encode() for n in range(edge.BLOBS_MAX + 5)]
    push.image("team/app", "v1", layers=many)
    assert len(listed(token(anonymous, reader, "repository:team/app:pull"))) == edge.BLOBS_MAX


def test_a_set_that_cannot_be_written_leaves_the_push_done_and_the_old_set(anonymous, push, reader, monkeypatch):
    """The push has succeeded when the set is written: storage too busy for it only sends the new
    image's blobs through the function."""
    first, _ = push.image("team/app", "v1", layers=(b"one",))
    update = Repository.update

    def busy(self, *args, **kwargs):
        if self.kind.startswith(keys.EDGE_PARTITION_PREFIX):
            raise UpdateError("busy", cause=None)
        return update(self, *args, **kwargs)

    monkeypatch.setattr(Repository, "update", busy)
    push.image("team/app", "v2", layers=(b"two",))  # 201: asserted by the pusher
    push.image("team/new", "v1", layers=(b"three",))  # a first image
    monkeypatch.undo()
    assert listed(token(anonymous, reader, "repository:team/app:pull")) == prefixes(first)
    assert Repository.count(keys.edge_partition("team/new")) == 0
