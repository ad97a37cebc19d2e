import hashlib
import json


def test_ping(client):
    response = client.get("/v2/")
    assert response.status_code == 200
    assert response.headers["Docker-Distribution-Api-Version"] == "registry/2.0"


def test_monolithic_then_manifest(client):
    data = b"hello"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    r = client.post(f"/v2/team/app/blobs/uploads/?digest={digest}", body=data,
                    headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 201, r.body
    r = client.head(f"/v2/team/app/blobs/{digest}")
    assert r.status_code == 307, r.body
