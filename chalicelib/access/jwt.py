"""JWT access tokens as Docker's token spec describes them (docs/spec/auth/jwt.md), HS256-signed.

A header `kid` names the key (a hash of it), so a new key can be rolled in while tokens signed with
the old one expire. Verification reads nothing from DynamoDB.
"""
from __future__ import annotations
import base64
import hashlib
import hmac
import json
import uuid
from typing import List, Optional


# Tolerated difference between the clocks of the token's issuer and its verifier.
CLOCK_SKEW_SECONDS = 5


class InvalidToken(Exception):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:16]


def encode(claims: dict, key: bytes) -> str:
    header = {"alg": "HS256", "typ": "JWT", "kid": key_id(key)}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def decode(token: str, keys: List[bytes], audience: str, now: float) -> dict:
    """The claims of a token signed by one of `keys` (the one its `kid` names, never another),
    for `audience`, valid at `now`. Anything else, malformed included, is InvalidToken."""
    try:
        header_part, claims_part, signature_part = token.split(".")
        signing_input = f"{header_part}.{claims_part}".encode("ascii")
        header = json.loads(_unb64(header_part))
        claims = json.loads(_unb64(claims_part))
        signature = _unb64(signature_part)
    except (ValueError, TypeError, RecursionError) as error:
        raise InvalidToken(f"malformed token: {error}") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise InvalidToken("malformed token: header and claims are JSON objects")
    if header.get("alg") != "HS256":
        raise InvalidToken("unsupported algorithm")
    key = next((k for k in keys if key_id(k) == header.get("kid")), None)
    if key is None:
        raise InvalidToken("unknown signing key")
    expected = hmac.new(key, signing_input, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        raise InvalidToken("bad signature")
    if claims.get("aud") != audience:
        raise InvalidToken("token for another service")
    not_before, expires = claims.get("nbf", 0), claims.get("exp")
    if not (_number(not_before) and _number(expires) and not_before - CLOCK_SKEW_SECONDS <= now < expires):
        raise InvalidToken("token expired or not yet valid")
    if not isinstance(claims.get("access", []), list) or not all(
            isinstance(entry, dict) for entry in claims.get("access", [])):
        raise InvalidToken("malformed access claim")
    return claims


def new_claims(issuer: str, subject: str, audience: str, credential_id: Optional[str], access: list,
               now: float, lifetime: int) -> dict:
    return {"iss": issuer, "sub": subject, "aud": audience, "exp": int(now) + lifetime, "nbf": int(now),
            "iat": int(now), "jti": uuid.uuid4().hex, "cid": credential_id, "access": access}
