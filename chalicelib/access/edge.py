"""Blob GETs the edge answers without the function (DESIGN.md §1a, "Blob GETs that never wake a
function"): what an access token carries for it, and the decision the edge makes from it.

A token for pull on one repository carries an `edge` claim: the repository, the token's expiry,
the blobs the repository linked when the token was issued (those of the image manifest pushed
last), each as its digest's first 128 bits and where its bytes are (the rest of the digest for
the content-addressed key, or the upload's id for a blob a direct upload left at a key of its
own), and an HMAC of it all under the edge secret, a key of its own that signs nothing else (the
token key never leaves the functions). The edge (infra/edge/blob_gate.js deployed, the local
front door here, each deciding as `admits` does) sends `GET /v2/<repository>/blobs/sha256:<hex>`
straight to the bucket key the claim names when the claim is for that repository, unexpired,
authentic and lists the digest; anything else goes on to the function, which decides as it
always did. The edge refuses nothing: it only skips the function.

The set a token copies (the repository's edge item) is written after a manifest push, unless a
link was deleted since the push read its links, and every deleted link leaves it in the deletion's
own transaction (quota.delete_link): a token never lists a blob its repository no longer links
when the token is issued.
"""
from __future__ import annotations
import base64
import hashlib
import hmac
import json
import logging
import re
from typing import Iterable, List, Optional, Tuple, Type

from pynamodb.exceptions import UpdateError

from chalicelib.metadata import keys
from chalicelib.metadata.models import BlobLink, Repository, read_together
from chalicelib.storage import paths

LOG = logging.getLogger("dockless.edge")
# An entry: a digest's first 128 bits in hex (finding another blob with the same prefix is a
# second preimage of a 128-bit hash, not feasible), then 32 hex characters of where its bytes are.
PREFIX_HEX = 32
ENTRY_HEX = 64
# At most this many blobs per token (a 20-layer image needs 21): about 4 KB of token.
BLOBS_MAX = 48
CONTEXT = "dockless-edge-v1"
TOKEN_MAX_CHARS = 8192
_BASE64URL_RE = re.compile(r"[A-Za-z0-9_-]*")
BLOB_PATH_RE = re.compile(r"/v2/(?P<name>[a-z0-9._/-]+)/blobs/sha256:(?P<hex>[a-f0-9]{64})")
_DIRECT_KEY_RE = re.compile(re.escape(paths.direct_blob_key("")) + r"(?P<upload>[0-9a-f]{32})")


def entry(digest: str, location: str) -> Optional[str]:
    """What a token lists of a blob at `location`: the whole digest for its content-addressed key,
    the digest's prefix and the upload's id for a direct upload's key; None where the edge cannot
    serve it (another algorithm, another kind of key)."""
    algorithm, _, hex_digest = digest.partition(":")
    if algorithm != "sha256" or len(hex_digest) != 64:
        return None
    if location == paths.blob_key(digest):
        return hex_digest
    direct = _DIRECT_KEY_RE.fullmatch(location)
    return hex_digest[:PREFIX_HEX] + direct.group("upload") if direct else None


def bucket_key(listed_entry: str, hex_digest: str) -> str:
    """Where the bytes of the blob an entry lists are (the inverse of `entry`)."""
    if listed_entry == hex_digest:
        return paths.blob_key("sha256:" + hex_digest)
    return paths.direct_blob_key(listed_entry[PREFIX_HEX:])


def _mac(secret: bytes, repository: str, expires: int, blobs: str) -> str:
    message = f"{CONTEXT}\n{repository}\n{expires}\n{blobs}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def claim(secret: bytes, repository: str, expires: int, entries: Iterable[str]) -> Optional[dict]:
    """The `edge` claim of a token for pull on `repository` valid until `expires`, or None when
    there is nothing to list."""
    listed = "".join(sorted(set(entries))[:BLOBS_MAX])
    if not listed:
        return None
    return {"repo": repository, "exp": expires, "blobs": listed, "mac": _mac(secret, repository, expires, listed)}


def bearer_claims(authorization: str) -> Optional[dict]:
    """The claims of a bearer token as the edge reads them: unverified (the `edge` claim's own MAC
    is what the edge checks), None for anything that is not a token."""
    scheme, _, token = authorization.partition(" ")
    parts = token.strip().split(".")
    if scheme.lower() != "bearer" or len(parts) != 3 or len(token.strip()) > TOKEN_MAX_CHARS \
            or not _BASE64URL_RE.fullmatch(parts[1]):
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)).decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        return None
    return claims if isinstance(claims, dict) else None


def admits(secret: Optional[bytes], authorization: str, method: str, path: str, now: float) -> Optional[str]:
    """The bucket key the edge answers this request from, or None: on to the function."""
    match = BLOB_PATH_RE.fullmatch(path) if secret and method == "GET" else None
    if match is None:  # first: the local front door asks this of every request
        return None
    claims = bearer_claims(authorization)
    edge = claims.get("edge") if claims is not None else None
    if not isinstance(edge, dict):
        return None
    repository, expires, blobs, mac = (edge.get(field) for field in ("repo", "exp", "blobs", "mac"))
    if not (isinstance(repository, str) and isinstance(expires, int) and not isinstance(expires, bool)
            and isinstance(blobs, str) and isinstance(mac, str)):
        return None
    if repository != match.group("name") or now >= expires or len(blobs) % ENTRY_HEX:
        return None
    hex_digest = match.group("hex")
    found = next((blobs[start:start + ENTRY_HEX] for start in range(0, len(blobs), ENTRY_HEX)
                  if blobs[start:start + PREFIX_HEX] == hex_digest[:PREFIX_HEX]), None)
    if found is None or not hmac.compare_digest(mac, _mac(secret, repository, expires, blobs)):
        return None
    return bucket_key(found, hex_digest)


# --- the set a token copies: one item per repository -----------------------------------------


def item_key(repository: str) -> Tuple[Type[Repository], tuple]:
    """For read_together: the repository's edge item."""
    return Repository, (keys.edge_partition(repository), repository)


def listed(item: Optional[Repository]) -> List[str]:
    return sorted(item.edge_blobs or ()) if item is not None else []


def remember(repository: str, links: Iterable[Optional[BlobLink]], item: Optional[Repository]) -> None:
    """After an image manifest's push, with its links and the edge item as the push read them: its
    blobs (those the edge can name, `entry`) become the set, unless a link was deleted since. Every
    deletion raises the item's version, and the write is conditioned on the version read. A
    repository's first image has no item to read: one is made first (a deletion from then on
    moves its version; one before it shows in a second, consistent read of the links). The push
    has succeeded already: a set not written only sends the blobs through the function."""
    chosen = {}
    for link in links:
        found = entry(link.digest, link.location) if link is not None else None
        if found is not None and len(chosen) < BLOBS_MAX:
            chosen[found] = link
    if not chosen:
        return
    key = keys.edge_partition(repository), repository
    target = Repository(*key)
    try:
        if item is None:
            target.update(actions=[Repository.edge_version.set(0)], condition=Repository.name.does_not_exist())
            item = Repository(*key, edge_version=0)
            still = read_together(*[(BlobLink, (link.repo, link.digest)) for link in chosen.values()], consistent=True)
            chosen = {listed_as: link for (listed_as, link), now in zip(chosen.items(), still)
                      if now is not None and now.location == link.location}
        version = item.edge_version
        read = Repository.edge_version.does_not_exist() if version is None else Repository.edge_version == version
        target.update(actions=[Repository.edge_blobs.set(set(chosen)) if chosen else Repository.edge_blobs.remove(),
                               Repository.edge_version.set((version or 0) + 1)],
                      condition=Repository.name.exists() & read)
    except UpdateError as error:
        if error.cause_response_code != "ConditionalCheckFailedException":
            LOG.warning("the edge set of %s was not written: %s", repository, error)


def forget(txn, link: BlobLink, item: Optional[Repository]) -> None:
    """In the transaction that deletes `link`, with the repository's edge item as read before it:
    the link's entry leaves the set and the version moves (a push that read the one before writes
    nothing); where there was no item, the transaction holds only if there still is none (a push
    that wrote one meanwhile makes the deletion read again)."""
    key = keys.edge_partition(link.repo), link.repo
    if item is None:
        txn.condition_check(Repository, *key, condition=Repository.name.does_not_exist())
        return
    listed_as = entry(link.digest, link.location)
    actions = [Repository.edge_version.add(1)]
    if listed_as is not None:  # whether listed or not as read: a push may be listing it now
        actions.append(Repository.edge_blobs.delete({listed_as}))
    txn.update(Repository(*key), actions=actions)
