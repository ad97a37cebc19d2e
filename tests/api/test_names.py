"""Repository names of every depth the spec allows, and invalid ones, on every route."""
import pytest

from chalicelib.oci import spec
from chalicelib.routes.table import ROUTES
from tests.fixtures import digest_of, error_code


@pytest.mark.parametrize("repo", ["a", "team/app", "group/sub/app", "a/b/c/d/e/f/g/h",
                                  "my.org/app_x/web--1", "x" * 200])
def test_names_of_any_depth_work_on_blob_and_manifest_routes(client, push, repo):
    body, digest = push.image(repo, "v1")
    assert client.get(f"/v2/{repo}/manifests/v1").body == body
    assert client.get(f"/v2/{repo}/tags/list").json_body == {"name": repo, "tags": ["v1"]}
    assert client.get(f"/v2/{repo}/referrers/{digest}").status_code == 200


def placeholder_path(route, name):
    return (route.path.replace("{name}", name).replace("{digest}", digest_of(b"x"))
            .replace("{reference}", "v1").replace("{tag}", "v1").replace("{upload_id}", "0123"))


@pytest.mark.parametrize("route", [r for r in ROUTES if "{name}" in r.path],
                         ids=lambda r: f"{r.method} {r.path}")
@pytest.mark.parametrize("name", ["Upper/case", "team/-dash", "team//double", "a" * 256,
                                  "team/blobs/app", "team/manifests", "x/tags", "team/history", "x/diff/y"])
def test_invalid_names_are_name_invalid_on_every_route(client, state, route, name):
    before = state()
    response = client.request(route.method, placeholder_path(route, name), body=b"",
                              headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 400, response.body
    assert error_code(response) == "NAME_INVALID"
    assert state() == before


@pytest.mark.parametrize("route", [r for r in ROUTES if "{name}" in r.path],
                         ids=lambda r: f"{r.method} {r.path}")
@pytest.mark.parametrize("depth", [1, spec.NAME_MAX_COMPONENTS])
def test_every_route_reaches_its_handler_at_every_depth(client, route, depth):
    name = "/".join(f"c{i}" for i in range(depth))
    response = client.request(route.method, placeholder_path(route, name), body=b"",
                              headers={"Content-Type": "application/octet-stream"})
    # Answered by the registry (its version header), not refused by the router.
    assert response.headers.get("Docker-Distribution-Api-Version") == "registry/2.0", response.body


@pytest.mark.parametrize("components", [["a/b"], ["team", "app/x"], ["a%2Fb"], ["a%252Fb"]])
def test_a_slash_inside_a_path_component_is_name_invalid(components):
    """What a front door may hand over for %2F or %252F: never a name with extra components."""
    from chalicelib.oci import validate
    from chalicelib.oci.errors import RegistryError
    with pytest.raises(RegistryError) as refused:
        validate.repository_path(components)
    assert refused.value.error.code == "NAME_INVALID"


def test_names_are_bounded_in_components_wherever_they_come_from(client, push, state):
    digest = push.blob("team/src", b"layer")["digest"]
    before = state()
    deep = "/".join("c" for _ in range(spec.NAME_MAX_COMPONENTS + 1))
    response = client.post(f"/v2/team/app/blobs/uploads/?mount={digest}&from={deep}")
    assert response.status_code == 400 and error_code(response) == "NAME_INVALID"
    assert f"at most {spec.NAME_MAX_COMPONENTS} components" in __import__("json").loads(response.body)["errors"][0]["message"]
    assert state() == before


def test_uppercase_names_say_what_to_do(client):
    response = client.get("/v2/Team/App/tags/list")
    message = __import__("json").loads(response.body)["errors"][0]["message"]
    assert response.status_code == 400 and "lowercase" in message
