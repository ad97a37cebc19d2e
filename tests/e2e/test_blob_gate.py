"""The blob gate through the local stack's front door (DESIGN.md §1a): an image pushed with skopeo,
then blob GETs as a client makes them, with real tokens from the stack's token endpoint. What the
edge serves, it serves without the function; what it does not, the function decides as before."""
import base64
import hashlib
import json

import requests

from tests.e2e.conftest import run
from tests.e2e.images import OciLayout


def _token(stack, user, secret, scope):
    answer = requests.get(f"{stack.url}/token", auth=(user, secret), params={"service": "dockless", "scope": scope},
                          timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()["token"]


def _get(stack, path, token, method="GET"):
    return requests.request(method, f"{stack.url}{path}", headers={"Authorization": f"Bearer {token}"},
                            allow_redirects=False, timeout=30)


def test_the_edge_serves_only_what_the_repository_links(stack, dockless, tmp_path):
    dockless("user", "create", "gate-reader")
    secret = dockless("token", "create", "gate-reader").stdout.strip()
    dockless("grant", "read", "gate/app", "user:gate-reader")
    dockless("grant", "read", "gate/other", "user:gate-reader")
    admin = f"admin:{stack.admin_token}"
    for repo, sizes in (("gate/app", [20_000, 10_000]), ("gate/private", [30_000])):
        layout = OciLayout(tmp_path / repo.replace("/", "-"))
        layout.tag(layout.add_image(sizes), "v1")
        run("skopeo", "copy", "--dest-tls-verify=false", f"--dest-creds={admin}", f"oci:{layout.path}:v1",
            f"docker://{stack.host}/{repo}:v1")
    raw = run("skopeo", "inspect", "--raw", "--tls-verify=false", f"--creds={admin}",
              f"docker://{stack.host}/gate/app:v1").stdout
    layers = [layer["digest"] for layer in json.loads(raw)["layers"]]
    private = json.loads(run("skopeo", "inspect", "--raw", "--tls-verify=false", f"--creds={admin}",
                             f"docker://{stack.host}/gate/private:v1").stdout)["layers"][0]["digest"]

    token = _token(stack, "gate-reader", secret, "repository:gate/app:pull")
    mark = stack.mark()
    served = _get(stack, f"/v2/gate/app/blobs/{layers[0]}", token)
    assert served.status_code == 307
    data = requests.get(served.headers["Location"], timeout=30).content
    assert "sha256:" + hashlib.sha256(data).hexdigest() == layers[0]
    # Knowing another repository's digest: not listed, so the function decides (and refuses it).
    assert _get(stack, f"/v2/gate/app/blobs/{private}", token).status_code == 404
    # A token for a repository that does not link it either, whatever it lists.
    other = _token(stack, "gate-reader", secret, "repository:gate/other:pull")
    assert _get(stack, f"/v2/gate/other/blobs/{layers[0]}", other).status_code == 404
    # A HEAD is the function's; a tampered claim falls through to it and is refused there.
    assert _get(stack, f"/v2/gate/app/blobs/{layers[0]}", token, "HEAD").headers["Docker-Content-Digest"] == layers[0]
    head, body, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["edge"]["blobs"] += private[7:]  # another repository's blob added: the MAC no longer holds
    tampered = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    assert _get(stack, f"/v2/gate/app/blobs/{private}", f"{head}.{tampered}.{signature}").status_code == 401
    records = stack.requests_since(mark)
    by_edge = [r["path"] for r in records if r.get("served_by") == "edge"]
    assert by_edge == [f"/v2/gate/app/blobs/{layers[0]}"], [(r["path"], r.get("served_by")) for r in records]
    # A blob deleted from the repository: the next token no longer lists it; the function says so.
    assert requests.delete(f"{stack.url}/v2/gate/app/blobs/{layers[1]}", timeout=30, headers={
        "Authorization": f"Bearer {_token(stack, 'admin', stack.admin_token, 'repository:gate/app:delete')}"}
    ).status_code == 202
    after = _token(stack, "gate-reader", secret, "repository:gate/app:pull")
    mark = stack.mark()
    assert _get(stack, f"/v2/gate/app/blobs/{layers[1]}", after).status_code == 404
    assert _get(stack, f"/v2/gate/app/blobs/{layers[0]}", after).status_code == 307
    assert [r.get("served_by") for r in stack.requests_since(mark)] == [None, "edge"]
