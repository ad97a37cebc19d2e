"""The software bill of materials: written as CycloneDX 1.5 JSON (cyclonedx.org/docs/1.5/json),
read back from CycloneDX or SPDX 2.3 JSON, so an SBOM a team pushes itself serves as well as ours.

The registry's SBOM of an image is an OCI referrer of it (image-spec v1.1 "artifacts"):

    {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
     "artifactType": "application/vnd.cyclonedx+json",
     "config": <the empty descriptor>, "layers": [<the CycloneDX document, application/vnd.cyclonedx+json>],
     "subject": <the image>, "annotations": {"dev.dockless.sbom.generator": "dockless", ...}}

Each component carries its purl, and properties `dockless:ecosystem` / `dockless:name` /
`dockless:version` with what advisories are matched on (a Debian binary package's source and its
version); an SBOM without them is read from its purls alone.
"""
from __future__ import annotations
import json
import uuid
from typing import List, Optional, Tuple
from urllib.parse import unquote

from chalicelib.scanning.packages import DISTRO_ECOSYSTEMS, Distro, Package

CYCLONEDX = "application/vnd.cyclonedx+json"
SPDX = "application/spdx+json"
ARTIFACT_TYPES = (CYCLONEDX, SPDX)
GENERATOR_ANNOTATION = "dev.dockless.sbom.generator"
EMPTY_CONFIG = {"mediaType": "application/vnd.oci.empty.v1+json",
                "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "size": 2}
SBOM_MAX_BYTES = 64 * 1024 * 1024


def cyclonedx(repository: str, digest: str, packages: List[Package], distro: Optional[Distro],
              when: str, tool_version: str) -> bytes:
    """The CycloneDX document of an image's packages (the same image and packages: the same
    serial number)."""
    components = []
    if distro:
        components.append({"type": "operating-system", "name": distro.id, "version": distro.version_id,
                           "bom-ref": f"os:{distro.id}-{distro.version_id}"})
    for package in packages:
        components.append({
            "type": "library", "bom-ref": package.purl, "name": package.purl.split("/")[-1].split("@")[0],
            "version": package.purl.rsplit("@", 1)[1].split("?")[0], "purl": package.purl,
            "properties": [{"name": "dockless:ecosystem", "value": package.ecosystem},
                           {"name": "dockless:name", "value": package.name},
                           {"name": "dockless:version", "value": package.version},
                           {"name": "dockless:path", "value": package.path}]})
    serial = uuid.uuid5(uuid.NAMESPACE_URL, f"dockless:{repository}@{digest}:" +
                        ",".join(sorted(p.purl for p in packages)))
    document = {
        "bomFormat": "CycloneDX", "specVersion": "1.5", "serialNumber": f"urn:uuid:{serial}", "version": 1,
        "metadata": {"timestamp": when,
                     "tools": {"components": [{"type": "application", "name": "dockless", "version": tool_version}]},
                     "component": {"type": "container", "name": repository, "version": digest,
                                   "bom-ref": f"{repository}@{digest}"}},
        "components": components,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def referrer(subject: dict, document: bytes, document_digest: str, media_type: str, generated: bool) -> bytes:
    """The OCI manifest that makes an SBOM a referrer of `subject` (a descriptor)."""
    annotations = {GENERATOR_ANNOTATION: "dockless"} if generated else {}
    return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "artifactType": media_type, "config": EMPTY_CONFIG,
                       "layers": [{"mediaType": media_type, "digest": document_digest, "size": len(document)}],
                       "subject": subject, **({"annotations": annotations} if annotations else {})},
                      sort_keys=True, separators=(",", ":")).encode()


# --- reading ------------------------------------------------------------------------------------

_PURL_DISTROS = {"deb": "Debian", "apk": "Alpine", "rpm": "Red Hat"}


def _from_purl(purl: str) -> Optional[Package]:
    """What a purl says of a package, for matching."""
    if not isinstance(purl, str) or not purl.startswith("pkg:") or "@" not in purl:
        return None
    body, _, query = purl[4:].partition("?")
    body = body.split("#", 1)[0]
    path, _, version = body.rpartition("@")
    kind, _, rest = path.partition("/")
    parts = [unquote(part) for part in rest.split("/") if part]
    qualifiers = dict(pair.split("=", 1) for pair in query.split("&") if "=" in pair)
    qualifiers = {key.lower(): unquote(value) for key, value in qualifiers.items()}
    version, kind = unquote(version), kind.lower()
    if not parts or not version:
        return None
    name, namespace = parts[-1], "/".join(parts[:-1])
    if kind in _PURL_DISTROS:
        ecosystem = DISTRO_ECOSYSTEMS.get(namespace.lower(), _PURL_DISTROS[kind])
        source = qualifiers.get("upstream") or qualifiers.get("origin") or name
        if kind == "rpm" and qualifiers.get("epoch"):
            version = f"{qualifiers['epoch']}:{version}"
        return Package(ecosystem, source.split(" ")[0], version, purl)
    if kind == "pypi":
        return Package("PyPI", name.lower().replace("_", "-").replace(".", "-"), version, purl)
    if kind == "npm":
        return Package("npm", f"{namespace}/{name}" if namespace else name, version, purl)
    if kind == "golang":
        return Package("Go", f"{namespace}/{name}" if namespace else name, version, purl)
    if kind == "maven":
        return Package("Maven", f"{namespace}:{name}", version, purl)
    other = {"cargo": "crates.io", "gem": "RubyGems", "nuget": "NuGet", "composer": "Packagist", "hex": "Hex",
             "pub": "Pub"}.get(kind)
    return Package(other, f"{namespace}/{name}" if namespace and kind == "composer" else name, version, purl) \
        if other else None


def read(document: bytes) -> Tuple[List[Package], Optional[Distro]]:
    """The packages (and distribution) a CycloneDX or SPDX JSON document lists; ValueError when it is
    neither."""
    parsed = json.loads(document)
    if not isinstance(parsed, dict):
        raise ValueError("an SBOM is a JSON object")
    found, distro = [], None
    if parsed.get("bomFormat") == "CycloneDX":
        for component in parsed.get("components") or []:
            if not isinstance(component, dict):
                continue
            if component.get("type") == "operating-system" and isinstance(component.get("name"), str):
                distro = Distro(component["name"].lower(), str(component.get("version") or ""))
                continue
            properties = {p.get("name"): p.get("value") for p in component.get("properties") or []
                          if isinstance(p, dict)}
            if all(isinstance(properties.get(f"dockless:{f}"), str) for f in ("ecosystem", "name", "version")) \
                    and isinstance(component.get("purl"), str):
                found.append(Package(properties["dockless:ecosystem"], properties["dockless:name"],
                                     properties["dockless:version"], component["purl"],
                                     str(properties.get("dockless:path") or "")))
            else:
                package = _from_purl(component.get("purl"))
                if package:
                    found.append(package)
    elif isinstance(parsed.get("spdxVersion"), str):
        for item in parsed.get("packages") or []:
            for reference in (item.get("externalRefs") or []) if isinstance(item, dict) else []:
                if isinstance(reference, dict) and reference.get("referenceType") == "purl":
                    package = _from_purl(reference.get("referenceLocator"))
                    if package:
                        found.append(package)
    else:
        raise ValueError("neither CycloneDX (bomFormat) nor SPDX (spdxVersion)")
    if distro is None:
        distro = next((Distro(*p.purl.split("distro=", 1)[1].split("&")[0].split("-", 1))
                       for p in found if "distro=" in p.purl and "-" in p.purl.split("distro=", 1)[1]), None)
    return found, distro
