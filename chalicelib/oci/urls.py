"""The registry's paths it hands out in Location headers; Backend.public_url() makes them absolute."""
from __future__ import annotations


def upload_path(repo: str, upload_id: str) -> str:
    return f"/v2/{repo}/blobs/uploads/{upload_id}"


def blob_path(repo: str, digest: str) -> str:
    return f"/v2/{repo}/blobs/{digest}"


def manifest_path(repo: str, digest: str) -> str:
    return f"/v2/{repo}/manifests/{digest}"
