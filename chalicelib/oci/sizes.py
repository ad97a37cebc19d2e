"""Byte counts as people write them: "10 GiB", "512MiB", "1.5 TB". Binary units are 1024-based,
decimal ones 1000-based, as their names say."""
from __future__ import annotations
import re

UNITS = {"": 1, "B": 1,
         "KB": 1000, "MB": 1000 ** 2, "GB": 1000 ** 3, "TB": 1000 ** 4,
         "KIB": 1024, "MIB": 1024 ** 2, "GIB": 1024 ** 3, "TIB": 1024 ** 4}
SIZE_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*")


def human(count: int) -> str:
    """At most one decimal, in the largest binary unit that keeps the number at or above 1:
    "800 B", "9.8 KiB", "10 GiB", "10.3 GiB"."""
    if count < 1024:
        return f"{count} B"
    size, unit = count / 1024, "KiB"
    for larger in ("MiB", "GiB", "TiB"):
        if size < 1024:
            break
        size, unit = size / 1024, larger
    return f"{size:.1f}".removesuffix(".0") + f" {unit}"

def parse(text: str) -> int:
    """The byte count of "10GiB", "500 MB", "1.5TiB" or "1024"; ValueError for anything else."""
    match = SIZE_RE.fullmatch(text or "")
    if not match or match.group(2).upper() not in UNITS:
        raise ValueError(f"not a size: {text!r} (write e.g. 10GiB, 500MB or 1024)")
    return int(float(match.group(1)) * UNITS[match.group(2).upper()])
