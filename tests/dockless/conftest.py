"""The local stack in this process, shared by the tests of the client package, with the multipart
threshold lowered (tests may not push gigabytes) and reachable for fault injection."""
import os

import pytest

from dockless.local.stack import LocalStack

MiB = 1024 * 1024


@pytest.fixture(scope="package")
def stack(tmp_path_factory):
    os.environ.update({"DOCKLESS_MULTIPART_THRESHOLD_BYTES": str(6 * MiB), "DOCKLESS_PART_BYTES": str(5 * MiB)})
    try:
        local = LocalStack(port=0)
        local.start()
        yield local
        local.stop()
    finally:
        for variable in ("DOCKLESS_MULTIPART_THRESHOLD_BYTES", "DOCKLESS_PART_BYTES"):
            os.environ.pop(variable)
