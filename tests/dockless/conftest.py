"""The local stack in this process, shared by the tests of the client package, with the multipart
threshold lowered (tests may not push gigabytes) and reachable for fault injection; pushes are
scanned only when asked for (the tests count what a push stores)."""
import os

import pytest

from dockless.local.stack import LocalStack

MiB = 1024 * 1024


@pytest.fixture(scope="package")
def stack(tmp_path_factory):
    os.environ.update({"DOCKLESS_MULTIPART_THRESHOLD_BYTES": str(6 * MiB), "DOCKLESS_PART_BYTES": str(5 * MiB),
                       "DOCKLESS_SCAN_PUSHES": "0"})
    try:
        local = LocalStack(port=0)
        local.start()
        yield local
        local.stop()
    finally:
        for variable in ("DOCKLESS_MULTIPART_THRESHOLD_BYTES", "DOCKLESS_PART_BYTES", "DOCKLESS_SCAN_PUSHES"):
            os.environ.pop(variable)
