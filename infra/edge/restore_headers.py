"""Lambda@Edge origin-response function for the CloudFront distribution in front of API Gateway.

API Gateway's REST proxy integration renames some response headers of the function to
`x-amzn-Remapped-<name>`. Docker's token challenge needs `WWW-Authenticate` under its own name, so
this function puts it back. Origin-response triggers run for 4xx responses too (a CloudFront
Functions viewer-response trigger would not), which is where the challenge lives.

Content-Length is deliberately not restored: for HEAD, CloudFront computes it and the value is
not ours to set. The app answers every HEAD that needs an exact length with a 307 to a presigned
S3 HEAD instead (DESIGN.md §1a).
"""

# lower-case name as CloudFront keys it -> the name clients see
RESTORED = {"www-authenticate": "WWW-Authenticate"}
REMAPPED_PREFIX = "x-amzn-remapped-"


def handler(event, context):
    response = event["Records"][0]["cf"]["response"]
    headers = response["headers"]
    for name, key in RESTORED.items():
        remapped = headers.pop(REMAPPED_PREFIX + name, None)
        if remapped and name not in headers:
            headers[name] = [{"key": key, "value": entry["value"]} for entry in remapped]
    return response
