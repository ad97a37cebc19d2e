"""`dockless check URL`: a deployment proves itself, end to end, from the outside.

It pushes and pulls a throwaway repository (`dockless-check/<random>`, deleted afterwards) through
the registry's public URL and checks what only a real front door, bucket and account can show.
Each check is one line: `ok`, `skip` (with what it needs) or `FAIL` with what is wrong and what to
do about it; the command exits 1 when any fails. Then the latency of each kind of call, p50 and
p95 over the run.

    challenge        GET /v2/ answers 401 with the Bearer challenge and the API version header
                     (the edge function restores WWW-Authenticate)
    origin           with --origin, the API Gateway URL refuses requests that skip CloudFront
    unknown route    an unknown route is API Gateway's customised 404, an OCI error body
    body limit       a 7 MB PATCH (above Lambda's 6 MB) and a PATCH above API Gateway's 10 MB
                     each get the OCI 413/502 body that says how to push big layers
    runtime          the function runs on the Python and architecture the stack deploys
    timeout          a request that runs past 29 s gets the front door's OCI 504, at 29 s
    throttling       a request whose storage stays busy reaches the client as 503 TOOMANYREQUESTS
                     with Retry-After (what docker retries)
    token            GET with Basic, a refresh token, the refresh grant, insufficient scope
    push             a small image straight to the API, one layer as a chunked PATCH (byte-exact
                     through CloudFront and API Gateway: what the account does with a chunked
                     body, which AWS does not document; `dockless serve --chunked-bodies` follows)
    manifest HEAD    digest, Content-Type and the manifest's Content-Length in one answer
    blob GET         307 to the bucket's regional host; the bytes match the digest
    direct upload    other bytes than signed for are refused by S3
    gateway          a big layer through a `dockless gateway` this command starts (multipart with
                     --big)
    error caching    a HEAD that 404s, a push, the same HEAD within 10 s: 200
    signatures       the signature extension and /keys/_registry/KEYS answer
"""
import dataclasses
import hashlib
import json
import os
import secrets
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from typing import Callable, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

import requests

from chalicelib.oci import spec
from chalicelib.runtime.function_url import API_GATEWAY_DOOR
from dockless.local.frontdoor import LOCAL_GATE
from infra import runtime

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
# Bigger than Lambda's 6 MB payload, smaller than API Gateway's 10 MB: refused with advice.
BODY_LIMIT_PROBE_BYTES = 7 * 1000 * 1000
GATEWAY_LAYER_BYTES = 8 * spec.MiB
BIG_LAYER_BYTES = spec.S3_MAX_SINGLE_PUT_BYTES + spec.MiB
FRONT_DOOR_LIMIT_PROBE_BYTES = spec.FRONT_DOOR_MAX_BODY_BYTES + 1
# How much longer than the front door's timeout the timeout probe asks the function to wait.
TIMEOUT_PROBE_EXTRA_SECONDS = 1
# CloudFront keeps an error 10 s unless told otherwise.
ERROR_CACHING_WINDOW_SECONDS = 10


@dataclasses.dataclass
class Verdict:
    name: str
    status: str  # "ok" | "skip" | "FAIL"
    detail: str = ""

    def line(self) -> str:
        return f"{self.status:<4} {self.name}" + (f": {self.detail}" if self.detail else "")


class Failed(Exception):
    """A check's failure: what is wrong, and what to do about it."""


class Skipped(Exception):
    pass


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _error_of(response: requests.Response) -> dict:
    try:
        return response.json()["errors"][0]
    except (ValueError, KeyError, IndexError, TypeError):
        return {}


class Check:
    def __init__(self, url: str, username: str, password: str, origin: Optional[str] = None, big: bool = False,
                 verify=True, say: Callable[[str], None] = print,
                 front_door_timeout: float = spec.FRONT_DOOR_TIMEOUT_SECONDS):
        self.url, self.origin, self.big, self.say = url.rstrip("/"), origin, big, say
        self.front_door_timeout = front_door_timeout
        self.credentials = (username, password)
        self.session = requests.Session()
        self.session.verify = verify
        self.verify = verify
        self.repository = f"dockless-check/{secrets.token_hex(6)}"
        self.timings: Dict[str, List[float]] = defaultdict(list)
        self.pushed: Optional[dict] = None  # manifest, digest, blobs
        self._tokens: Dict[str, str] = {}

    # --- plumbing ------------------------------------------------------------------------------

    def request(self, kind: str, method: str, url: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 120)
        kwargs.setdefault("allow_redirects", False)
        kwargs.setdefault("verify", self.verify)  # requests lets REQUESTS_CA_BUNDLE override a session's
        started = time.monotonic()
        response = self.session.request(method, url, **kwargs)
        self.timings[kind].append((time.monotonic() - started) * 1000)
        return response

    def token(self, *scopes: str) -> dict:
        key = " ".join(scopes)
        if key not in self._tokens:
            answer = self.request("token", "GET", f"{self.url}/token", auth=self.credentials,
                                  params=[("service", "dockless")] + [("scope", s) for s in scopes])
            if answer.status_code != 200:
                raise Failed(f"the token endpoint answered {answer.status_code} for {self.credentials[0]}: "
                             f"{_error_of(answer).get('message', answer.text[:100])}; check the user and token")
            self._tokens[key] = answer.json()["token"]
        return {"Authorization": f"Bearer {self._tokens[key]}"}

    def push_scope(self) -> dict:
        return self.token(f"repository:{self.repository}:pull,push,delete")

    def v2(self, path: str) -> str:
        return f"{self.url}/v2/{self.repository}/{path}"

    def upload(self, data: bytes, chunked: bool = False) -> requests.Response:
        """One blob through the API: monolithic, or one chunked PATCH then the PUT."""
        auth = self.push_scope()
        if not chunked:
            return self.request("blob upload", "POST", self.v2("blobs/uploads/"), params={"digest": sha256(data)},
                                data=data, headers={**auth, "Content-Type": spec.OCTET_STREAM})
        started = self.request("blob upload", "POST", self.v2("blobs/uploads/"), headers=auth)
        location = started.headers.get("Location", "")
        pieces = (data[i:i + 65536] for i in range(0, len(data), 65536))  # a generator: sent chunked
        patched = self.request("blob upload", "PATCH", location, data=pieces, headers=auth)
        if patched.status_code != 202:
            return patched
        return self.request("blob upload", "PUT", patched.headers["Location"], params={"digest": sha256(data)},
                            headers=auth)

    def put_manifest(self, reference: str, layers: List[bytes]) -> Tuple[requests.Response, bytes]:
        config = json.dumps({"architecture": "amd64", "os": "linux", "dockless-check": self.repository}).encode()
        for blob in [config, *layers]:
            self.upload(blob)
        body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
                           "layers": [{"mediaType": OCI_LAYER, "digest": sha256(layer), "size": len(layer)}
                                      for layer in layers]}).encode()
        answer = self.request("manifest PUT", "PUT", self.v2(f"manifests/{reference}"), data=body,
                              headers={**self.push_scope(), "Content-Type": OCI_MANIFEST})
        return answer, body

    # --- the checks ----------------------------------------------------------------------------

    def check_challenge(self) -> str:
        answer = self.request("ping", "GET", f"{self.url}/v2/")
        challenge = answer.headers.get("WWW-Authenticate", "")
        if answer.status_code != 401 or not challenge.startswith("Bearer realm="):
            raise Failed(f"GET /v2/ answered {answer.status_code} without a Bearer challenge (headers: "
                         f"{sorted(answer.headers)[:8]}); the origin-response edge function must restore "
                         "WWW-Authenticate: redeploy the edge stack and check the distribution's association")
        if answer.headers.get(spec.API_VERSION_HEADER) != spec.API_VERSION:
            raise Failed(f"{spec.API_VERSION_HEADER} is missing: docker will not treat this as a registry")
        realm = challenge.split('realm="', 1)[1].split('"', 1)[0]
        if not realm.endswith("/token"):
            raise Failed(f"the realm {realm!r} is not the registry's /token: check the public URL parameter")
        return f"realm {realm}"

    def check_origin(self) -> str:
        if not self.origin:
            raise Skipped("give --origin (the stack's OriginUrl output) to check that the API refuses "
                          "requests that go around CloudFront")
        answer = self.request("ping", "GET", f"{self.origin.rstrip('/')}/v2/")
        if answer.status_code != 403 or _error_of(answer).get("code") != "DENIED":
            raise Failed(f"the API answered {answer.status_code} without CloudFront's origin secret: anyone can "
                         "go around the front door; set DOCKLESS_ORIGIN_SECRET (the stack does) and redeploy")
        return "403 without the origin secret"

    def check_unknown_route(self) -> str:
        answer = self.request("unknown route", "DELETE", f"{self.url}/v2/")
        if answer.status_code != 404 or _error_of(answer).get("code") != "NOT_FOUND":
            raise Failed(f"an unknown route answered {answer.status_code} {answer.text[:80]!r}, not the OCI 404: "
                         "API Gateway's gateway responses are not live; redeploy the stage (they are in the "
                         "API's definition, x-amazon-apigateway-gateway-responses)")
        return "404 NOT_FOUND"

    def check_body_limit(self) -> str:
        auth = self.push_scope()
        said = []
        for size, limit in ((BODY_LIMIT_PROBE_BYTES, "Lambda's 6 MB"), (FRONT_DOOR_LIMIT_PROBE_BYTES, "API Gateway's 10 MB")):
            started = self.request("blob upload", "POST", self.v2("blobs/uploads/"), headers=auth)
            answer = self.request("blob upload", "PATCH", started.headers.get("Location", self.v2("blobs/uploads/x")),
                                  data=os.urandom(size), headers=auth)
            error = _error_of(answer)
            if answer.status_code not in (413, 502) or "dockless gateway" not in json.dumps(error):
                raise Failed(f"a PATCH of {size:,} bytes (above {limit}) answered {answer.status_code} "
                             f"{answer.text[:80]!r}: clients are not told how to push big layers; the "
                             "REQUEST_TOO_LARGE and DEFAULT_5XX gateway responses are not live (redeploy)")
            said.append(f"{size // 1_000_000} MB: {answer.status_code} {error.get('code')}")
        return ", ".join(said) + ", with advice"

    def probe(self, kind: str, **asked) -> requests.Response:
        return self.request(kind, "POST", f"{self.url}/dockless/admin/v1/probe", json=asked,
                            headers=self.token("registry:admin:*"), timeout=self.front_door_timeout + 60)

    def check_runtime(self) -> str:
        answer = self.probe("probe")
        if answer.status_code == 403:
            raise Skipped("needs an admin (the probe is an administration route)")
        if answer.status_code != 200:
            raise Failed(f"the probe answered {answer.status_code} {answer.text[:80]!r}: redeploy (dockless deploy)")
        found = answer.json()
        said = f"python {found['python']} on {found['architecture']} behind the {found.get('door')} door"
        if not found.get("memory_mb"):
            raise Skipped(f"not on Lambda (a local stack): {said}")
        wanted = (runtime.PYTHON.replace("python", ""), "aarch64" if runtime.ARCHITECTURE == "arm64" else "x86_64")
        if not found["python"].startswith(wanted[0] + ".") or found["architecture"] != wanted[1]:
            raise Failed(f"the function runs {said}, the stack deploys {runtime.PYTHON} on {runtime.ARCHITECTURE}: "
                         "an older deployment; run dockless deploy")
        return f"{said}, {found['memory_mb']} MB"

    def check_timeout(self) -> str:
        """Behind API Gateway, its 504 at 29 s; behind the function URL, the function's own timeout
        (its 30 s), which the URL answers 502 (the edge function writes the OCI body)."""
        asked = self.probe("probe")
        if asked.status_code == 403:
            raise Skipped("needs an admin (the probe is an administration route)")
        door = asked.json().get("door", API_GATEWAY_DOOR)
        expected = (504, "UNAVAILABLE") if door == API_GATEWAY_DOOR else (502, "UNKNOWN")
        started = time.monotonic()
        answer = self.probe("probe (waits)", wait_seconds=self.front_door_timeout + TIMEOUT_PROBE_EXTRA_SECONDS)
        elapsed = time.monotonic() - started
        error = _error_of(answer)
        if (answer.status_code, error.get("code")) != expected:
            raise Failed(f"a request running {self.front_door_timeout + TIMEOUT_PROBE_EXTRA_SECONDS:g} s answered "
                         f"{answer.status_code} {answer.text[:80]!r} after {elapsed:.0f} s: the registry counts on "
                         f"the {door} door ending requests at {self.front_door_timeout:g} s with the OCI "
                         f"{expected[0]} (its retries' budget); the INTEGRATION_TIMEOUT gateway response, the "
                         "edge function or the function's timeout differs: redeploy")
        return f"{door}: {answer.status_code} {error['code']} after {elapsed:.0f} s"

    def check_throttling(self) -> str:
        answer = self.probe("probe", busy=True)
        if answer.status_code == 403:
            raise Skipped("needs an admin (the probe is an administration route)")
        error, retry_after = _error_of(answer), answer.headers.get("Retry-After", "")
        if answer.status_code != 503 or error.get("code") != "TOOMANYREQUESTS" or not retry_after.isdigit():
            raise Failed(f"a request whose storage stayed busy answered {answer.status_code} {error.get('code')} "
                         f"(Retry-After {retry_after or 'missing'}): docker retries a 503 TOOMANYREQUESTS with "
                         "Retry-After; the distribution must pass 503s through (CustomErrorResponses with "
                         "ErrorCachingMinTTL 0 and no ResponsePagePath: redeploy)")
        return f"503 {error['code']}, Retry-After {retry_after}"

    def check_token(self) -> str:
        basic = self.request("token", "GET", f"{self.url}/token", auth=self.credentials,
                             params={"service": "dockless", "offline_token": "true", "client_id": "dockless-check",
                                     "scope": f"repository:{self.repository}:pull"})
        if basic.status_code != 200 or "refresh_token" not in basic.json():
            raise Failed(f"GET /token with Basic answered {basic.status_code}: check the user and access token")
        refreshed = self.request("token", "POST", f"{self.url}/token", data={
            "grant_type": "refresh_token", "refresh_token": basic.json()["refresh_token"], "service": "dockless",
            "scope": f"repository:{self.repository}:pull"})
        if refreshed.status_code != 200:
            raise Failed(f"the refresh grant answered {refreshed.status_code}: docker login would not stay logged in")
        pull_only = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
        refused = self.request("blob upload", "POST", self.v2("blobs/uploads/"), headers=pull_only)
        if refused.status_code != 401 or 'error="insufficient_scope"' not in refused.headers.get("WWW-Authenticate", ""):
            raise Failed(f"a pull-only token pushing answered {refused.status_code}, not 401 insufficient_scope")
        return "Basic, refresh grant, insufficient scope"

    def check_push(self) -> str:
        layers = [os.urandom(150_000), os.urandom(60_000)]
        chunked = self.upload(layers[0], chunked=True)
        if chunked.status_code == 411:
            raise Failed("the account refuses a chunked PATCH (411): docker, podman and skopeo push each layer as "
                         "one, so push through `dockless gateway` or with `dockless push`, and run the local stack "
                         "as this account behaves: dockless serve --chunked-bodies refused")
        if chunked.status_code != 201:
            raise Failed(f"a chunked PATCH then PUT answered {chunked.status_code} {_error_of(chunked).get('code')}: "
                         "the body did not reach the function byte-exact; check binaryMediaTypes */* on the API and "
                         "that CloudFront forwards chunked bodies")
        answer, manifest = self.put_manifest("v1", layers)
        if answer.status_code != 201:
            raise Failed(f"the manifest PUT answered {answer.status_code}: {_error_of(answer).get('message')}")
        self.pushed = {"manifest": manifest, "digest": answer.headers.get(spec.CONTENT_DIGEST_HEADER),
                       "layers": layers}
        return f"{self.repository}:v1 {self.pushed['digest']}; a chunked PATCH arrives whole"

    def _pushed(self) -> dict:
        if not self.pushed:
            raise Skipped("needs the push")
        return self.pushed

    def check_manifest_head(self) -> str:
        pushed = self._pushed()
        answer = self.request("manifest HEAD", "HEAD", self.v2("manifests/v1"), headers=self.push_scope())
        headers = {"digest": answer.headers.get(spec.CONTENT_DIGEST_HEADER),
                   "length": answer.headers.get("Content-Length"), "type": answer.headers.get("Content-Type")}
        if answer.status_code != 200 or headers != {"digest": pushed["digest"], "length": str(len(pushed["manifest"])),
                                                    "type": OCI_MANIFEST}:
            raise Failed(f"HEAD answered {answer.status_code} {headers}: clients need digest, type and the "
                         "manifest's length in one answer (containerd refuses length 0); the edge function must "
                         "restore Content-Length: redeploy the edge stack")
        return "digest, type and length in one answer"

    def check_blob_get(self) -> str:
        pushed = self._pushed()
        layer = pushed["layers"][1]
        answer = self.request("blob GET", "GET", self.v2(f"blobs/{sha256(layer)}"), headers=self.push_scope())
        location = answer.headers.get("Location", "")
        host = urlsplit(location).hostname or ""
        if answer.status_code != 307:
            raise Failed(f"a blob GET answered {answer.status_code}, not 307 to the bucket")
        if host.endswith(".s3.amazonaws.com") or host == "s3.amazonaws.com":
            raise Failed(f"the presigned URL names S3's global endpoint ({host}): new buckets outside us-east-1 "
                         "and opt-in regions fail; redeploy (the app signs regional URLs)")
        fetched = self.request("blob fetch", "GET", location)
        if fetched.status_code != 200 or fetched.content != layer:
            raise Failed(f"the presigned URL answered {fetched.status_code} with other bytes")
        return f"307 to {host}"

    def check_blob_gate(self) -> str:
        """A pull token asked for after the push lists its blobs: the edge serves them from the
        bucket (DESIGN.md §1a, the blob gate), and passes a digest the repository does not link
        on to the function, which refuses it."""
        layer = self._pushed()["layers"][0]
        pull = self.token(f"repository:{self.repository}:pull")
        answer = self.request("blob gate", "GET", self.v2(f"blobs/{sha256(layer)}"), headers=pull)
        local = f"dockless-local.cloudfront.net (CloudFront {LOCAL_GATE})" in answer.headers.get("Via", "")
        if answer.status_code == 200 and answer.content == layer:
            said = "200 from the bucket at the edge"
        elif answer.status_code == 307 and local:
            said = "the local front door's gate: 307 to the bucket"
        else:
            raise Failed(f"a blob GET with a pull token answered {answer.status_code}, not the bytes from the bucket: "
                         "the blob gate did not serve it; check the BlobGate function, the distribution's blobs "
                         "origin (origin access control) and the bucket policy, then redeploy")
        unlinked = self.request("blob gate", "GET", self.v2(f"blobs/{sha256(os.urandom(64))}"), headers=pull)
        if unlinked.status_code != 404 or _error_of(unlinked).get("code") != "BLOB_UNKNOWN":
            raise Failed(f"a digest the repository does not link answered {unlinked.status_code}, not the function's "
                         "404 BLOB_UNKNOWN: the gate must pass what its token does not list on to the function")
        return f"{said}; an unlinked digest goes on to the function"

    def check_direct_upload(self) -> str:
        auth = self.push_scope()
        signed, other = os.urandom(50_000), os.urandom(50_000)
        started = self.request("blob upload", "POST", self.v2("blobs/uploads/"), headers=auth)
        upload_id = started.headers.get(spec.UPLOAD_UUID_HEADER, "")
        plan = self.request("direct", "POST", f"{self.url}/dockless/v1/{self.repository}/uploads/{upload_id}/direct",
                            json={"digest": sha256(signed), "size": len(signed)}, headers=auth)
        if plan.status_code != 200:
            raise Failed(f"the direct-upload extension answered {plan.status_code}")
        refused = self.request("bucket PUT", "PUT", plan.json()["url"], data=other, headers=plan.json()["headers"])
        self.request("blob upload", "DELETE", self.v2(f"blobs/uploads/{upload_id}"), headers=auth)
        if refused.status_code < 400:
            raise Failed(f"S3 accepted bytes other than the ones signed for ({refused.status_code}): a presigned PUT "
                         "must sign x-amz-checksum-sha256")
        return f"S3 refused them ({refused.status_code})"

    def check_gateway(self) -> str:
        from dockless.gateway.server import Gateway, make_server
        size = BIG_LAYER_BYTES if self.big else GATEWAY_LAYER_BYTES
        gateway = Gateway(self.url)
        gateway.bucket.verify = self.verify
        server = make_server(gateway, "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        local = f"http://127.0.0.1:{server.server_address[1]}/v2/{self.repository}"
        try:
            with tempfile.TemporaryFile() as layer:
                hasher = hashlib.sha256()
                for _ in range(size // spec.MiB):
                    piece = os.urandom(spec.MiB)
                    hasher.update(piece)
                    layer.write(piece)
                digest = "sha256:" + hasher.hexdigest()
                layer.seek(0)
                auth = self.push_scope()
                location = self.request("blob upload", "POST", f"{local}/blobs/uploads/", headers=auth).headers["Location"]
                patched = self.request("gateway", "PATCH", location, data=layer, headers=auth, timeout=3600)
                done = self.request("gateway", "PUT", patched.headers.get("Location", location),
                                    params={"digest": digest}, headers=auth, timeout=3600)
            if done.status_code != 201:
                raise Failed(f"a {size >> 20} MiB layer through a gateway answered {done.status_code} "
                             f"{done.text[:120]!r}")
            head = self.request("blob HEAD", "HEAD", self.v2(f"blobs/{digest}"), headers=auth)
            if head.status_code != 200 or head.headers.get("Content-Length") != str(size):
                raise Failed(f"the gateway's layer is not served ({head.status_code})")
        finally:
            server.shutdown()
            server.server_close()
        return f"{size >> 20} MiB straight to the bucket" + (" (multipart)" if self.big else "")

    def check_error_caching(self) -> str:
        tag = f"cache-{secrets.token_hex(4)}"
        auth = self.push_scope()
        before = self.request("manifest HEAD", "HEAD", self.v2(f"manifests/{tag}"), headers=auth)
        if before.status_code != 404:
            raise Failed(f"a HEAD of a new tag answered {before.status_code}, not 404")
        started = time.monotonic()
        if self.put_manifest(tag, [os.urandom(1000)])[0].status_code != 201:
            raise Failed("the push between the two HEADs failed")
        after = self.request("manifest HEAD", "HEAD", self.v2(f"manifests/{tag}"), headers=auth)
        elapsed = time.monotonic() - started
        if after.status_code != 200:
            raise Failed(f"the same HEAD {elapsed:.1f} s after the push answered {after.status_code}: the 404 was "
                         "cached; the distribution needs ErrorCachingMinTTL 0 for every error code (the stack sets "
                         "it: redeploy) and the API sends Cache-Control: no-store")
        return f"200 {elapsed:.1f} s after a 404" + ("" if elapsed < ERROR_CACHING_WINDOW_SECONDS else " (slow)")

    def check_signatures(self) -> str:
        pushed = self._pushed()
        listed = self.request("signatures", "GET", f"{self.url}/extensions/v2/{self.repository}/signatures/"
                                                   f"{pushed['digest']}", headers=self.push_scope())
        if listed.status_code != 200 or "signatures" not in listed.json():
            raise Failed(f"the signature extension answered {listed.status_code}")
        keys = self.request("keys", "GET", f"{self.url}/keys/_registry/KEYS")
        if keys.status_code != 200:
            raise Failed(f"/keys/_registry/KEYS answered {keys.status_code}")
        return f"{len(listed.json()['signatures'])} signature(s); registry KEYS {len(keys.content)} bytes"

    CHECKS = [("challenge", check_challenge), ("origin", check_origin), ("unknown route", check_unknown_route),
              ("token", check_token), ("body limit", check_body_limit), ("runtime", check_runtime),
              ("timeout", check_timeout), ("throttling", check_throttling), ("push", check_push),
              ("manifest HEAD", check_manifest_head), ("blob GET", check_blob_get), ("blob gate", check_blob_gate),
              ("direct upload", check_direct_upload), ("gateway", check_gateway),
              ("error caching", check_error_caching), ("signatures", check_signatures)]

    # --- running -------------------------------------------------------------------------------

    def run(self, names: Optional[List[str]] = None) -> List[Verdict]:
        """Every check in order (or those named), then the clean-up."""
        verdicts = []
        try:
            for name, check in self.CHECKS:
                if names is not None and name not in names:
                    continue
                try:
                    verdict = Verdict(name, "ok", check(self))
                except Skipped as skipped:
                    verdict = Verdict(name, "skip", str(skipped))
                except Failed as failed:
                    verdict = Verdict(name, "FAIL", str(failed))
                except (requests.RequestException, KeyError, ValueError) as broken:
                    verdict = Verdict(name, "FAIL", f"{type(broken).__name__}: {broken}")
                self.say(verdict.line())
                verdicts.append(verdict)
        finally:
            self.clean_up()
        return verdicts

    def clean_up(self) -> None:
        """Delete the check's repository whole (an admin's delete: tags, manifests, links and its
        catalog entry at once); a caller who is no admin deletes its manifests by digest, then
        its blobs' links, and is told what may be left."""
        try:
            deleted = self.request("cleanup", "DELETE", f"{self.url}/dockless/admin/v1/repositories",
                                   params={"name": self.repository}, headers=self.token("registry:admin:*"))
        except (requests.RequestException, Failed):
            deleted = None
        if deleted is not None and deleted.status_code in (200, 404):
            return
        try:
            auth = self.push_scope()
            listed = self.request("cleanup", "GET", self.v2("tags/list"), headers=auth)
            tags = listed.json().get("tags", []) if listed.status_code == 200 else []
            for tag in tags:
                head = self.request("cleanup", "HEAD", self.v2(f"manifests/{tag}"), headers=auth)
                manifest = self.request("cleanup", "GET", self.v2(f"manifests/{tag}"), headers=auth)
                digest = head.headers.get(spec.CONTENT_DIGEST_HEADER)
                if manifest.status_code == 200:
                    document = manifest.json()
                    for blob in [document["config"], *document["layers"]]:
                        self.request("cleanup", "DELETE", self.v2(f"blobs/{blob['digest']}"), headers=auth)
                if digest:
                    self.request("cleanup", "DELETE", self.v2(f"manifests/{digest}"), headers=auth)
        except (requests.RequestException, Failed, ValueError, KeyError):
            pass
        self.say(f"note: {self.repository} may still be in the catalog: only an admin deletes a repository whole "
                 f"(dockless repo delete {self.repository} --yes)")

    def timing_table(self) -> List[str]:
        rows = [f"{'call':<16} {'n':>4} {'p50 ms':>8} {'p95 ms':>8}"]
        for kind, values in sorted(self.timings.items()):
            ordered = sorted(values)
            p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
            rows.append(f"{kind:<16} {len(values):>4} {statistics.median(values):>8.0f} {p95:>8.0f}")
        return rows

