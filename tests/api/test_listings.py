"""Tags list (end-8a/8b), referrers (end-12a/12b) and Docker's `_catalog`, in process."""
import json
from urllib.parse import quote

import pytest

from tests.fixtures import OCI_INDEX, OCI_MANIFEST, digest_of, error_code


def test_ping_answers_with_the_api_version(client):
    response = client.get("/v2/")
    assert response.status_code == 200
    assert response.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
    assert response.json_body == {}


def test_every_response_carries_the_api_version_and_signatures_headers(client, anonymous):
    for response in (client.get(f"/v2/team/app/blobs/{digest_of(b'x')}"), anonymous.get("/v2/")):
        assert response.status_code in (401, 404)
        assert response.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
        assert response.headers["X-Registry-Supports-Signatures"] == "1"


def tag_all(push, repo, tags):
    body, _ = push.image(repo)
    for tag in tags:
        assert push.manifest(repo, tag, body).status_code == 201


def test_tags_are_listed_in_case_insensitive_lexical_order(client, push):
    tag_all(push, "team/app", ["b", "A", "a-1", "C", "a", "10", "9"])
    response = client.get("/v2/team/app/tags/list")
    assert response.status_code == 200
    assert response.json_body == {"name": "team/app", "tags": ["10", "9", "A", "a", "a-1", "b", "C"]}
    assert "Link" not in response.headers


def test_tags_paginate_with_n_last_and_link(client, push):
    tag_all(push, "team/app", ["v1", "v2", "v3", "v4", "v5"])
    response = client.get("/v2/team/app/tags/list?n=2")
    assert response.json_body["tags"] == ["v1", "v2"]
    assert response.headers["Link"] == '</v2/team/app/tags/list?n=2&last=v2>; rel="next"'
    response = client.get("/v2/team/app/tags/list?n=2&last=v2")
    assert response.json_body["tags"] == ["v3", "v4"]
    response = client.get("/v2/team/app/tags/list?n=2&last=v4")
    assert response.json_body["tags"] == ["v5"]
    assert "Link" not in response.headers
    assert client.get("/v2/team/app/tags/list?n=0").json_body["tags"] == []


def test_tags_of_unknown_repository_is_name_unknown(client):
    response = client.get("/v2/team/nothing/tags/list")
    assert response.status_code == 404
    assert error_code(response) == "NAME_UNKNOWN"


@pytest.mark.parametrize("n", ["-1", "abc", "1.5"])
def test_bad_page_size_is_refused(client, push, n):
    push.image("team/app", "v1")
    response = client.get(f"/v2/team/app/tags/list?n={n}")
    assert response.status_code == 400
    assert error_code(response) == "PAGINATION_NUMBER_INVALID"


def push_referrer(push, repo, subject_digest, artifact_type, payload):
    empty = push.blob(repo, b"{}")
    empty["mediaType"] = "application/vnd.oci.empty.v1+json"
    layer = push.blob(repo, payload)
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
                       "config": empty, "layers": [layer],
                       "subject": {"mediaType": OCI_MANIFEST, "digest": subject_digest, "size": 1},
                       "annotations": {"org.example.kind": artifact_type}}).encode()
    response = push.manifest(repo, digest_of(body), body)
    assert response.status_code == 201, response.body
    return digest_of(body), len(body)


def test_referrers_lists_artifacts_that_name_the_subject(client, push):
    _, subject = push.image("team/app", "v1")
    sbom, sbom_size = push_referrer(push, "team/app", subject, "application/vnd.example.sbom", b"sbom")
    sig, _ = push_referrer(push, "team/app", subject, "application/vnd.example.sig", b"sig")
    push_referrer(push, "team/app", digest_of(b"another subject"), "application/vnd.example.sbom", b"x")

    response = client.get(f"/v2/team/app/referrers/{subject}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == OCI_INDEX
    index = response.json_body
    assert index["schemaVersion"] == 2 and index["mediaType"] == OCI_INDEX
    assert {m["digest"] for m in index["manifests"]} == {sbom, sig}
    entry = next(m for m in index["manifests"] if m["digest"] == sbom)
    assert entry == {"mediaType": OCI_MANIFEST, "digest": sbom, "size": sbom_size,
                     "artifactType": "application/vnd.example.sbom",
                     "annotations": {"org.example.kind": "application/vnd.example.sbom"}}
    assert "OCI-Filters-Applied" not in response.headers


def test_referrers_filter_by_artifact_type(client, push):
    _, subject = push.image("team/app", "v1")
    sbom, _ = push_referrer(push, "team/app", subject, "application/vnd.example.sbom", b"sbom")
    push_referrer(push, "team/app", subject, "application/vnd.example.sig", b"sig")
    response = client.get(f"/v2/team/app/referrers/{subject}?artifactType=application/vnd.example.sbom")
    assert response.headers["OCI-Filters-Applied"] == "artifactType"
    assert [m["digest"] for m in response.json_body["manifests"]] == [sbom]


@pytest.mark.parametrize("bundle", ["application/vnd.dev.sigstore.bundle.v0.3+json",
                                    "application/vnd.dev.sigstore.bundle+json;version=0.2"])
def test_a_sigstore_bundle_is_kept_before_its_subject_and_found_by_its_type_parameters_and_all(client, push, bundle):
    """cosign attaches a bundle as a referrer, the older ones with a media type parameter, and may
    push it before the image it signs."""
    subject = digest_of(b"an image not pushed yet")
    empty = push.blob("team/app", b"{}")
    empty["mediaType"] = "application/vnd.oci.empty.v1+json"
    layer = dict(push.blob("team/app", b'{"mediaType": "%s"}' % bundle.encode()), mediaType=bundle)
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": bundle, "config": empty,
                       "layers": [layer], "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": 1}}).encode()
    pushed = push.manifest("team/app", digest_of(body), body)
    assert pushed.status_code == 201, pushed.body
    assert pushed.headers["OCI-Subject"] == subject
    found = client.get(f"/v2/team/app/referrers/{subject}?artifactType={quote(bundle)}")
    assert [(m["digest"], m["artifactType"]) for m in found.json_body["manifests"]] == [(digest_of(body), bundle)]
    assert client.get(f"/v2/team/app/manifests/{digest_of(body)}").body == body


@pytest.mark.parametrize("wrong", ["application/x;", "application/x;version=", "application/x; version=\"a\nb\"",
                                   "application/x;" + ";".join(f"p{n}=1" for n in range(9))])
def test_a_media_type_with_broken_parameters_is_refused(push, state, wrong):
    empty = push.blob("team/app", b"{}")
    before = state()
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": dict(empty, mediaType=wrong),
                       "layers": []}).encode()
    refused = push.manifest("team/app", "v1", body)
    assert refused.status_code == 400 and error_code(refused) == "MANIFEST_INVALID"
    assert state() == before


def test_referrers_paginate_with_link(client, push):
    subject = digest_of(b"subject")
    made = sorted(push_referrer(push, "team/app", subject, "application/vnd.example", bytes([i]))[0]
                  for i in range(3))
    first = client.get(f"/v2/team/app/referrers/{subject}?n=2")
    assert [m["digest"] for m in first.json_body["manifests"]] == made[:2]
    link = first.headers["Link"]
    assert link.startswith(f"</v2/team/app/referrers/{subject}?") and link.endswith('>; rel="next"')
    second = client.get(link[1:link.index(">")])
    assert [m["digest"] for m in second.json_body["manifests"]] == made[2:]
    assert "Link" not in second.headers


def test_referrers_of_unknown_subject_is_an_empty_index(client):
    response = client.get(f"/v2/team/app/referrers/{digest_of(b'nothing')}")
    assert response.status_code == 200
    assert response.json_body["manifests"] == []


def test_referrers_with_malformed_digest_is_400(client):
    response = client.get("/v2/team/app/referrers/sha256:xyz")
    assert response.status_code == 400
    assert error_code(response) == "DIGEST_INVALID"


def test_catalog_lists_repositories_in_order_with_pagination(client, push):
    for repo in ("team/b", "a", "team/a", "group/sub/app"):
        push.blob(repo, b"x")
    response = client.get("/v2/_catalog")
    assert response.json_body == {"repositories": ["a", "group/sub/app", "team/a", "team/b"]}
    response = client.get("/v2/_catalog?n=2")
    assert response.json_body["repositories"] == ["a", "group/sub/app"]
    assert response.headers["Link"] == '</v2/_catalog?n=2&last=group%2Fsub%2Fapp>; rel="next"'
    response = client.get("/v2/_catalog?n=2&last=group/sub/app")
    assert response.json_body["repositories"] == ["team/a", "team/b"]
    assert "Link" not in response.headers  # exactly n left: the last page
    response = client.get("/v2/_catalog?n=0")
    assert response.json_body == {"repositories": []} and "Link" not in response.headers
