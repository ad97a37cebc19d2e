"""What differs between two images, from what needs no layer bytes: their platforms, their
configs and their layer lists. The registry answers it (`GET /dockless/v1/<name>/diff`) and
`dockless diff` prints it, adding the file-level comparison it reads from the layers
(dockless/images/diff.py).

An index is compared platform by platform (`os/architecture[/variant]`); an image manifest is one
platform, named by its config. Config fields compared: entrypoint, cmd, env and labels (per key),
exposed ports, user, working dir, created, and the history entries.
"""
from __future__ import annotations
from typing import Dict, List, Optional, Tuple

from chalicelib.oci import spec

# (name in the answer, key in the config's `config` object)
SCALAR_FIELDS = (("entrypoint", "Entrypoint"), ("cmd", "Cmd"), ("user", "User"), ("workdir", "WorkingDir"))


def platform_of(descriptor_or_config: dict) -> str:
    """`os/architecture[/variant]` of an index entry's `platform` or of an image config."""
    platform = _object(descriptor_or_config.get("platform", descriptor_or_config))
    parts = [str(platform.get("os") or "unknown"), str(platform.get("architecture") or "unknown")]
    if platform.get("variant"):
        parts.append(str(platform["variant"]))
    return "/".join(parts)


def index_platforms(document: dict) -> Dict[str, str]:
    """An index's children by platform (the first of each platform; attestations left out)."""
    found: Dict[str, str] = {}
    for entry in document.get("manifests", []):
        if (entry.get("annotations") or {}).get("vnd.docker.reference.type") == "attestation-manifest":
            continue
        if entry.get("mediaType") in spec.MANIFEST_MEDIA_TYPES:
            found.setdefault(platform_of(entry), entry["digest"])
    return found


def pair_platforms(a: Dict[str, str], b: Dict[str, str]) -> List[Tuple[str, Optional[str], Optional[str]]]:
    """(platform, digest in a, digest in b) for every platform of either, in name order. Two
    single images pair with each other whatever their platforms say."""
    if len(a) == 1 and len(b) == 1:
        (pa, da), (pb, db) = next(iter(a.items())), next(iter(b.items()))
        return [(pa if pa == pb else f"{pa} -> {pb}", da, db)]
    return [(p, a.get(p), b.get(p)) for p in sorted(set(a) | set(b))]


# A config is whatever JSON its pusher wrote: each field is read as the type it should have, and
# a value of another type is still data (compared, shown), never a reason to fail.

def _object(value) -> dict:
    """A JSON object as itself; anything else as an empty one (a config's `config`, a platform)."""
    return value if isinstance(value, dict) else {}


def _entries(value) -> list:
    """A list as itself, an object as its `key=value` strings, nothing as none, a scalar as one."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [f"{key}={item}" for key, item in value.items()]
    return value if isinstance(value, list) else [value]


def _keyed(entries, separator: str) -> Dict[str, str]:
    pairs = (str(entry).partition(separator) for entry in _entries(entries))
    return {key: value for key, _, value in pairs}


def _mapping(value) -> Dict[str, object]:
    """An object's entries; a list's or a scalar's, `key=value` split as env is."""
    if isinstance(value, dict):
        return {str(key): item for key, item in value.items()}
    return dict(_keyed(value, "="))


def _map_changes(a: Dict[str, object], b: Dict[str, object]) -> Dict[str, dict]:
    changes = {}
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key) or (key in a) != (key in b):
            changes[key] = {"from": a.get(key), "to": b.get(key)}
    return changes


def config_changes(a: dict, b: dict) -> dict:
    """The fields of two image configs that differ: {field: {"from", "to"}}; env, labels and
    exposed ports per key; history as the commands that made each layer."""
    a, b = _object(a), _object(b)
    inner_a, inner_b = _object(a.get("config")), _object(b.get("config"))
    changes: Dict[str, object] = {}
    for name, key in SCALAR_FIELDS:
        if inner_a.get(key) != inner_b.get(key):
            changes[name] = {"from": inner_a.get(key), "to": inner_b.get(key)}
    for name, mapping in (("env", lambda c: _keyed(c.get("Env"), "=")),
                          ("labels", lambda c: _mapping(c.get("Labels"))),
                          ("exposed_ports", lambda c: {str(port).partition("=")[0]: True
                                                       for port in _entries(c.get("ExposedPorts"))})):
        found = _map_changes(mapping(inner_a), mapping(inner_b))
        if found:
            changes[name] = found
    if a.get("created") != b.get("created"):
        changes["created"] = {"from": a.get("created"), "to": b.get("created")}
    history_a, history_b = _history(a), _history(b)
    if history_a != history_b:
        changes["history"] = {"from": history_a, "to": history_b}
    return changes


def config_summary(config: dict) -> Dict[str, object]:
    """What a person opens an image for, from its config, each field read as its type should be:
    created, author, entrypoint, cmd, user, workdir, env (KEY=value strings), exposed ports,
    labels."""
    config = _object(config)
    inner = _object(config.get("config"))
    return {"created": config.get("created"), "author": config.get("author"),
            **{name: inner.get(key) for name, key in SCALAR_FIELDS},
            "env": [str(entry) for entry in _entries(inner.get("Env"))],
            "exposed_ports": sorted(str(port).partition("=")[0] for port in _entries(inner.get("ExposedPorts"))),
            "labels": _mapping(inner.get("Labels"))}


def layer_rows(config: dict, layers: List[dict]) -> List[dict]:
    """Each layer (digest, size, media type) with the history entry that made it: history entries
    marked `empty_layer` made none; a config with fewer entries than layers leaves the rest
    unnamed."""
    made = [entry for entry in _entries(_object(config).get("history"))
            if not (isinstance(entry, dict) and entry.get("empty_layer"))]
    rows = []
    for number, layer in enumerate(layers):
        entry = made[number] if number < len(made) else None
        command = entry.get("created_by") if isinstance(entry, dict) else entry
        rows.append({"digest": layer.get("digest"), "size": layer.get("size", 0), "mediaType": layer.get("mediaType"),
                     "created_by": None if command is None else str(command)})
    return rows


def _history(config: dict) -> List[str]:
    return [str(entry.get("created_by", "")) if isinstance(entry, dict) else str(entry)
            for entry in _entries(config.get("history"))]


def layer_changes(a: List[dict], b: List[dict]) -> dict:
    """Layers (descriptors) only in a (removed), only in b (added), and in both (shared)."""
    digests_a, digests_b = {layer["digest"] for layer in a}, {layer["digest"] for layer in b}

    def described(layers, keep):
        return [{"digest": layer["digest"], "size": layer.get("size", 0), "mediaType": layer.get("mediaType")}
                for layer in layers if keep(layer["digest"])]
    return {"added": described(b, lambda d: d not in digests_a),
            "removed": described(a, lambda d: d not in digests_b),
            "shared": described(b, lambda d: d in digests_a)}
