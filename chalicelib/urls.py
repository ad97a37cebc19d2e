"""Absolute URLs the registry hands out, under its public URL (Services.public_url)."""
from urllib.parse import urlencode

from chalicelib.services import services


def public(path: str, query: dict = None) -> str:
    url = services().public_url() + path
    return f"{url}?{urlencode(query)}" if query else url


def upload_url(repo: str, upload_id: str) -> str:
    return public(f"/v2/{repo}/blobs/uploads/{upload_id}")


def blob_url(repo: str, digest: str) -> str:
    return public(f"/v2/{repo}/blobs/{digest}")


def manifest_url(repo: str, digest: str) -> str:
    return public(f"/v2/{repo}/manifests/{digest}")
