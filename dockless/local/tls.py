"""TLS for the local stack (`dockless serve --tls`): a private certificate authority kept in a
directory of its own, created on first use (its key readable by its owner only), and a server
certificate it issues at each start for localhost, 127.0.0.1 and ::1. Clients that insist on HTTPS
(python-dxf) or on verified TLS trust the CA once; it stays the same across runs.
"""
import os
import ssl
from pathlib import Path
from typing import Tuple

from dockless.files import write_private

LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")


def default_directory() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "dockless" / "tls"


def _authority(directory: Path):
    import trustme  # only `dockless serve --tls` needs it

    # The key sits apart from ca.crt: podman's and skopeo's --cert-dir take every *.key there for a
    # client certificate's key and refuse one without its *.cert.
    cert, key = directory / "ca.crt", directory / "private" / "ca.key"
    if cert.exists() and key.exists():
        return trustme.CA.from_pem(cert.read_bytes(), key.read_bytes())
    authority = trustme.CA(organization_name="dockless local stack")
    write_private(key, authority.private_key_pem.bytes())
    cert.write_bytes(authority.cert_pem.bytes())
    return authority


def server_context(directory: Path) -> Tuple[ssl.SSLContext, Path]:
    """A server SSLContext for the local names, and the path of the CA certificate to trust."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    _authority(directory).issue_cert(*LOCAL_NAMES).configure_cert(context)
    return context, directory / "ca.crt"
