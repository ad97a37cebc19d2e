"""JWT access tokens as Docker's token spec describes them (docs/spec/auth/jwt.md), HS256-signed.

A header `kid` names the key (a hash of it), so a new key can be rolled in while tokens signed with
the old one expire. Verification reads nothing from DynamoDB.
"""
import base64
import hashlib
import hmac
import json
import uuid
from typing import List, Optional


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


def decode(token: str, keys: List[bytes], audience: str, now: float) -> dict:
    """The claims of a token signed by one of `keys`, for `audience`, valid at `now`."""
    try:
        header_part, claims_part, signature_part = token.split(".")
        header = json.loads(_unb64(header_part))
        claims = json.loads(_unb64(claims_part))
        signature = _unb64(signature_part)
    except (ValueError, TypeError) as error:
        raise InvalidToken(f"malformed token: {error}") from None
    if header.get("alg") != "HS256":
        raise InvalidToken("unsupported algorithm")
    key = next((k for k in keys if key_id(k) == header.get("kid")), None)
    if key is None:
        raise InvalidToken("unknown signing key")
    expected = hmac.new(key, f"{header_part}.{claims_part}".encode("ascii"), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        raise InvalidToken("bad signature")
    if claims.get("aud") != audience:
        raise InvalidToken("token for another service")
    if not (claims.get("nbf", 0) - 5 <= now < claims.get("exp", 0)):
        raise InvalidToken("token expired or not yet valid")
    return claims


def new_claims(issuer: str, subject: str, audience: str, credential_id: Optional[str], access: list,
               now: float, lifetime: int) -> dict:
    return {"iss": issuer, "sub": subject, "aud": audience, "exp": int(now) + lifetime, "nbf": int(now),
            "iat": int(now), "jti": uuid.uuid4().hex, "cid": credential_id, "access": access}
