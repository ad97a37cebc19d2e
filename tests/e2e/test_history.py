"""History you can trust, as a release engineer uses it: two people move `prod` with docker, the CLI
says who moved it when, restores it by time, refuses to move an immutable tag (docker prints why),
and diffs two images docker built, file by file, and two indexes platform by platform."""
import datetime
import hashlib
import json

from tests.e2e.conftest import DOCKER, run
from tests.e2e.images import OciLayout, build, pushed_digest


def test_two_people_move_prod_history_says_who_and_restore_by_time_puts_it_back(stack, docker, dockerd, dockless,
                                                                               tmp_path):
    for user in ("hana", "ivo"):
        dockless("user", "create", user)
        dockless("grant", "write", "hist", f"user:{user}")
    docker_as = {}
    for user in ("hana", "ivo"):
        secret = dockless("token", "create", user).stdout.strip()
        env = {**dockerd, "DOCKER_CONFIG": str(tmp_path / f"docker-{user}")}
        run(DOCKER, "login", stack.host, "-u", user, "--password-stdin", env=env, input=secret)
        docker_as[user] = lambda *args, env=env, check=True: run(DOCKER, *args, env=env, check=check)

    prod = f"{stack.host}/hist/app:prod"
    build(docker, tmp_path / "ctx", f"{stack.host}/hist/app:one", {"keep.txt": "1"}, "V=1", "one")
    build(docker, tmp_path / "ctx", f"{stack.host}/hist/app:two", {"keep.txt": "2"}, "V=2", "two")
    docker("tag", f"{stack.host}/hist/app:one", prod)
    first = pushed_digest(docker_as["hana"]("push", prod).stdout)
    between = datetime.datetime.now(datetime.timezone.utc).isoformat()
    docker("tag", f"{stack.host}/hist/app:two", prod)
    second = pushed_digest(docker_as["ivo"]("push", prod).stdout)
    assert first != second

    events = [json.loads(line) for line in dockless("history", "hist/app:prod", "--json").stdout.splitlines()]
    assert [(e["action"], e["from"], e["to"], e["actor"]) for e in events] == [
        ("move", first, second, "ivo"), ("push", None, first, "hana")]
    assert all(e["source_ip"] == "127.0.0.1" for e in events)
    lines = dockless("history", "hist/app:prod").stdout.splitlines()
    assert lines[0].split()[1:5] == ["prod", "move", first[7:19], "->"]
    assert lines[0].split()[5:] == [second[7:19], "ivo", "from", "127.0.0.1"]

    restored = dockless("restore", "hist/app:prod", "--at", between)
    assert restored.stdout.strip() == f"hist/app:prod -> {first}"
    docker("rmi", prod)
    assert f"Digest: {first}" in docker("pull", prod).stdout
    newest = json.loads(dockless("history", "hist/app:prod", "--json", "-n", "1").stdout)
    assert (newest["action"], newest["from"], newest["to"], newest["actor"]) == ("restore", second, first, "admin")
    trail = dockless("audit", "--repo", "hist/app", "--json").stdout
    assert '"tag.restore"' in trail and '"tag.move"' in trail


def test_history_pages_through_the_front_door(stack, http):
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    digest = "sha256:" + hashlib.sha256(config).hexdigest()
    assert http.post(f"{stack.url}/v2/pages/app/blobs/uploads/?digest={digest}", data=config).status_code == 201
    for number in range(3):
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": [],
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest,
                               "size": len(config)}, "annotations": {"n": str(number)}}
        assert http.put(f"{stack.url}/v2/pages/app/manifests/v{number}", json=manifest,
                        headers={"Content-Type": manifest["mediaType"]}).status_code == 201
    events, url = [], f"{stack.url}/dockless/v1/pages/app/history?n=1"
    while url:
        response = http.get(url)
        assert response.status_code == 200, response.text
        page = response.json()["history"]
        assert len(page) == 1
        events += page
        url = response.links.get("next", {}).get("url")
        url = url and (url if url.startswith("http") else stack.url + url)
    assert [(e["action"], e["tag"]) for e in events] == [("push", "v2"), ("push", "v1"), ("push", "v0")]


def test_an_immutable_tag_refuses_docker_and_restore_and_repo_show_says_who_set_it(stack, docker, dockless, tmp_path):
    dockless("repo", "set", "frozen/app", "--immutable-tags", "v*,release-*", "--time-machine-days", "30")
    build(docker, tmp_path / "ctx", f"{stack.host}/frozen/app:one", {"keep.txt": "1"}, "V=1", "one")
    build(docker, tmp_path / "ctx", f"{stack.host}/frozen/app:two", {"keep.txt": "2"}, "V=2", "two")
    tag = f"{stack.host}/frozen/app:v1.2"
    docker("tag", f"{stack.host}/frozen/app:one", tag)
    first = pushed_digest(docker("push", tag).stdout)
    docker("push", tag)  # the same digest again is fine
    second = pushed_digest(docker("push", f"{stack.host}/frozen/app:two").stdout)
    docker("tag", f"{stack.host}/frozen/app:two", tag)
    refused = docker("push", tag, check=False)
    assert refused.returncode != 0
    assert "denied: tag v1.2 is immutable in frozen/app: push a new tag" in refused.stderr
    not_restored = dockless("restore", "frozen/app:v1.2", second, check=False)
    assert not_restored.returncode == 1
    assert not_restored.stderr.strip() == ("error: restoring frozen/app:v1.2: 403 DENIED: tag v1.2 is immutable "
                                           f'in frozen/app: push a new tag ({{"digest": "{first}", "tag": "v1.2"}})')
    assert [json.loads(line)["to"] for line in dockless("history", "frozen/app:v1.2", "--json").stdout.splitlines()] \
        == [first]

    shown = dockless("repo", "show", "frozen/app").stdout.splitlines()
    assert shown[0].split() == ["setting", "applies", "own", "changed"]
    rows = {line.split()[0]: line.split() for line in shown[1:]}
    assert rows["immutable-tags"][1:3] == ["release-*,v*", "release-*,v*"]
    assert rows["immutable-tags"][4:] == ["by", "admin"]
    assert rows["time-machine-days"][1:3] == ["30", "30"]
    assert rows["verified"] == ["verified", "off", "off", "-"]

    dockless("repo", "set", "frozen/app", "--verified")
    unsigned = dockless("restore", "frozen/app:other", first, check=False)
    assert unsigned.returncode == 1
    assert "403 DENIED: cannot restore: verified mode: no signature by a key trusted for frozen" in unsigned.stderr
    dockless("repo", "set", "frozen/app", "--no-verified", "--no-immutable-tags")
    docker("push", tag)


def test_diff_of_two_docker_images_file_by_file_and_against_a_local_image(stack, docker, dockerd, dockless, http,
                                                                         tmp_path):
    build(docker, tmp_path / "ctx", f"{stack.host}/delta/app:a", {"keep.txt": "same", "change.txt": "one",
                                                                    "gone.txt": "bye"}, "A=1 B=2", "web")
    build(docker, tmp_path / "ctx", f"{stack.host}/delta/app:b", {"keep.txt": "same", "change.txt": "two!",
                                                                    "new.txt": "hello"}, "A=1 B=3 C=4", "api")
    digests = {tag: pushed_digest(docker("push", f"{stack.host}/delta/app:{tag}").stdout) for tag in "ab"}
    manifests = {tag: http.get(f"{stack.url}/v2/delta/app/manifests/{tag}",
                               headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"}).json()
                 for tag in "ab"}
    configs = {tag: http.get(f"{stack.url}/v2/delta/app/blobs/{manifests[tag]['config']['digest']}").json()
               for tag in "ab"}
    [shared] = [layer for layer in manifests["b"]["layers"] if layer in manifests["a"]["layers"]]
    removed, added = manifests["a"]["layers"][1], manifests["b"]["layers"][1]
    history = [[entry["created_by"] for entry in configs[tag]["history"]] for tag in "ab"]
    assert history[0][0] == history[1][0] and history[0][1] != history[1][1]
    from chalicelib.oci.sizes import human as human_bytes
    sizes = {name: human_bytes(layer["size"]) for name, layer in
             (("shared", shared), ("removed", removed), ("added", added))}
    output = dockless("diff", "delta/app:a", "delta/app:b").stdout
    assert output.splitlines() == [
        f"--- delta/app:a {digests['a']}",
        f"+++ delta/app:b {digests['b']}",
        "platform linux/amd64",
        "config: 4 changed",
        '  env B: "2" -> "3"',
        '  env C: unset -> "4"',
        '  labels tier: "web" -> "api"',
        f"  created: {json.dumps(configs['a']['created'])} -> {json.dumps(configs['b']['created'])}",
        *[f"  history - {json.dumps(entry)}" for entry in history[0][1:]],
        *[f"  history + {json.dumps(entry)}" for entry in history[1][1:]],
        f"layers: 1 shared ({sizes['shared']}), 1 removed ({sizes['removed']}), 1 added ({sizes['added']})",
        f"  - {removed['digest']} {sizes['removed']}",
        f"  + {added['digest']} {sizes['added']}",
        "files: 1 added, 1 removed, 1 changed",
        "  A /app/new.txt (file 5 B, 0644 0:0)",
        "  D /app/gone.txt",
        f"  M /app/change.txt: size 3 B -> 4 B, content {hashlib.sha256(b'one').hexdigest()[:12]} -> "
        f"{hashlib.sha256(b'two!').hexdigest()[:12]}",
    ]

    # The same images named with their registry's address (logged in as that address): the same answer.
    dockless("login", f"http://{stack.host}", "-u", "admin", "--password-stdin", input=stack.admin_token)
    addressed = dockless("diff", f"{stack.host}/delta/app:a", f"{stack.host}/delta/app:b").stdout.splitlines()
    assert addressed[0] == f"--- {stack.host}/delta/app:a {digests['a']}"
    assert addressed[2:] == output.splitlines()[2:]

    # Against the local image: docker's uncompressed layers differ by digest, the files are the same.
    local = json.loads(dockless("diff", "delta/app:a", f"docker:{stack.host}/delta/app:b", "--json",
                                env_extra={"DOCKER_HOST": dockerd["DOCKER_HOST"]}).stdout)
    remote = json.loads(dockless("diff", "delta/app:a", "delta/app:b", "--json").stdout)
    assert local["platforms"][0]["files"] == remote["platforms"][0]["files"]
    assert local["platforms"][0]["config"] == remote["platforms"][0]["config"]


def test_diff_of_two_indexes_goes_platform_by_platform(stack, skopeo, dockless, tmp_path):
    layout = OciLayout(tmp_path / "layout")
    amd, arm, arm_new, s390 = (layout.add_image([2000], arch) for arch in ("amd64", "arm64", "arm64", "s390x"))
    layout.tag(layout.add_index([amd, arm]), "one")
    layout.tag(layout.add_index([amd, arm_new, s390]), "two")
    for tag in ("one", "two"):
        skopeo("copy", "--all", "--preserve-digests", "--dest-tls-verify=false", f"oci:{layout.path}:{tag}",
               f"docker://{stack.host}/multi/app:{tag}")
    lines = dockless("diff", "multi/app:one", "multi/app:two").stdout.splitlines()
    platforms = [line for line in lines if line.startswith("platform ")]
    assert platforms == ["platform linux/amd64", "platform linux/arm64", "platform linux/s390x"]
    from chalicelib.oci.sizes import human as human_bytes
    amd_layer = json.loads(layout.blob(amd["digest"]))["layers"][0]
    amd_part = lines[lines.index("platform linux/amd64") + 1:lines.index("platform linux/arm64")]
    assert amd_part == ["config: no changes", f"layers: 1 shared ({human_bytes(amd_layer['size'])}), "
                        "0 removed (0 B), 0 added (0 B)", "files: 0 added, 0 removed, 0 changed"]
    arm_part = lines[lines.index("platform linux/arm64") + 1:lines.index("platform linux/s390x")]
    assert arm_part[-2] == "files: 0 added, 0 removed, 1 changed"
    assert arm_part[-1].startswith("  M /layer0.bin: content ")
    assert lines[lines.index("platform linux/s390x") + 1] == f"  only in to: {s390['digest']}"
