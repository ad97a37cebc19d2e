"""Lambda@Edge origin-response function for the CloudFront distribution in front of API Gateway.

API Gateway's REST proxy integration renames some response headers of the function to
`x-amzn-Remapped-<name>`. Docker's token challenge needs `WWW-Authenticate` under its own name,
and a manifest or blob HEAD needs the function's `Content-Length` (API Gateway recomputes it from
the empty body: 0, which containerd refuses), so this function puts both back, replacing what API
Gateway put in their place. Origin-response triggers run for 4xx responses too (a CloudFront
Functions viewer-response trigger would not), which is where the challenge lives, and
Content-Length is read-only in viewer events but not in origin-response ones (DESIGN.md §1a).
"""

# lower-case name as CloudFront keys it -> the name clients see
RESTORED = {"www-authenticate": "WWW-Authenticate", "content-length": "Content-Length"}
REMAPPED_PREFIX = "x-amzn-remapped-"


def handler(event, context):
    response = event["Records"][0]["cf"]["response"]
    headers = response["headers"]
    for name, key in RESTORED.items():
        remapped = headers.pop(REMAPPED_PREFIX + name, None)
        if remapped:
            headers[name] = [{"key": key, "value": entry["value"]} for entry in remapped]
    return response
