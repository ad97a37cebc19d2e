"""An artifact that names a subject, pushed over HTTP to `dockless serve`, found by the referrers
API; and names of several depths through skopeo."""
import hashlib
import json

from tests.e2e.images import OCI_MANIFEST, OciLayout


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_blob(http, url, repo, data):
    response = http.post(f"{url}/v2/{repo}/blobs/uploads/", params={"digest": digest(data)}, data=data,
                         headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 201, response.text
    return {"digest": digest(data), "size": len(data)}


def test_artifact_with_subject_is_listed_by_referrers(stack, skopeo, http, tmp_path):
    layout = OciLayout(tmp_path / "img")
    image = layout.add_image([10_000])
    layout.tag(image, "v1")
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout.path}:v1", f"docker://{stack.host}/team/ref:v1")

    empty = dict(push_blob(http, stack.url, "team/ref", b"{}"), mediaType="application/vnd.oci.empty.v1+json")
    sbom = dict(push_blob(http, stack.url, "team/ref", b'{"spdxVersion": "SPDX-2.3"}'),
                mediaType="application/spdx+json")
    artifact = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "artifactType": "application/spdx+json", "config": empty, "layers": [sbom],
                           "subject": {"mediaType": OCI_MANIFEST, "digest": image["digest"],
                                       "size": image["size"]}}).encode()
    response = http.put(f"{stack.url}/v2/team/ref/manifests/{digest(artifact)}", data=artifact,
                        headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 201
    assert response.headers["OCI-Subject"] == image["digest"]

    response = http.get(f"{stack.url}/v2/team/ref/referrers/{image['digest']}",
                        params={"artifactType": "application/spdx+json"})
    assert response.status_code == 200
    assert response.headers["OCI-Filters-Applied"] == "artifactType"
    assert response.json()["manifests"] == [{"mediaType": OCI_MANIFEST, "digest": digest(artifact),
                                             "size": len(artifact), "artifactType": "application/spdx+json"}]


def test_names_of_one_and_four_components(stack, skopeo, tmp_path):
    layout = OciLayout(tmp_path / "img")
    layout.tag(layout.add_image([5_000]), "v1")
    for repo in ("solo", "group/sub/team/app"):
        skopeo("copy", "--dest-tls-verify=false", f"oci:{layout.path}:v1", f"docker://{stack.host}/{repo}:v1")
        tags = skopeo("list-tags", "--tls-verify=false", f"docker://{stack.host}/{repo}").stdout
        assert json.loads(tags)["Tags"] == ["v1"]
