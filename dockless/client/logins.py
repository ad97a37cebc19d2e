"""What `dockless login` keeps: per registry URL, the user name and a refresh token (never the
access token itself), in a file only its owner can read. DOCKLESS_CONFIG moves the file."""
import json
import os
from pathlib import Path
from typing import Optional

import requests

from dockless.client.answers import did_not_answer, explain
from dockless.files import write_private


def config_path() -> Path:
    default = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "dockless" / "logins.json"
    return Path(os.environ.get("DOCKLESS_CONFIG", default))


def _read() -> dict:
    path = config_path()
    return json.loads(path.read_text()) if path.exists() else {"registries": {}}


def login(url: str, username: str, password: str) -> None:
    """Exchange the access token for a refresh token at the registry's token endpoint; store that."""
    url = url.rstrip("/")
    try:
        challenge = requests.get(f"{url}/v2/", timeout=30)
        realm = challenge.headers.get("WWW-Authenticate", "").split('realm="')[-1].split('"')[0]
        if not realm:
            raise ValueError(f"{url} did not answer with a token challenge")
        answer = requests.post(realm, timeout=30, data={
            "grant_type": "password", "username": username, "password": password, "access_type": "offline",
            "client_id": "dockless", "scope": "registry:catalog:*"})
    except requests.RequestException as error:
        raise ValueError(did_not_answer(url, error)) from None
    if answer.status_code != 200:
        raise ValueError(f"login refused: {explain(answer)}")
    config = _read()
    config["registries"][url] = {"username": username, "refresh_token": answer.json()["refresh_token"]}
    config["current"] = url
    write_private(config_path(), json.dumps(config, indent=2).encode())


def stored(url: Optional[str]) -> tuple:
    """(registry URL, login) for `url`, or for the registry logged in to last."""
    config = _read()
    url = (url or config.get("current") or "").rstrip("/")
    if not url:
        raise ValueError("not logged in: run `dockless login URL -u NAME --password-stdin`")
    found = [(known, entry) for known, entry in config["registries"].items() if _loopback_as_one(known) ==
             _loopback_as_one(url)]
    if not found:
        raise ValueError(f"not logged in to {url}")
    exact = [(known, entry) for known, entry in found if known == url]
    return (exact or found)[0]


def _loopback_as_one(url: str) -> str:
    """localhost and 127.0.0.1 name one registry (a login to either serves both)."""
    return url.replace("://localhost:", "://127.0.0.1:").replace("://localhost/", "://127.0.0.1/")
