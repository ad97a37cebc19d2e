"""The AWS calls each hot route makes, counted from the request log of a real push and pull (skopeo
through `dockless serve`): DESIGN.md §6's budgets. A call added to a hot path fails here, with the
route and the calls it made."""
import collections

import requests

from dockless.client.auth import RegistryAuth
from tests.e2e.conftest import run
from tests.e2e.images import OciLayout

READS = {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"}
WRITES = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:TransactWriteItems", "dynamodb:DeleteItem"}
# After a link's or a manifest's transaction, the repository's catalog entry is read (consistently);
# the repository's first write creates it.
CATALOG = ["dynamodb:GetItem"]
COMPLETION = ["dynamodb:BatchGetItem", "s3:HeadObject", "dynamodb:Query", "dynamodb:TransactWriteItems", *CATALOG]
FIRST = ["dynamodb:UpdateItem"]
# After an image manifest's push, its blobs become what the edge may serve (chalicelib/access/edge.py):
# one conditional write, and before it, for a repository's first image, the edge item made and its
# links read again.
EDGE_SET = ["dynamodb:UpdateItem"]
FIRST_EDGE_SET = ["dynamodb:UpdateItem", "dynamodb:BatchGetItem", *EDGE_SET]
# A change that is an event (chalicelib/events: a manifest push) sends it once committed: one call.
EVENT = ["sqs:SendMessageBatch"]


def kind(record) -> str:
    """What a manifest request named: a digest or a tag."""
    return "digest" if "sha256:" in record["path"] else "tag"


def counted(calls, which) -> int:
    return sum(call in which for call in calls)


def test_each_hot_route_stays_at_its_floor_of_aws_calls(stack, dockless, tmp_path):
    dockless("user", "create", "budget-reader")
    reader = dockless("token", "create", "budget-reader").stdout.strip()
    dockless("grant", "read", "budget", "user:budget-reader")
    layout = OciLayout(tmp_path / "in")
    layout.tag(layout.add_image([40_000, 30_000, 20_000]), "v1")
    admin, pull_only = f"admin:{stack.admin_token}", f"budget-reader:{reader}"
    mark = stack.mark()
    run("skopeo", "copy", "--dest-tls-verify=false", f"--dest-creds={admin}", f"oci:{layout.path}:v1",
        f"docker://{stack.host}/budget/app:v1")
    for creds in (admin, pull_only):
        run("skopeo", "copy", "--src-tls-verify=false", f"--src-creds={creds}",
            f"docker://{stack.host}/budget/app:v1", f"oci:{tmp_path / creds.split(':')[0]}:v1")
        digest = run("skopeo", "inspect", "--tls-verify=false", f"--creds={creds}", "--format", "{{.Digest}}",
                     f"docker://{stack.host}/budget/app:v1").stdout.strip()
        run("skopeo", "inspect", "--raw", "--tls-verify=false", f"--creds={creds}",
            f"docker://{stack.host}/budget/app@{digest}")
        with requests.Session() as http:  # docker HEADs a tag before it pulls it
            http.auth = RegistryAuth(*creds.split(":", 1))
            for reference in ("v1", digest):
                assert http.head(f"{stack.url}/v2/budget/app/manifests/{reference}").status_code == 200
    by_route = collections.defaultdict(list)
    for record in stack.requests_since(mark):
        if record["status"] != 401:  # a client's first, unauthenticated try: answered with no call
            by_route[(record["method"], record["route"])].append(record)

    def calls(method, route):
        records = by_route[(method, route)]
        assert records, (method, route)
        return [(r["path"], r["aws_calls"], r) for r in records]

    # A blob: one read (the link, with the namespace's settings: a cache namespace fills a miss),
    # whatever the caller, found or not; none for a GET the edge served (its token's edge claim
    # listed the blob: every blob of this pull, whoever pulled).
    for method in ("HEAD", "GET"):
        for path, made, record in calls(method, "/v2/{name}/blobs/{digest}"):
            assert made == ([] if record.get("served_by") == "edge" else ["dynamodb:BatchGetItem"]), (method, path, made)
    pulled = [r for _, _, r in calls("GET", "/v2/{name}/blobs/{digest}")]
    # Two copies of four blobs, and the config each `skopeo inspect` reads.
    assert len(pulled) == 2 * 4 + 2 and all(r["served_by"] == "edge" and r["invocations"] == 0 for r in pulled), \
        [(r["path"], r["status"], r.get("served_by"), r["principal"]) for r in pulled]
    # A manifest: one read by digest, two by tag (the repository's settings come with the first),
    # and a GET's one write (its audit event, with the day's pull time when it is the first).
    for method in ("HEAD", "GET"):
        for path, made, record in calls(method, "/v2/{name}/manifests/{reference}"):
            assert counted(made, READS) == {"digest": 1, "tag": 2}[kind(record)], (method, path, made)
            assert counted(made, WRITES) == (1 if method == "GET" else 0), (method, path, made)
            assert len(made) == counted(made, READS | WRITES), (method, path, made)
    # A push: a session is one write; a direct upload one read and one write; its completion one
    # read (the session with the quota's count), a HeadObject, the dedup lookup and one transaction;
    # the manifest one read of everything it checks, its bytes, one transaction; each then reads the
    # catalog entry, which the repository's first link writes.
    for _, made, _ in calls("POST", "/v2/{name}/blobs/uploads/"):
        assert made == ["dynamodb:PutItem"], made
    for _, made, _ in calls("POST", "/dockless/v1/{name}/uploads/{upload_id}/direct"):
        assert made == ["dynamodb:BatchGetItem", "dynamodb:UpdateItem"], made
    completions = [made for _, made, _ in calls("PUT", "/v2/{name}/blobs/uploads/{upload_id}")]
    assert sorted(completions) == sorted([COMPLETION + FIRST] + [COMPLETION] * (len(completions) - 1)), completions
    for _, made, _ in calls("PUT", "/v2/{name}/manifests/{reference}"):
        assert made == ["dynamodb:BatchGetItem", "s3:PutObject", "dynamodb:TransactWriteItems", *EVENT, *CATALOG,
                        *FIRST_EDGE_SET], made  # budget/app's first image
    # A token: the credential with its principal (and its teams), the grants (not for an admin),
    # its one audit event: 3 calls; and at most once a day the credential's last use.
    for _, made, record in calls("GET", "/token"):
        daily = [c for c in made if c == "dynamodb:UpdateItem"]
        assert [c for c in made if c not in daily] in (
            ["dynamodb:BatchGetItem", "dynamodb:BatchGetItem", "dynamodb:PutItem"],  # a user
            ["dynamodb:BatchGetItem", "dynamodb:PutItem"]), made  # an admin: no grants to read
        assert len(daily) <= 1, made
