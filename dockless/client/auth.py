"""Docker token auth for our own HTTP clients (`dockless push`, `dockless pull`, `dockless mirror`):
answer a Bearer challenge by asking the realm for a token with the caller's credentials, then
retry (a Basic challenge, from an htpasswd registry: the credentials themselves). Tokens go
only to the registry: requests drops the Authorization header on redirects to S3."""
import base64
import re
from typing import Optional, Set

import requests

_PARAM = re.compile(r'(\w+)="([^"]*)"')


class RegistryAuth(requests.auth.AuthBase):
    """Credentials are a username and an access token (password), or a refresh token that
    `dockless login` stored."""

    def __init__(self, username: Optional[str] = None, password: Optional[str] = None,
                 refresh_token: Optional[str] = None):
        self.username, self.password, self.refresh_token = username, password, refresh_token
        self._token: Optional[str] = None
        self._basic: Optional[str] = None
        self._scopes: Set[str] = set()

    def want(self, scope: str) -> None:
        """Ask for a scope along with the next challenged one (e.g. push before a read that
        verified mode would refuse without it)."""
        if scope not in self._scopes:
            self._scopes.add(scope)
            self._token = None

    def __call__(self, request):
        if self._token:
            request.headers["Authorization"] = f"Bearer {self._token}"
        elif self._basic:
            request.headers["Authorization"] = self._basic
        request.register_hook("response", self._on_response)
        return request

    def _on_response(self, response, **kwargs):
        challenge = response.headers.get("WWW-Authenticate", "")
        if response.status_code != 401 or getattr(response.request, "_dockless_retried", False):
            return response
        if challenge.lower().startswith("basic ") and self.username and self.password:
            # A registry with Basic auth (htpasswd): the credentials themselves, on every request.
            self._token = None
            self._basic = "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            return self._retry(response, self._basic, **kwargs)
        if not challenge.lower().startswith("bearer "):
            return response
        params = dict(_PARAM.findall(challenge))
        if params.get("scope"):
            self._scopes.update(params["scope"].split(" "))
        service = params.get("service", "")
        if self.refresh_token:
            answer = requests.post(params["realm"], timeout=60, data={
                "grant_type": "refresh_token", "refresh_token": self.refresh_token, "service": service,
                "scope": " ".join(sorted(self._scopes)), "client_id": "dockless"})
        else:
            auth = (self.username, self.password) if self.username and self.password else None
            answer = requests.get(params["realm"], auth=auth, timeout=60,
                                  params=[("service", service), *(("scope", s) for s in sorted(self._scopes))])
        if answer.status_code != 200:
            return response
        self._token = answer.json()["token"]
        return self._retry(response, f"Bearer {self._token}", **kwargs)

    @staticmethod
    def _retry(response, authorization: str, **kwargs):
        response.content  # noqa: B018 - release the connection before retrying
        retry = response.request.copy()
        retry.headers["Authorization"] = authorization
        retry._dockless_retried = True
        resent = response.connection.send(retry, **kwargs)
        resent.history.append(response)
        resent.request = retry
        return resent
