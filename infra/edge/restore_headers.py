"""Lambda@Edge origin-response function for the CloudFront distribution in front of API Gateway.

API Gateway's REST proxy integration renames some response headers of the function to
`x-amzn-Remapped-<name>`. Docker's token challenge needs `WWW-Authenticate` under its own name,
and a manifest or blob HEAD needs the function's `Content-Length` (API Gateway recomputes it from
the empty body: 0, which containerd refuses), so this function puts both back, replacing what API
Gateway put in their place. Origin-response triggers run for 4xx responses too (a CloudFront
Functions viewer-response trigger would not), which is where the challenge lives, and
Content-Length is read-only in viewer events but not in origin-response ones (DESIGN.md §1a).

Behind the function URL door nothing like API Gateway's gateway responses exists: a body above
Lambda's 6 MB, a function that failed or ran out of time, a throttled invocation are answered by
the URL itself, with its own JSON. Every answer of the app (and every gateway response) carries
the registry's API version header; an error without it is the door's, and is given the OCI
error body the API Gateway door gives the same refusal (tests/infra/test_edge.py holds these to
chalicelib/oci/errors.py), with a Retry-After where docker should try again.
"""
import json

# lower-case name as CloudFront keys it -> the name clients see
RESTORED = {"www-authenticate": "WWW-Authenticate", "content-length": "Content-Length"}
REMAPPED_PREFIX = "x-amzn-remapped-"
API_VERSION_HEADER = "docker-distribution-api-version"
# status of the door's own answer -> the OCI error code and message, and whether to retry
TOO_LARGE = ("SIZE_INVALID", "request body larger than the front door accepts: push large layers through "
                             "`dockless gateway` or with `dockless push`")
FAILED = ("UNKNOWN", "the registry function failed or refused the request")
THROTTLED = ("TOOMANYREQUESTS", "too many requests")
DOOR_ERRORS = {"413": (TOO_LARGE, False), "429": (THROTTLED, True), "500": (FAILED, False),
               "502": (FAILED, False), "503": (FAILED, True), "504": (FAILED, True)}
RETRY_AFTER_SECONDS = "1"


def handler(event, context):
    response = event["Records"][0]["cf"]["response"]
    headers = response["headers"]
    for name, key in RESTORED.items():
        remapped = headers.pop(REMAPPED_PREFIX + name, None)
        if remapped:
            headers[name] = [{"key": key, "value": entry["value"]} for entry in remapped]
    if response["status"] in DOOR_ERRORS and API_VERSION_HEADER not in headers:
        _as_oci_error(response)
    return response


def _as_oci_error(response) -> None:
    (code, message), retry = DOOR_ERRORS[response["status"]]
    response["body"] = json.dumps({"errors": [{"code": code, "message": message}]})
    response["bodyEncoding"] = "text"
    headers = response["headers"]
    for name in ("content-length", "content-encoding", "x-amzn-errortype"):
        headers.pop(name, None)
    headers["content-type"] = [{"key": "Content-Type", "value": "application/json"}]
    headers[API_VERSION_HEADER] = [{"key": "Docker-Distribution-Api-Version", "value": "registry/2.0"}]
    headers["x-registry-supports-signatures"] = [{"key": "X-Registry-Supports-Signatures", "value": "1"}]
    headers["cache-control"] = [{"key": "Cache-Control", "value": "no-store"}]
    if retry:
        headers["retry-after"] = [{"key": "Retry-After", "value": RETRY_AFTER_SECONDS}]
