"""A repository as a whole: an admin deletes it (`DELETE /dockless/admin/v1/repositories?name=`,
`dockless repo delete`, and `dockless check` after its run).

Everything of it goes at once, past the time machine: its tags, manifests (with their signatures),
blob links (each freeing the namespace's count as an unlink does) and its catalog entry; the bytes
go with the next full garbage collection, which finds them linked by nothing. Its tag history and
audit trail stay, the record of what it held. Refused while a tag of it is immutable (what an
immutable tag names is never deleted) and for a repository that does not exist; an upload in
progress into it fails at its completion, as its session's repository is gone.
"""
from __future__ import annotations
from typing import Dict

from chalicelib.lifecycle import quota
from chalicelib.metadata import keys, queries
from chalicelib.metadata.keys import CATALOG_PARTITION
from chalicelib.metadata.models import Repository, Signature, leave_catalog
from chalicelib.oci import errors
from chalicelib.oci.errors import RegistryError
from chalicelib.policy.settings import SettingsService


def delete(backend, repo: str) -> Dict[str, int]:
    """Delete the repository; what went, counted."""
    try:
        Repository.get(CATALOG_PARTITION, repo)
    except Repository.DoesNotExist:
        raise RegistryError(errors.NAME_UNKNOWN, {"name": repo}) from None
    settings = SettingsService(backend).of(repo)
    tags = list(queries.tags(repo, consistent=True))
    held = sorted(tag.tag for tag in tags if settings.immutable(tag.tag))
    if held:
        message = f"{repo} has immutable tags ({', '.join(held[:5])}): it cannot be deleted"
        raise RegistryError(errors.TAG_IMMUTABLE, {"tags": held}, message=message)
    gone = {"tags": 0, "manifests": 0, "signatures": 0, "links": 0, "bytes_freed": 0}
    for tag in tags:
        tag.delete()
        gone["tags"] += 1
    for manifest in queries.manifests(repo, consistent=True):
        for signature in Signature.query(keys.image(repo, manifest.digest)):
            signature.delete()
            gone["signatures"] += 1
        manifest.delete()
        gone["manifests"] += 1
    for link in queries.links(repo, consistent=True):
        freed = quota.delete_link(backend, link)
        if freed is not None:
            gone["links"] += 1
            gone["bytes_freed"] += freed
    leave_catalog(repo, lambda: queries.holds_anything(repo), backend.clock())
    backend.audit.record("repository.delete", repo, None, **gone)
    return gone
