"""The Lambda function URL door (DESIGN.md §1a, "The cheap door"): the same function answers it.

A function URL hands the function an event of payload format 2.0 and routes nothing; Chalice
routes events of the REST API's format 1.0, which API Gateway has already matched to one of the
app's routes. So an event of the function URL is matched here as API Gateway matches (the path
percent-decoded first, a trailing slash dropped, a literal segment before a parameter at each
position), made into the event API Gateway would have sent, and Chalice's answer made into what a
function URL returns (no multi-value headers: Set-Cookie values go to `cookies`, others are joined
with commas). A request no route takes is answered as API Gateway's customised gateway response
answers it (errors.ROUTE_UNKNOWN), so clients see the same 404 behind either door.
"""
from __future__ import annotations
import base64
from typing import Dict, Iterable, List, Optional, Tuple
from urllib.parse import parse_qs, unquote

from chalicelib.oci import errors
from chalicelib.oci.errors import error_reply


# The doors CloudFront can send requests through to the API function (infra/stack.py's `Door`
# parameter, `dockless deploy --door`, `dockless serve --door`), the default first: API Gateway's
# REST API, or the function's own URL. The REST event made here says its door; a REST API's own
# event says none.
API_GATEWAY_DOOR, FUNCTION_URL_DOOR = "api-gateway", "function-url"
DOORS = (API_GATEWAY_DOOR, FUNCTION_URL_DOOR)


def is_function_url_event(event) -> bool:
    return isinstance(event, dict) and event.get("version") == "2.0" and "rawPath" in event


class RouteMatcher:
    """Chalice paths ("/v2/{name0}/blobs/{digest}") matched against a request's path."""

    def __init__(self, paths: Iterable[str]):
        # Sorted, a literal segment comes before "{" (which sorts after every letter, digit, "-" and
        # "_"), so the first template that matches is API Gateway's choice.
        self._templates = sorted((path, path.split("/")) for path in paths)

    def match(self, path: str) -> Optional[Tuple[str, Dict[str, str]]]:
        """The template that takes `path` (already decoded) and its captured parameters, or None."""
        if path != "/" and path.endswith("/"):
            path = path[:-1]
        parts = path.split("/")
        for template, segments in self._templates:
            if len(segments) != len(parts):
                continue
            captured = {}
            for segment, part in zip(segments, parts):
                if segment.startswith("{") and segment.endswith("}"):
                    if not part:
                        break
                    captured[segment[1:-1]] = part
                elif segment != part:
                    break
            else:
                return template, captured
        return None


def rest_event(event: dict, template: str, captured: Dict[str, str], path: str) -> dict:
    """The REST API's event for a function URL's, matched to `template`."""
    http = event["requestContext"]["http"]
    headers = dict(event.get("headers") or {})
    if event.get("cookies"):
        headers["cookie"] = "; ".join(event["cookies"])  # a function URL moves them out of the headers
    query = parse_qs(event.get("rawQueryString") or "", keep_blank_values=True)
    return {
        "resource": template, "path": path, "httpMethod": http["method"],
        "headers": headers, "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": {name: values[-1] for name, values in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": captured or None, "stageVariables": None,
        "requestContext": {"resourcePath": template, "httpMethod": http["method"], "path": path,
                           "requestId": event["requestContext"].get("requestId"), "stage": "$default",
                           "door": FUNCTION_URL_DOOR,
                           "identity": {"sourceIp": http.get("sourceIp"), "userAgent": http.get("userAgent")}},
        "body": event.get("body"), "isBase64Encoded": bool(event.get("isBase64Encoded")),
    }


def function_url_answer(response: dict) -> dict:
    """Chalice's answer (headers and multiValueHeaders) as a function URL returns it."""
    values: Dict[str, List[str]] = {}
    for name, value in (response.get("headers") or {}).items():
        values.setdefault(name.lower(), []).append(value)
    for name, listed in (response.get("multiValueHeaders") or {}).items():
        values.setdefault(name.lower(), []).extend(listed)
    cookies = values.pop("set-cookie", [])
    answer = {"statusCode": response["statusCode"], "headers": {name: ", ".join(v) for name, v in values.items()},
              "body": response.get("body") or "", "isBase64Encoded": bool(response.get("isBase64Encoded"))}
    if cookies:
        answer["cookies"] = cookies
    return answer


def unknown_route(method: str, path: str) -> dict:
    status, headers, body = error_reply(errors.ROUTE_UNKNOWN, {"method": method, "path": path})
    return {"statusCode": status, "headers": {name.lower(): value for name, value in headers
                                              if name.lower() != "content-length"},
            "body": base64.b64encode(body).decode(), "isBase64Encoded": True}


def handle(app, matcher: RouteMatcher, event: dict, context) -> dict:
    """Answer a function URL's event with `app` (Chalice's __call__, which takes REST events)."""
    method = event["requestContext"]["http"]["method"]
    path = unquote(event.get("rawPath") or "/")
    matched = matcher.match(path)
    if matched is None or method not in app.routes.get(matched[0], {}):
        return unknown_route(method, path)
    return function_url_answer(app.answer_rest_event(rest_event(event, *matched, path), context))

