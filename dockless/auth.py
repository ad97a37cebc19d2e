"""Docker token auth for our own HTTP clients (`dockless push`, `dockless pull`): answer a Bearer
challenge by asking the realm for a token with the caller's credentials, then retry. Tokens go
only to the registry: requests drops the Authorization header on redirects to S3."""
import re
from typing import Optional, Set

import requests

_PARAM = re.compile(r'(\w+)="([^"]*)"')


class RegistryAuth(requests.auth.AuthBase):
    def __init__(self, username: Optional[str] = None, password: Optional[str] = None):
        self.username, self.password = username, password
        self._token: Optional[str] = None
        self._scopes: Set[str] = set()

    def __call__(self, request):
        if self._token:
            request.headers["Authorization"] = f"Bearer {self._token}"
        request.register_hook("response", self._on_response)
        return request

    def _on_response(self, response, **kwargs):
        challenge = response.headers.get("WWW-Authenticate", "")
        if response.status_code != 401 or not challenge.lower().startswith("bearer ") \
                or getattr(response.request, "_dockless_retried", False):
            return response
        params = dict(_PARAM.findall(challenge))
        if params.get("scope"):
            self._scopes.update(params["scope"].split(" "))
        query = {"service": params.get("service", "")}
        auth = (self.username, self.password) if self.username and self.password else None
        answer = requests.get(params["realm"], params=[*query.items(), *(("scope", s) for s in sorted(self._scopes))],
                              auth=auth, timeout=60)
        if answer.status_code != 200:
            return response
        self._token = answer.json()["token"]
        response.content  # noqa: B018 - release the connection before retrying
        retry = response.request.copy()
        retry.headers["Authorization"] = f"Bearer {self._token}"
        retry._dockless_retried = True
        resent = response.connection.send(retry, **kwargs)
        resent.history.append(response)
        resent.request = retry
        return resent
