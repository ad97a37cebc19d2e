"""What a registry, or the network on the way to it, said: one line a user reads. A refusal is the
spec's error body (`<status> <CODE>: <message> (<detail>)`); a registry that did not answer is
said in words (connection refused, timed out), never as the HTTP library's exception text."""
import json

import requests


def explain(response: requests.Response) -> str:
    """`<status> <CODE>: <message> (<detail>)` from the spec's error body, or the status and text."""
    try:
        error = response.json()["errors"][0]
        message, detail = error["message"], error.get("detail")
        # A sentence of detail is already part of the message (errors.error_body); say it once.
        shown = detail if isinstance(detail, str) else json.dumps(detail, sort_keys=True)
        said = f" ({shown})" if detail and shown not in message else ""
        return f"{response.status_code} {error['code']}: {message}{said}"
    except (ValueError, KeyError, IndexError, TypeError):
        return f"{response.status_code}: {response.text[:200]}"


def did_not_answer(url: str, error: requests.RequestException) -> str:
    """`<url> did not answer (<why>)`, the why in words."""
    if isinstance(error, requests.exceptions.SSLError):
        why = "TLS failed: is the URL https:// and its certificate trusted?"
    elif isinstance(error, requests.exceptions.ConnectTimeout):
        why = "timed out connecting"
    elif isinstance(error, requests.exceptions.ConnectionError):
        why = "connection refused or the host unknown: is the URL right and the registry running?"
    elif isinstance(error, requests.exceptions.Timeout):
        why = "timed out"
    else:
        why = "the request failed"
    return f"{url} did not answer ({why})"
