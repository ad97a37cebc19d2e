"""What the specs and the platform fix: media types, header names, grammars and limits.

Sources: OCI distribution-spec v1.1.1 (spec.md), OCI image-spec v1.1 (manifest.md, image-index.md,
descriptor.md), Docker image manifest v2 schema 2, and AWS service quotas as cited by each limit.
"""
import re

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

# --- media types --------------------------------------------------------------------------------
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
# Manifests whose entries (`manifests[]`) are other manifests of the same repository.
INDEX_MEDIA_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
# Manifests whose entries (`config`, `layers[]`) are blobs of the same repository.
IMAGE_MEDIA_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
MANIFEST_MEDIA_TYPES = INDEX_MEDIA_TYPES | IMAGE_MEDIA_TYPES
# The Accept header of a client that takes any manifest this registry stores.
MANIFEST_ACCEPT = ", ".join(sorted(MANIFEST_MEDIA_TYPES))
JSON = "application/json"
OCTET_STREAM = "application/octet-stream"

# --- headers ------------------------------------------------------------------------------------
API_VERSION_HEADER = "Docker-Distribution-Api-Version"
API_VERSION = "registry/2.0"
CONTENT_DIGEST_HEADER = "Docker-Content-Digest"
UPLOAD_UUID_HEADER = "Docker-Upload-UUID"
# containers/image looks for it on the API version check to use the signature extension.
SIGNATURES_HEADER = "X-Registry-Supports-Signatures"
OCI_SUBJECT_HEADER = "OCI-Subject"
# Deployed front door: CloudFront sends ORIGIN_SECRET_HEADER to API Gateway (the app refuses
# requests without it), and a CloudFront Function passes the viewer's Host as VIEWER_HOST_HEADER
# (API Gateway needs its own Host).
ORIGIN_SECRET_HEADER = "X-Dockless-Origin"
VIEWER_HOST_HEADER = "X-Forwarded-Host"
OCI_FILTERS_HEADER = "OCI-Filters-Applied"
# Every answer of the API, its front door and the gateway: nothing of a registry's may be cached by
# a CDN or proxy between it and its clients (an answer depends on the caller and changes with pushes).
CACHE_CONTROL = "no-store"

# --- token scopes (distribution docs/spec/auth/scope.md) ---------------------------------------
# The actions a token grants on a repository.
PULL, PUSH, DELETE = "pull", "push", "delete"

# --- grammars (distribution-spec "Pulling manifests" and image-spec descriptor.md) ---------------
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
# distribution limits a repository name to 255 characters; clients limit host + "/" + name to 255.
NAME_MAX_LENGTH = 255
# How many path components a name may have. Routes are registered per depth (see routes/dispatch.py),
# because Chalice's router matches a fixed number of segments; 8 covers GitLab-style nesting.
NAME_MAX_COMPONENTS = 8
# Path components that are also route keywords. A name containing one would route differently in
# API Gateway (static segments win, without backtracking) than in the local stack, so it is refused.
NAME_RESERVED_COMPONENTS = frozenset({"blobs", "manifests", "tags", "referrers", "uploads", "signatures",
                                      "history", "diff"})
# RFC 6838 §4.2: type "/" subtype, each a restricted name of at most 127 characters, then at most
# eight parameters (RFC 9110 §8.3.1: `;` name `=` token or quoted string), as sigstore's
# `application/vnd.dev.sigstore.bundle+json;version=0.2` has one.
_RESTRICTED_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
_PARAMETER = r"[ \t]*;[ \t]*[A-Za-z0-9!#$%&'*+.^_`|~-]{1,127}=(?:[A-Za-z0-9!#$%&'*+.^_`|~-]{1,127}|\"[^\"\\\r\n]{0,127}\")"
MEDIA_TYPE_RE = re.compile(f"{_RESTRICTED_NAME}/{_RESTRICTED_NAME}(?:{_PARAMETER}){{0,8}}")
TAG_RE = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
# The tags that belong to manifest sha256:<hex> rather than name an image: cosign's (and
# containers/image's sigstore attachments') signatures (.sig), attestations (.att) and SBOM (.sbom),
# and the referrers tag schema's fallback index (no suffix; OCI distribution-spec). Never immutable
# (cosign adds a signature by pushing the tag again), kept and collected with the manifest they
# belong to; a signature artifact among them is served unsigned in verified mode.
ATTACHED_TAG_RE = re.compile(r"sha256-[0-9a-f]{64}(\.(sig|att|sbom))?")
DIGEST_RE = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
SHA256_HEX_RE = re.compile(r"[a-f0-9]{64}")
SHA256_BASE64_RE = re.compile(r"[A-Za-z0-9+/]{43}=")
SUPPORTED_DIGEST_ALGORITHM = "sha256"
# Our own identifiers: upload sessions (a UUID's hex), principals (users, robots, teams), credential
# ids (the id part of dkl_<id>_<secret>), OpenPGP fingerprints (v4: 40 hex digits).
UPLOAD_ID_RE = re.compile(r"[0-9a-f]{32}")
PRINCIPAL_NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
CREDENTIAL_ID_RE = re.compile(r"[0-9a-f]{16}")
# A robot's trust of a federated identity (chalicelib/access/federation.py).
TRUST_ID_RE = re.compile(r"[0-9a-f]{16}")
WEBHOOK_ID_RE = re.compile(r"wh_[0-9a-f]{16}")
DELIVERY_ID_RE = re.compile(r"[0-9]{13}\.msg_[0-9a-f]{32}")
# An OpenPGP key's fingerprint (40 hex digits), or a cosign key's: the SHA-256 of its DER public key (64).
FINGERPRINT_RE = re.compile(r"[0-9A-Fa-f]{40}|[0-9A-Fa-f]{64}")
# `last` of a history page: an event's sort key, "<ISO time>#<request id>#<n>".
HISTORY_CURSOR_RE = re.compile(r"[0-9T:.+-]{1,40}#[A-Za-z0-9_.:-]{1,100}#[0-9]{1,6}")
# A namespace is a name's first component; `_registry` holds the registry's own keys.
NAMESPACE_RE = re.compile(rf"{_COMPONENT}|_registry")

# --- front door ---------------------------------------------------------------------------------
# API Gateway's binary media types: every request body reaches Lambda base64-encoded, byte-exact.
# docker and skopeo send layer chunks without a Content-Type, which API Gateway would otherwise
# pass as (mangled) UTF-8 text. The app's own `binary_types` stay narrow (runtime/application.py).
GATEWAY_BINARY_MEDIA_TYPES = ("*/*",)

# --- platform limits ----------------------------------------------------------------------------
# API Gateway refuses request bodies above 10 MB before Lambda runs (API Gateway quotas).
FRONT_DOOR_MAX_BODY_BYTES = 10 * MiB
# Lambda's synchronous invocation payload is 6 MB (Lambda quotas); the whole event counts, and a
# binary body arrives base64-encoded (4/3 of its size).
LAMBDA_MAX_EVENT_BYTES = 6 * MiB
# API Gateway ends an integration request after 29 s (API Gateway quotas, default).
FRONT_DOOR_TIMEOUT_SECONDS = 29
# The largest body the API itself accepts: 4 MiB base64-encodes to 5.33 MiB, leaving room under
# the 6 MiB event for headers and the rest of the event.
API_MAX_BODY_BYTES = 4 * MiB
# The largest blob the API assembles from chunks. Completion re-reads every staged chunk and writes
# the blob once (2 x 256 MiB at >= 25 MB/s in-region is about 20 s), inside the 29 s timeout.
API_MAX_UPLOAD_BYTES = 256 * MiB
# Manifests above 4 MiB are refused (distribution-spec "Pushing manifests": registries SHOULD
# accept at least 4 MiB).
MANIFEST_MAX_BYTES = 4 * MiB
# Manifests up to this size are kept inside their DynamoDB item (items are capped at 400 KB and
# every 4 KB costs a read unit), so a manifest GET needs no S3 read.
MANIFEST_INLINE_MAX_BYTES = 32 * KiB
# S3 multipart: parts of 5 MiB at least (except the last), at most 10,000 parts; one PUT <= 5 GiB.
S3_MIN_PART_BYTES = 5 * MiB
S3_MAX_PARTS = 10_000
S3_MAX_SINGLE_PUT_BYTES = 5 * GiB
# Preferred part size of a direct multipart upload: 64 MiB keeps a 100 GiB blob at 1,600 parts.
DIRECT_PART_BYTES = 64 * MiB
# Part URLs handed out per request, so a response stays small (each URL is about 600 bytes).
PART_URLS_PER_REQUEST = 100
# Presigned URLs are handed out after the request is decided; they only need to outlive the start
# of the transfer they were made for.
PRESIGNED_URL_EXPIRY_SECONDS = 300
# JSON documents from clients nest at most this deep (an OCI manifest needs 5: manifest, layers,
# descriptor, annotations or platform, features); deeper ones are refused (chalicelib/oci/jsondoc.py).
JSON_MAX_DEPTH = 32
# DynamoDB TransactWriteItems takes at most 100 items.
TRANSACT_MAX_ITEMS = 100
# Pages of tags, catalog entries and referrers: default and largest size of one response.
PAGE_DEFAULT = 100
PAGE_MAX = 1000

# --- auth (distribution docs/spec/auth: token.md, jwt.md, oauth.md, scope.md) -------------------
# Access tokens (JWTs) live minutes: verifying one costs no DynamoDB read, so a revoked credential
# keeps working until the access tokens it already obtained expire.
ACCESS_TOKEN_SECONDS = 300
# Refresh tokens (docker's stored identity token) and access credentials are checked against
# DynamoDB each time they are used, so revoking a credential (or deleting its principal) stops new
# access tokens at once, for the refresh tokens made from it too; tokens already issued expire
# within ACCESS_TOKEN_SECONDS. A refresh token never outlives the credential it came from.
REFRESH_TOKEN_SECONDS = 90 * 24 * 3600
# Scopes one token request may ask for: docker asks for one to three (a push with mounts names
# the sources too); each costs part of a read, so a request cannot make the endpoint read without bound.
TOKEN_SCOPES_MAX = 32
# A credential's last use is written at most this often (its own write per use would double the
# cost of every token request and of every request made with Basic credentials).
CREDENTIAL_LAST_USE_RESOLUTION_SECONDS = 3600
# Credentials: a recognisable prefix, an id to look them up by, and 256 random bits.
CREDENTIAL_PREFIX = "dkl_"
CREDENTIAL_SECRET_BYTES = 32

BIG_BLOB_ADVICE = (
    "push large layers through `dockless gateway` or with `dockless push`, which send layer bytes "
    "straight to the bucket"
)

# --- repository settings (ours) -----------------------------------------------------------------
# How long a manifest a tag named stays restorable after the tag moved or was deleted, unless a
# namespace or repository says otherwise (0: not kept).
TIME_MACHINE_DAYS_DEFAULT = 14
TIME_MACHINE_DAYS_MAX = 3650
# Immutable-tag patterns: a tag's characters plus the wildcards * and ?; at most this many.
IMMUTABLE_TAG_PATTERN_RE = re.compile(r"[a-zA-Z0-9_.*?-]{1,128}")
IMMUTABLE_TAG_PATTERNS_MAX = 20
# The repositories a trusted key or root may be limited to (`dockless key add --repository`): a
# name within the namespace, `*` standing for any run of characters.
TRUST_SCOPE_RE = re.compile(r"[a-z0-9*](?:[a-z0-9._*-]|/(?=[a-z0-9*])){0,200}")
TRUST_SCOPES_MAX = 16

# --- pull-through cache namespaces (ours, chalicelib/pullthrough/proxy.py) ----------------------------------
# A cached tag is served without asking the upstream for this long after it was fetched or checked.
CACHE_FRESHNESS_SECONDS_DEFAULT = 6 * 3600
# The largest blob a cache copies from its upstream within one request: the copy (upstream to
# bucket, hashed on the way) must finish inside the API function's 30 s (>= 25 MB/s in-region).
CACHE_FILL_MAX_BYTES = 512 * MiB
# All the upstream requests one registry request makes (token, manifest, blob with its body) end
# within this time, whatever the upstream sends and how slowly: inside the front door's 29 s.
UPSTREAM_BUDGET_SECONDS = 25
# A request and the redirects it follows: at most this many answers.
UPSTREAM_MAX_REDIRECTS = 3
# At most this many requests of one process (a Lambda container, the local stack) fetch from one
# cache namespace's upstream at once; more are answered 429 with UPSTREAM_BUSY_RETRY_SECONDS.
CACHE_FETCHES_PER_NAMESPACE = 4
UPSTREAM_BUSY_RETRY_SECONDS = 5
# Mirror rules (chalicelib/pullthrough/mirror_rules.py): their names.
MIRROR_RULE_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
# An OSV advisory id (CVE-2024-1234, GHSA-xxxx-xxxx-xxxx, DSA-5678-1, PYSEC-2024-1, …).
ADVISORY_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
# One platform of an index, as `dockless mirror --platforms` and a rule name it: os/arch[/variant].
PLATFORM_RE = re.compile(r"[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?")
# The Warning (RFC 7234 110, "Response is Stale") on a tag served while the upstream is unreachable.
CACHE_STALE_WARNING = '110 dockless "Response is Stale: the upstream registry did not answer"'

# --- console sign-in (ours, chalicelib/access/throttle.py) -----------------------------------------
# Failed sign-ins allowed per principal name and per client address in one window; past either,
# sign-ins are answered 429 with Retry-After until the window ends (a right token included).
SIGNIN_FAILURES_PER_PRINCIPAL = 10
SIGNIN_FAILURES_PER_ADDRESS = 30
SIGNIN_WINDOW_SECONDS = 15 * 60
