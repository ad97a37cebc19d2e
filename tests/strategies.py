"""What the fuzz tier generates (hypothesis strategies): path segments, names, queries, headers and
bodies that a careless or hostile client might send, shared by the in-process and the HTTP fuzz."""
import json
from urllib.parse import quote

from hypothesis import strategies as st

from tests.fixtures import OCI_INDEX, OCI_MANIFEST, digest_of

segments = st.one_of(
    st.sampled_from(["team", "app", "v1", "latest", "..", ".", "%2F", "%252F", "a%2Fb", "%00", "%", "%zz", "sha256:",
                     digest_of(b"x"), "sha256:" + "A" * 64, "blobs", "uploads", "_registry", "KEYS", "x" * 300,
                     "é", "%C3%A9", "a;b", "a b", "0123456789abcdef", "admin", "*"]),
    st.text(min_size=1, max_size=40).map(lambda s: quote(s, safe="")),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-:%", min_size=1, max_size=80),
)
names = st.one_of(st.sampled_from(["team/app", "team/app/sub", "a", "other/x"]),
                  st.lists(segments, min_size=1, max_size=9).map("/".join))
query_keys = ["n", "last", "digest", "mount", "from", "artifactType", "service", "scope", "offline_token",
              "resource", "subject", "namespace", "repository", "actor", "since", "until", "tag", "client_id"]
queries = st.dictionaries(st.sampled_from(query_keys), st.one_of(
    segments, st.sampled_from(["", "-1", "0", "1001", "99999999999999999999", "dockless", "registry:catalog:*",
                               "repository:team/app:pull,push", "2026-01-01T00:00:00Z", "not a time"])),
    max_size=4)
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                           max_leaves=20)
descriptors = st.fixed_dictionaries({"mediaType": st.sampled_from([OCI_MANIFEST, "x", "", "a/b"]),
                                     "digest": st.sampled_from([digest_of(b"x"), "sha256:x", "", "md5:ab"]),
                                     "size": st.one_of(st.integers(-2, 10), st.text(max_size=3))})
manifests = st.fixed_dictionaries({"schemaVersion": st.sampled_from([2, 1, "2"]),
                                   "mediaType": st.sampled_from([OCI_MANIFEST, OCI_INDEX, "text/plain"]),
                                   "config": descriptors, "layers": st.lists(descriptors, max_size=3),
                                   "manifests": st.lists(descriptors, max_size=2),
                                   "subject": descriptors, "annotations": json_values})
bodies = st.one_of(st.just(b""), st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode()),
                   manifests.map(lambda m: json.dumps(m).encode()),
                   st.sampled_from([b"[" * 5000, b'{"a": NaN}', b'{"a":1,"a":2}', b"\xff\xfe",
                                    b"grant_type=refresh_token&refresh_token=dkl_x", b"grant_type=password"]))
content_types = st.sampled_from([None, "application/json", "application/octet-stream", OCI_MANIFEST, OCI_INDEX,
                                 "text/plain; charset=utf-8", "application/x-www-form-urlencoded", "x" * 200])
credentials = st.sampled_from(["none", "admin", "garbage", "basic-garbage", "basic-admin", "bearer-empty"])
content_ranges = st.one_of(st.none(), st.sampled_from(["0-0", "0-10", "5-2", "bytes=0-9", "-1-2", "a-b",
                                                       "0-99999999999999999999", "0-9/*"]))


def path_of(route, name, values):
    path = route.path.replace("{name}", name) if "{name}" in route.path else route.path
    for key in ("digest", "reference", "upload_id", "principal", "credential_id", "team", "namespace",
                "fingerprint", "file"):
        path = path.replace("{" + key + "}", values[key])
    return path
