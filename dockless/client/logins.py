"""What `dockless login` keeps: per registry URL, the user name and a refresh token (never the
access token itself), in a file only its owner can read. DOCKLESS_CONFIG moves the file."""
import base64
import json
import os
import time
from pathlib import Path
from urllib.parse import urlsplit
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


DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def _realm(url: str) -> str:
    """The registry's token endpoint, as its challenge names it."""
    challenge = requests.get(f"{url}/v2/", timeout=30)
    realm = challenge.headers.get("WWW-Authenticate", "").split('realm="')[-1].split('"')[0]
    if not realm:
        raise ValueError(f"{url} did not answer with a token challenge")
    return realm


def login(url: str, username: str, password: str) -> None:
    """Exchange the access token for a refresh token at the registry's token endpoint; store that."""
    url = url.rstrip("/")
    try:
        answer = requests.post(_realm(url), timeout=30, data={
            "grant_type": "password", "username": username, "password": password, "access_type": "offline",
            "client_id": "dockless", "scope": "registry:catalog:*"})
    except requests.RequestException as error:
        raise ValueError(did_not_answer(url, error)) from None
    if answer.status_code != 200:
        raise ValueError(f"login refused: {explain(answer)}")
    _store(url, username, answer.json()["refresh_token"])


def login_sso(url: str, tell, sleep=time.sleep) -> str:
    """Single sign-on with the device grant (RFC 8628) the registry relays to its identity
    provider: `tell` the person where to approve, poll until they have, store the refresh token;
    the principal's name."""
    url = url.rstrip("/")
    try:
        realm = _realm(url)
        started = requests.post(realm + "/device", timeout=30, data={"client_id": "dockless"})
        codes = started.json() if started.status_code == 200 else None
        if not codes:
            raise ValueError(f"single sign-on refused: {_oauth_said(started)}")
        tell(f"To sign in, open {codes.get('verification_uri_complete') or codes['verification_uri']}\n"
             f"and confirm the code {codes['user_code']}. Waiting...")
        interval, deadline = max(1, int(codes.get("interval") or 5)), time.monotonic() + int(codes["expires_in"])
        while time.monotonic() < deadline:
            sleep(interval)
            answer = requests.post(realm, timeout=30, data={"grant_type": DEVICE_GRANT, "client_id": "dockless",
                                                            "device_code": codes["device_code"],
                                                            "scope": "registry:catalog:*"})
            if answer.status_code == 200:
                document = answer.json()
                _store(url, document["principal"], document["refresh_token"])
                return document["principal"]
            error = (answer.json() if answer.headers.get("Content-Type", "").startswith("application/json")
                     else {}).get("error")
            if error == "slow_down":
                interval += 5
            elif error != "authorization_pending":
                raise ValueError(f"single sign-on refused: {_oauth_said(answer)}")
    except requests.RequestException as error:
        raise ValueError(did_not_answer(url, error)) from None
    raise ValueError("single sign-on timed out: the code was not confirmed in time")


def docker_config_path() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker")) / "config.json"


def login_docker(url: str) -> str:
    """Let docker use the stored login of `url`: its refresh token as docker's identity token
    (what `docker login` itself keeps when a token endpoint answers with one, and sends back as
    grant_type=refresh_token), in docker's config.json (kept with mode 0600); the host it is for."""
    url, entry = stored(url)
    path = docker_config_path()
    config = json.loads(path.read_text()) if path.exists() else {}
    host = urlsplit(url).netloc
    if config.get("credsStore") or host in (config.get("credHelpers") or {}):
        raise ValueError(f"{path} keeps logins in a credential helper: run "
                         f"`docker login {host} -u {entry['username']}` with an access token instead")
    config.setdefault("auths", {})[host] = {
        "auth": base64.b64encode(f"{entry['username']}:".encode()).decode(), "identitytoken": entry["refresh_token"]}
    write_private(path, json.dumps(config, indent=2).encode())
    return host


def _oauth_said(answer) -> str:
    try:
        document = answer.json()
        return document.get("error_description") or document.get("error") or explain(answer)
    except ValueError:
        return explain(answer)


def _store(url: str, username: str, refresh_token: str) -> None:
    config = _read()
    config["registries"][url] = {"username": username, "refresh_token": refresh_token}
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
