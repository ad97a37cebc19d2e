"""Robots that trust federated identities: a CI job's OIDC ID token as a robot's password.

`dockless robot trust ROBOT --issuer URL --audience AUD --subject PATTERN [--claim NAME=PATTERN]`
keeps a `Trust` on the robot's principal item (Principal.trusts, JSON), so the one read of the
principal the token endpoint makes anyway brings them. A CI job then runs, unmodified,
`docker login REGISTRY -u ROBOT --password-stdin <<< "$ID_TOKEN"`; `verify` decides:

  * the token is a JWS of three parts, at most MAX_TOKEN_BYTES, `alg` RS256 or ES256 only (never
    `none`, never HMAC: a public key used as an HMAC secret proves nothing), no `crit`;
  * its `iss` is exactly a trust's issuer; the issuer's keys come from its discovery document
    (`<issuer>/.well-known/openid-configuration`, whose `issuer` must be the issuer) and
    `jwks_uri`, fetched over https (http and loopback only for a loopback issuer, the local
    stack's), held to chalicelib/runtime/outbound.py's rules, bounded in time and size, cached
    KEYS_SECONDS and fetched again for an unknown `kid` at most every REFETCH_SECONDS;
  * the signature verifies with the key its `kid` names (of the alg's type: RSA of 2048 bits or
    more, EC P-256);
  * `aud` is or holds the trust's audience; `exp` is after now and `nbf`/`iat` before it, each
    with SKEW_SECONDS of slack; `sub` matches the trust's subject and every configured claim its
    pattern (`*` matches any run of characters; the claim must be a string, number or boolean).

A refusal says which condition failed (`Refused.reason`) to the audit trail only; the caller is
told "invalid credentials" as for any password. What it proves (`Proof`) names the issuer,
subject and the CI's run and workflow claims, which the access tokens carry (`fed`) so the audit
trail records them on every action they take; the tokens live no longer than the ID token.
"""
from __future__ import annotations
import base64
import binascii
import hashlib
import json
import re
import threading
import time
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple
from urllib.parse import urlsplit

from chalicelib.runtime import outbound

ALGORITHMS = ("RS256", "ES256")
SKEW_SECONDS = 60
MAX_TOKEN_BYTES = 16 * 1024
MAX_TRUSTS = 20
DISCOVERY_MAX_BYTES = 64 * 1024
JWKS_MAX_BYTES = 256 * 1024
FETCH_SECONDS = 8
KEYS_SECONDS = 600
REFETCH_SECONDS = 60
# The claims of the CI's run a proof keeps for the audit trail (GitHub Actions, GitLab, Buildkite).
RECORDED_CLAIMS = ("repository", "ref", "sha", "workflow", "job_workflow_ref", "run_id", "run_attempt", "actor",
                   "project_path", "pipeline_id", "job_id", "pipeline_slug", "build_number", "environment")
_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


class Refused(Exception):
    """An ID token no trust accepts; `reason` is for the audit trail, never for the caller."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Invalid(ValueError):
    """A trust that cannot be kept, said why (the admin API's 400)."""


def star_match(pattern: str, value: str) -> bool:
    """Whether `value` is `pattern` with each `*` standing for any run of characters."""
    return re.fullmatch(".*".join(re.escape(part) for part in pattern.split("*")), value, re.S) is not None


class Trust(NamedTuple):
    id: str
    issuer: str
    audience: str
    subject: str
    claims: Dict[str, str]

    def document(self) -> dict:
        return {"id": self.id, "issuer": self.issuer, "audience": self.audience, "subject": self.subject,
                "claims": dict(self.claims)}


def new_trust(issuer: str, audience: str, subject: str, claims: Dict[str, str]) -> Trust:
    """A trust, checked: an issuer URL (https, or http on loopback), an audience, a subject pattern
    that is not only `*`, claim patterns by name."""
    if not isinstance(issuer, str) or not outbound.secure_url(issuer) or len(issuer) > 500 \
            or urlsplit(issuer).query or urlsplit(issuer).fragment:
        raise Invalid("issuer must be the OIDC issuer's https:// URL (http:// only on loopback), as its tokens' iss")
    if not isinstance(audience, str) or not 0 < len(audience) <= 500:
        raise Invalid("audience must be the aud the CI's tokens are issued for (e.g. the registry's URL)")
    if not isinstance(subject, str) or not 0 < len(subject) <= 500 or not subject.strip("*"):
        raise Invalid("subject must be the sub claim or a pattern with * (not only *)")
    if not isinstance(claims, dict) or len(claims) > 10 or not all(
            isinstance(k, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}", k) and k not in ("iss", "aud", "sub")
            and isinstance(v, str) and 0 < len(v) <= 500 for k, v in claims.items()):
        raise Invalid("claims are at most 10 NAME=PATTERN pairs (not iss, aud or sub: those have their own options)")
    identity = json.dumps([issuer, audience, subject, sorted(claims.items())])
    return Trust(hashlib.sha256(identity.encode()).hexdigest()[:16], issuer, audience, subject, dict(claims))


def trusts_of(text: Optional[str]) -> List[Trust]:
    """The trusts a principal item keeps (Principal.trusts)."""
    return [Trust(d["id"], d["issuer"], d["audience"], d["subject"], d.get("claims") or {})
            for d in json.loads(text or "[]")]


def looks_like_token(text: str) -> bool:
    return bool(text) and len(text) <= MAX_TOKEN_BYTES and _JWS.fullmatch(text) is not None


class Proof(NamedTuple):
    trust: str
    issuer: str
    subject: str
    expires_at: int
    recorded: Dict[str, str]  # issuer, subject and the run's claims, for the audit trail
    claims: Optional[dict] = None  # every claim of the token (single sign-on reads the name and groups)

    def audit(self) -> dict:
        return dict(self.recorded)


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _claim_text(value) -> Optional[str]:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int)):
        return str(value)
    return None


def _number(claims: dict, name: str) -> Optional[float]:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Refused(f"{name} is not a number")
    return float(value)


def _signed(alg: str, key, signing_input: bytes, signature: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    try:
        if alg == "RS256" and isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048:
            key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
        elif alg == "ES256" and isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1" \
                and len(signature) == 64:
            key.verify(encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")),
                       signing_input, ec.ECDSA(hashes.SHA256()))
        else:
            return False
    except (InvalidSignature, ValueError):
        return False
    return True


def verify(token: str, trusts: List[Trust], now: float, keys: Callable[[str, Optional[str]], Dict[str, object]]) -> Proof:
    """What an ID token proves for one of `trusts` (see the module's docstring), or Refused.
    `keys(issuer, kid)` gives the issuer's signing keys by kid."""
    if not looks_like_token(token):
        raise Refused("not a JWS compact token")
    head, body, signature_text = token.split(".")
    try:
        header, claims, signature = json.loads(_b64url(head)), json.loads(_b64url(body)), _b64url(signature_text)
    except (ValueError, binascii.Error):
        raise Refused("not a JWS: its parts are not base64url JSON") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise Refused("not a JWS: header and claims must be objects")
    if header.get("alg") not in ALGORITHMS:
        raise Refused(f"alg {str(header.get('alg'))[:20]!r} is not RS256 or ES256")
    if "crit" in header:
        raise Refused("a crit header is not understood")
    issuer = claims.get("iss")
    candidates = [trust for trust in trusts if trust.issuer == issuer]
    if not candidates:
        raise Refused(f"no trust of this robot names the issuer {str(issuer)[:200]!r}")
    kid = header.get("kid") if isinstance(header.get("kid"), str) else None
    found = keys(issuer, kid)
    chosen = [found[kid]] if kid in found else (list(found.values()) if kid is None else [])
    if not any(_signed(header["alg"], key, f"{head}.{body}".encode(), signature) for key in chosen):
        raise Refused("the signature does not verify with the issuer's keys" if chosen
                      else f"the issuer publishes no key {str(kid)[:100]!r}")
    expires, not_before, issued = _number(claims, "exp"), _number(claims, "nbf"), _number(claims, "iat")
    if expires is None or now >= expires + SKEW_SECONDS:
        raise Refused("the token has expired" if expires is not None else "the token has no exp")
    if (not_before is not None and not_before > now + SKEW_SECONDS) or (issued is not None and issued > now + SKEW_SECONDS):
        raise Refused("the token is not valid yet (nbf or iat in the future)")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    subject = claims.get("sub")
    why = "no trust matches"
    for trust in candidates:
        if trust.audience not in audiences:
            why = f"aud {str(audience)[:200]!r} is not {trust.audience!r}"
        elif not isinstance(subject, str) or not star_match(trust.subject, subject):
            why = f"sub {str(subject)[:200]!r} does not match {trust.subject!r}"
        else:
            missing = next((name for name, pattern in trust.claims.items()
                            if _claim_text(claims.get(name)) is None or not star_match(pattern, _claim_text(claims[name]))),
                           None)
            if missing is None:
                recorded = {"issuer": issuer, "subject": subject, "trust": trust.id}
                recorded.update({name: _claim_text(claims[name]) for name in RECORDED_CLAIMS
                                 if _claim_text(claims.get(name)) is not None})
                return Proof(trust.id, issuer, subject, int(expires), recorded, claims)
            why = f"claim {missing} {str(claims.get(missing))[:200]!r} does not match {trust.claims[missing]!r}"
    raise Refused(why)


class KeySets:
    """The issuers' signing keys, per process: fetched when first needed, again after
    KEYS_SECONDS, and for an unknown kid at most every REFETCH_SECONDS (rotation)."""

    def __init__(self, in_lambda: bool):
        self._in_lambda = in_lambda
        self._lock = threading.Lock()
        self._held: Dict[str, Tuple[float, dict, Dict[str, object]]] = {}

    def __call__(self, issuer: str, kid: Optional[str]) -> Dict[str, object]:
        return self._issuer(issuer, kid)[1]

    def discovery(self, issuer: str) -> dict:
        """The issuer's discovery document (its endpoints), fetched and kept with its keys."""
        return self._issuer(issuer, None)[0]

    def _issuer(self, issuer: str, kid: Optional[str]) -> Tuple[dict, Dict[str, object]]:
        now = time.monotonic()
        with self._lock:
            fetched_at, discovery, found = self._held.get(issuer, (None, {}, {}))
        stale = fetched_at is None or now - fetched_at > KEYS_SECONDS
        unknown = kid is not None and kid not in found and (fetched_at is None or now - fetched_at > REFETCH_SECONDS)
        if stale or unknown:
            try:
                discovery, found = self._fetch(issuer)
            except outbound.Unreachable as error:
                raise Refused(f"the issuer's keys could not be fetched: {error}") from None
            with self._lock:
                self._held[issuer] = (now, discovery, found)
        return discovery, found

    def allowed(self, issuer: str) -> Callable[[str], bool]:
        """Where the issuer's documents may come from: outbound's rule, and never loopback in Lambda."""
        def allowed(url: str) -> bool:
            if self._in_lambda and urlsplit(url).hostname in outbound.LOOPBACK_HOSTS:
                return False
            return outbound.may_fetch(url, issuer)
        return allowed

    def _fetch(self, issuer: str) -> Tuple[dict, Dict[str, object]]:
        budget = outbound.Budget(FETCH_SECONDS, "the issuer")
        allowed = self.allowed(issuer)
        try:
            discovery = json.loads(outbound.fetch(issuer.rstrip("/") + "/.well-known/openid-configuration", allowed,
                                                  budget, DISCOVERY_MAX_BYTES, {"Accept": "application/json"}))
            if not isinstance(discovery, dict) or discovery.get("issuer") != issuer:
                raise outbound.Unreachable("its discovery document names another issuer")
            jwks_uri = discovery.get("jwks_uri")
            if not isinstance(jwks_uri, str):
                raise outbound.Unreachable("its discovery document has no jwks_uri")
            document = json.loads(outbound.fetch(jwks_uri, allowed, budget, JWKS_MAX_BYTES,
                                                 {"Accept": "application/json"}))
        except ValueError:
            raise outbound.Unreachable("it sent something that is not JSON") from None
        finally:
            budget.end()
        return discovery, jwks_keys(document)


def jwks_keys(document) -> Dict[str, object]:
    """The signing keys of a JWKS by kid (RSA, and EC P-256; others left out), a key with no kid
    under its position."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    found: Dict[str, object] = {}
    entries = document.get("keys") if isinstance(document, dict) else None
    for position, jwk in enumerate(entries if isinstance(entries, list) else []):
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
            continue
        try:
            if jwk.get("kty") == "RSA":
                key = rsa.RSAPublicNumbers(int.from_bytes(_b64url(jwk["e"]), "big"),
                                           int.from_bytes(_b64url(jwk["n"]), "big")).public_key()
            elif jwk.get("kty") == "EC" and jwk.get("crv") == "P-256":
                key = ec.EllipticCurvePublicNumbers(int.from_bytes(_b64url(jwk["x"]), "big"),
                                                    int.from_bytes(_b64url(jwk["y"]), "big"),
                                                    ec.SECP256R1()).public_key()
            else:
                continue
        except (KeyError, TypeError, ValueError, binascii.Error):
            continue
        found[jwk["kid"] if isinstance(jwk.get("kid"), str) else f"#{position}"] = key
    return found
