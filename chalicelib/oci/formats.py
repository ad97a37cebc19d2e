"""What a manifest is: parsing and checking one (OCI image manifest and index, Docker schema 2
manifest and list), shared by the registry and the programs that read registries (`dockless
pull` walks what a registry sends with these checks before any digest names a file).
"""
from __future__ import annotations
import dataclasses
import hashlib
from typing import Dict, List, Optional, Tuple

from chalicelib.oci import errors, jsondoc, spec, validate
from chalicelib.oci.errors import RegistryError


@dataclasses.dataclass
class ParsedManifest:
    body: bytes
    digest: str
    media_type: str
    blobs: List[str]          # config and layers (image manifests), foreign layers left out
    children: List[str]       # child manifests (indexes)
    subject: Optional[str]
    artifact_type: Optional[str]
    annotations: Optional[dict]
    # Every descriptor's (mediaType, size), by digest.
    descriptors: Dict[str, Tuple[str, int]] = dataclasses.field(default_factory=dict)


def parse_manifest(body: bytes, content_type: Optional[str]) -> ParsedManifest:
    document = jsondoc.parse_object(body, errors.MANIFEST_INVALID, "the manifest", spec.MANIFEST_MAX_BYTES)
    if document.get("schemaVersion") != 2:
        raise RegistryError(errors.MANIFEST_INVALID, "schemaVersion must be 2")
    media_type = _media_type(document, content_type)
    if media_type in spec.INDEX_MEDIA_TYPES:
        entries = [_descriptor(d, "manifests[]") for d in _list(document, "manifests")]
        children = [entry["digest"] for entry in entries]
        blobs: List[str] = []
        artifact_type = document.get("artifactType")
    else:
        config = _descriptor(document.get("config"), "config")
        layers = [_descriptor(d, "layers[]") for d in _list(document, "layers")]
        entries = [config] + layers
        # Foreign layers (with `urls`) live outside the registry and are not required here.
        blobs = [config["digest"]] + [layer["digest"] for layer in layers if not layer.get("urls")]
        children = []
        artifact_type = document.get("artifactType") or config["mediaType"]
    subject = document.get("subject")
    if subject is not None:
        subject = _descriptor(subject, "subject")["digest"]
    if artifact_type is not None and not (isinstance(artifact_type, str)
                                          and spec.MEDIA_TYPE_RE.fullmatch(artifact_type)):
        raise RegistryError(errors.MANIFEST_INVALID, "artifactType must be a media type (RFC 6838)")
    annotations = document.get("annotations")
    if annotations is not None and not isinstance(annotations, dict):
        raise RegistryError(errors.MANIFEST_INVALID, "annotations must be an object")
    return ParsedManifest(body=body, digest="sha256:" + hashlib.sha256(body).hexdigest(),
                          media_type=media_type, blobs=blobs, children=children, subject=subject,
                          artifact_type=artifact_type, annotations=annotations,
                          descriptors={e["digest"]: (e["mediaType"], e["size"]) for e in entries})


def _media_type(document: dict, content_type: Optional[str]) -> str:
    declared = document.get("mediaType")
    sent = (content_type or "").split(";", 1)[0].strip() or None
    if declared is not None and sent is not None and declared != sent:
        raise RegistryError(errors.MANIFEST_INVALID,
                            f"Content-Type {sent!r} differs from the manifest's mediaType {declared!r}")
    media_type = declared or sent or (spec.OCI_INDEX if "manifests" in document else spec.OCI_MANIFEST)
    if media_type not in spec.MANIFEST_MEDIA_TYPES:
        raise RegistryError(errors.MANIFEST_INVALID, f"unsupported manifest media type {media_type!r}")
    return media_type


def _list(document: dict, field: str) -> list:
    value = document.get(field, [])
    if not isinstance(value, list):
        raise RegistryError(errors.MANIFEST_INVALID, f"{field} must be a list")
    return value


def _descriptor(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise RegistryError(errors.MANIFEST_INVALID, f"{where} must be a descriptor object")
    if not isinstance(value.get("mediaType"), str) or not spec.MEDIA_TYPE_RE.fullmatch(value["mediaType"]):
        raise RegistryError(errors.MANIFEST_INVALID, f"{where}.mediaType must be a media type (RFC 6838)")
    size = value.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise RegistryError(errors.MANIFEST_INVALID, f"{where}.size must be a non-negative integer")
    if not isinstance(value.get("digest"), str):
        raise RegistryError(errors.MANIFEST_INVALID, f"{where}.digest must be a string")
    validate.digest(value["digest"], errors.MANIFEST_INVALID)
    return value
