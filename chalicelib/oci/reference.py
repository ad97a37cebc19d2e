"""Image references as users type them: `host[:port]/name[:tag|@digest]`."""
from __future__ import annotations
import dataclasses
import re

from chalicelib.oci import spec, validate
from chalicelib.oci.errors import RegistryError

_REFERENCE = re.compile(r"(?P<host>[^/]+)/(?P<name>[^:@]+)(?::(?P<tag>[^@]+))?(?:@(?P<digest>.+))?")


@dataclasses.dataclass(frozen=True)
class Reference:
    host: str
    name: str
    tag: str = "latest"
    digest: str = ""

    @classmethod
    def parse(cls, text: str) -> "Reference":
        match = _REFERENCE.fullmatch(text)
        if not match or ("." not in match["host"] and ":" not in match["host"] and match["host"] != "localhost"):
            raise ValueError(f"{text!r} is not host[:port]/name[:tag|@digest]")
        if not spec.NAME_RE.fullmatch(match["name"]):
            raise ValueError(f"{match['name']!r} is not a repository name")
        if match["tag"] and not spec.TAG_RE.fullmatch(match["tag"]):
            raise ValueError(f"{match['tag']!r} is not a tag")
        if match["digest"]:
            try:
                validate.digest(match["digest"])
            except RegistryError as error:
                raise ValueError(f"{match['digest']!r}: {error.detail}") from None
        return cls(match["host"], match["name"], match["tag"] or "latest", match["digest"] or "")

    @property
    def reference(self) -> str:
        """What goes after /manifests/: the digest if given, else the tag."""
        return self.digest or self.tag

    @property
    def base_url(self) -> str:
        local = self.host.split(":")[0] in ("localhost", "127.0.0.1", "[::1]")
        return f"{'http' if local else 'https'}://{self.host}"

    def __str__(self) -> str:
        return f"{self.host}/{self.name}" + (f"@{self.digest}" if self.digest else f":{self.tag}")
