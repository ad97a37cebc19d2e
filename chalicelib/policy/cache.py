"""What a pull-through cache namespace mirrors (its setting; pullthrough/ fetches from it)."""
from __future__ import annotations
import dataclasses
import json
from typing import Optional
from urllib.parse import urlsplit

from chalicelib.oci import spec

# Docker Hub serves official images under library/; `docker pull alpine` means library/alpine.
DOCKER_HUB_HOSTS = ("registry-1.docker.io", "index.docker.io", "docker.io")

@dataclasses.dataclass(frozen=True)
class Upstream:
    """What a cache namespace mirrors: the upstream's URL, who it signs in as (the password is in
    Secrets Manager under `secret_id`), and how long a tag is served before it is checked again."""
    url: str
    username: Optional[str] = None
    secret_id: Optional[str] = None
    freshness_seconds: int = spec.CACHE_FRESHNESS_SECONDS_DEFAULT

    @classmethod
    def from_json(cls, text: Optional[str]) -> Optional["Upstream"]:
        return cls(**json.loads(text)) if text else None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    def public(self) -> dict:
        """What an admin sees: never the secret's value."""
        return {"url": self.url, "username": self.username, "freshness_seconds": self.freshness_seconds}

    def refusal(self, namespace: str) -> str:
        """What a push into the cache namespace is told, whoever asks."""
        return f"{namespace} is a cache of {self.url}: pull only"

    def repository(self, name: str) -> str:
        """The upstream's name for `name` (a repository's name after the cache namespace)."""
        if "/" not in name and urlsplit(self.url).hostname in DOCKER_HUB_HOSTS:
            return "library/" + name
        return name
