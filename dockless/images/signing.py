"""`dockless sign` and `dockless verify`: atomic signatures made and checked with the local gpg,
through the registry's signature extension, in the format skopeo and podman verify; and, for
`verify`, cosign's signatures by key or keyless (the `sha256-<hex>.sig` manifest), checked here
with the same code the registry's verified mode uses (chalicelib/signing/cosign.py, keyless.py)."""
import base64
import hashlib
import json
import secrets
import time
from typing import Dict, List, Optional

import gnupg
import requests

from chalicelib.signing import bundles, cosign, keyless, notation
from chalicelib.signing.gpg import temporary_home
from dockless.client.registry import ClientError, RegistryClient
from chalicelib.oci.reference import Reference

ATOMIC_TYPE = "atomic container signature"


def payload(digest: str, identity: str) -> bytes:
    return json.dumps({"critical": {"type": ATOMIC_TYPE, "image": {"docker-manifest-digest": digest},
                                    "identity": {"docker-reference": identity}},
                       "optional": {"creator": "dockless", "timestamp": int(time.time())}}).encode()


def sign(client: RegistryClient, reference: Reference, fingerprint: str, identity: Optional[str],
         gpg_home: Optional[str] = None) -> str:
    """Sign the manifest REF names with the local key and upload the signature; its name."""
    # Signing writes; asking for push now also lets the read through a repository in verified mode.
    client.will_push(reference.name)
    digest = client.get_manifest(reference.name, reference.reference).digest
    identity = identity or f"{reference.host}/{reference.name}:{reference.tag}"
    # An opaque binary signed message: python-gnupg's sign() would clearsign by default.
    signed = gnupg.GPG(gnupghome=gpg_home).sign(payload(digest, identity), keyid=fingerprint, binary=True,
                                                clearsign=False, detach=False)
    if not signed.data:
        raise ClientError(f"gpg could not sign with {fingerprint}: {signed.status or signed.stderr[-200:]}")
    name = f"{digest}@{secrets.token_hex(16)}"
    client.request("PUT", f"/extensions/v2/{reference.name}/signatures/{digest}", (201,), "storing the signature",
                   json={"schemaVersion": 2, "type": "atomic", "name": name,
                         "content": base64.b64encode(signed.data).decode()})
    return name


def grouped(fingerprint: str) -> str:
    """gpg's way of showing a fingerprint: `062B 4DAF … 9C7B  1A2C …`."""
    groups = [fingerprint[i:i + 4] for i in range(0, len(fingerprint), 4)]
    return " ".join(groups[:5]) + "  " + " ".join(groups[5:])


def verify(client: RegistryClient, reference: Reference, keyring: bytes) -> List[dict]:
    """Every signature of the manifest, checked against the armoured keys in `keyring`."""
    # Verified mode serves what is not signed yet only to who may push (README, "Signing"): a
    # caller who may push checks it, one who may only pull is told why it is refused.
    client.will_push(reference.name)
    digest = client.get_manifest(reference.name, reference.reference).digest
    response = client.request("GET", f"/extensions/v2/{reference.name}/signatures/{digest}", (200,),
                              "fetching signatures")
    expected_identity = f"{reference.host}/{reference.name}:{reference.tag}"
    results = []
    with temporary_home() as gpg:
        trusted = set(gpg.import_keys(keyring.decode("utf-8", "replace")).fingerprints)
        for entry in response.json()["signatures"]:
            checked = gpg.decrypt(base64.b64decode(entry["content"]))
            fingerprint = getattr(checked, "pubkey_fingerprint", None) or checked.fingerprint
            try:
                critical = json.loads(bytes(checked.data))["critical"]
            except (ValueError, KeyError):
                critical = {}
            results.append({
                "name": entry["name"], "fingerprint": fingerprint, "key_id": checked.key_id,
                "valid": bool(checked.valid) and fingerprint in trusted,
                "digest_matches": critical.get("image", {}).get("docker-manifest-digest") == digest,
                "identity": critical.get("identity", {}).get("docker-reference"),
                "identity_matches": reference.digest != "" or
                critical.get("identity", {}).get("docker-reference") == expected_identity})
    return results


def published_trust(client: RegistryClient, repository: str) -> Dict[str, List[str]]:
    """The sigstore trusted roots, keyless identities, notation root certificates (of each of its
    trust stores) and trusted identities the registry publishes for a namespace (/keys/<namespace>: the listing, then each
    <FPR>.json, .crt or .txt), by kind."""
    namespace = repository.split("/", 1)[0]
    listing = client.request("GET", f"/keys/{namespace}", (200,), f"listing the keys of {namespace}",
                             params={"repository": repository}).json()["keys"]
    found: Dict[str, List[str]] = {kind: [] for kind in (keyless.ROOT, keyless.IDENTITY, notation.IDENTITY,
                                                         *notation.STORES.values())}
    suffixes = {notation.IDENTITY: "txt", **{store: "crt" for store in notation.STORES.values()}}
    for item in listing:
        if item.get("kind") in found:
            suffix = suffixes.get(item["kind"], "json")
            found[item["kind"]].append(client.request("GET", f"/keys/{namespace}/{item['fingerprint']}.{suffix}",
                                                      (200,), f"fetching {item['fingerprint']}.{suffix}").text)
    return found


def _trust(public_keys: str, roots: List[str], identities: List[str]):
    """(cosign keys by fingerprint, trusted roots, keyless identities) from their texts."""
    keys = {key.fingerprint: key.pem for key in cosign.public_keys(public_keys)} \
        if cosign.holds_public_keys(public_keys) else {}
    try:
        return keys, [keyless.parse_root(text) for text in roots], [keyless.parse_identity(t) for t in identities]
    except keyless.TrustRefused as error:
        raise ClientError(f"keyless trust: {error}") from None


def _small_blob(client: RegistryClient, reference: Reference, blob: str, limit: int) -> Optional[bytes]:
    try:
        answer = client.request("GET", f"/v2/{reference.name}/blobs/{blob}", (200,), f"fetching {blob}", timeout=60)
    except (ClientError, requests.RequestException):
        return None
    return answer.content[:limit + 1]


def verify_cosign(client: RegistryClient, reference: Reference, public_keys: str, roots: List[str] = (),
                  identities: List[str] = ()) -> List[dict]:
    """Every cosign signature of the manifest (each simple-signing layer of its `.sig` manifest),
    checked against the PEM public keys in `public_keys`, and a keyless one against the sigstore
    trusted `roots` and keyless `identities` (JSON texts); with none, each counts as not trusted."""
    client.will_push(reference.name)
    digest = client.get_manifest(reference.name, reference.reference).digest
    tag = cosign.signature_tag(digest)
    try:
        signatures = client.get_manifest(reference.name, tag)
    except ClientError:
        return []
    trusted, parsed_roots, parsed_identities = _trust(public_keys, roots, identities)

    def read_blob(blob: str) -> Optional[bytes]:
        return _small_blob(client, reference, blob, cosign.MAX_PAYLOAD_BYTES)

    wanted = f"{reference.host}/{reference.name}"
    results = []
    for number, entry in enumerate(cosign.entries(json.loads(signatures.body), read_blob), start=1):
        claimed = cosign.claims(entry.payload) or ("", "")
        if entry.certificate is None:
            signer, label = cosign.signer(entry, trusted), None
        else:
            proof = keyless.verify(entry, parsed_roots)
            identity = keyless.signer(proof, parsed_identities)
            signer, label = (identity.fingerprint if identity else None), keyless.named(entry.certificate)
        results.append({
            "name": f"{tag} #{number}", "format": "cosign-keyless" if label else "cosign", "fingerprint": signer,
            "certificate": label, "key_id": None, "valid": signer is not None,
            "digest_matches": claimed[0] == digest, "identity": claimed[1],
            "identity_matches": claimed[1] == wanted or (reference.digest == "" and claimed[1] == f"{wanted}:{reference.tag}")})
    return results


def _referrer_layers(client: RegistryClient, reference: Reference, digest: str, wanted, layer_type,
                     limit: int):
    """(referrer digest, media type, bytes) of each layer `layer_type` accepts of the referrers of
    `digest` whose artifactType `wanted` accepts, each checked against its digest."""
    listing = client.request("GET", f"/v2/{reference.name}/referrers/{digest}", (200,), "listing referrers").json()
    for referrer in listing.get("manifests") or []:
        if not wanted(referrer.get("artifactType")):
            continue
        for layer in json.loads(client.get_manifest(reference.name, referrer["digest"]).body).get("layers") or []:
            data = _small_blob(client, reference, layer.get("digest", ""), limit) \
                if layer_type(layer.get("mediaType")) else None
            if data is not None and "sha256:" + hashlib.sha256(data).hexdigest() == layer.get("digest"):
                yield referrer["digest"], layer["mediaType"], data


def verify_bundles(client: RegistryClient, reference: Reference, public_keys: str, roots: List[str] = (),
                   identities: List[str] = ()) -> List[dict]:
    """Every sigstore bundle among the manifest's referrers (`cosign sign --new-bundle-format`),
    checked as verified mode checks it (chalicelib/signing/bundles.py)."""
    client.will_push(reference.name)
    digest = client.get_manifest(reference.name, reference.reference).digest
    keys, parsed_roots, parsed_identities = _trust(public_keys, roots, identities)
    results = []
    for referrer, _, data in _referrer_layers(client, reference, digest, bundles.is_bundle, bundles.is_bundle,
                                              bundles.MAX_BUNDLE_BYTES):
        bundle = bundles.parse(data)
        if bundle is None:
            continue
        signer = bundles.signer(bundle, keys, parsed_roots, parsed_identities)
        pem = bundles.certificate_pem(bundle)
        results.append({
            "name": f"bundle {referrer}", "format": "sigstore-bundle", "fingerprint": signer,
            "certificate": keyless.named(pem) if pem else None, "key_id": None, "valid": signer is not None,
            "digest_matches": bundle.vouched_digest == digest, "identity": bundle.vouched_digest or "an attestation",
            "identity_matches": True})
    return results


def verify_notation(client: RegistryClient, reference: Reference, stores: Dict[str, List[str]],
                    identities: List[str] = ()) -> List[dict]:
    """Every notation signature among the manifest's referrers, checked against the trust stores'
    root certificates (PEM texts by notation.STORES' kinds) and trusted identities as verified
    mode checks it (chalicelib/signing/notation.py)."""
    client.will_push(reference.name)
    digest = client.get_manifest(reference.name, reference.reference).digest
    try:
        trusted = notation.TrustStores.by_kind({kind: [root for text in texts for root in notation.roots(text)]
                                                for kind, texts in stores.items() if kind in notation.STORES.values()})
        parsed_identities = [notation.parse_identity(text) for text in identities]
    except notation.Refused as error:
        raise ClientError(f"notation trust store: {error}") from None
    results = []
    for referrer, media_type, data in _referrer_layers(client, reference, digest,
                                                       lambda t: t == notation.ARTIFACT_TYPE,
                                                       lambda t: t in (notation.JWS, notation.COSE),
                                                       notation.MAX_ENVELOPE_BYTES):
        envelope = notation.parse_any(media_type, data)
        if envelope is None:
            continue
        signer = notation.verify(envelope, trusted, digest, time.time(), parsed_identities)
        results.append({
            "name": f"notation {referrer}", "format": "notation", "fingerprint": signer,
            "certificate": notation.named(envelope), "key_id": None, "valid": signer is not None,
            "digest_matches": envelope.target == digest, "identity": envelope.target or "", "identity_matches": True})
    return results
