"""Files of the CLI that hold secrets (logins, the local CA's key): written whole, readable by
their owner alone, whatever a file of that name was before."""
import os
import tempfile
from pathlib import Path


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` as a new file of mode 0600 (in a directory of mode 0700 if it is
    made here) that replaces the old one at once: an existing 0644 file does not keep its mode,
    and a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor, staged = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(data)
        os.replace(staged, path)
    except BaseException:
        os.unlink(staged)
        raise
