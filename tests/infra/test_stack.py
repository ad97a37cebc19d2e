"""The deployable template: `chalice package --merge-template` output, linted with cfn-lint, and
each promise of the stack checked on the template itself (what only a real account can prove is
listed in README's "Deploy to AWS")."""
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from chalicelib.lifecycle import prices
from chalicelib.metadata.models import TABLES, TTL_ATTRIBUTES
from chalicelib.oci import errors, spec
from chalicelib.routes import jobs
from chalicelib.routes.jobs import JOBS
from chalicelib.runtime.config import Settings
from infra import package, permissions, runtime, stack

STAGE = "prod"
# Read before packaging rewrites it: the file in the tree must be what the generator produces.
COMMITTED_POLICY = json.loads(package.policy_path(STAGE).read_text())


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    out = tmp_path_factory.mktemp("package")
    path = package.package(STAGE, out, "eu-west-1")
    return json.loads(path.read_text()) | {"_path": str(path)}


def resources(template, kind):
    return {name: r for name, r in template["Resources"].items() if r.get("Type") == kind}


def as_deployed(template, door=stack.API_GATEWAY_DOOR, domain=False):
    """The template as CloudFormation makes it with these parameters: each Fn::If resolved, and the
    resources of a false condition left out."""
    conditions = {"FunctionUrlDoor": door == stack.FUNCTION_URL_DOOR, "ApiGatewayDoor": door == stack.API_GATEWAY_DOOR,
                  "HasDomain": domain, "HasGpgLayer": False, "HasAlarmEmail": False}

    def resolve(value):
        if isinstance(value, dict):
            if set(value) == {"Fn::If"}:
                name, yes, no = value["Fn::If"]
                return resolve(yes if conditions[name] else no)
            return {key: resolve(item) for key, item in value.items()}
        if isinstance(value, list):
            return [resolve(item) for item in value]
        return value
    kept = {name: r for name, r in template["Resources"].items() if conditions.get(r.get("Condition"), True)}
    return resolve(dict(template, Resources=kept))


def test_cfn_lint_passes_on_the_packaged_template(template):
    lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(lint), template["_path"]], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_passes_on_the_edge_template(tmp_path):
    path = stack.write(stack.edge_template(), tmp_path / "edge.json")
    lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(lint), str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_bucket_is_private_encrypted_tls_only_and_retained(template):
    (name, bucket), = resources(template, "AWS::S3::Bucket").items()
    properties = bucket["Properties"]
    assert bucket["DeletionPolicy"] == "RetainExceptOnCreate" and bucket["UpdateReplacePolicy"] == "Retain"
    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    (policy,) = resources(template, "AWS::S3::BucketPolicy").values()
    deny, edge_reads = policy["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert policy["Properties"]["Bucket"] == {"Ref": name}
    # The distribution alone, and only blobs at their content-addressed keys (the blob gate's reads).
    assert (edge_reads["Effect"], edge_reads["Action"], edge_reads["Principal"]) == (
        "Allow", "s3:GetObject", {"Service": "cloudfront.amazonaws.com"})
    assert edge_reads["Resource"] == [{"Fn::Sub": "${Blobs.Arn}/blobs/sha256/*"}, {"Fn::Sub": "${Blobs.Arn}/blobs/direct/*"}]
    assert edge_reads["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Sub"].endswith(":distribution/${Distribution}")


def test_lifecycle_expires_only_staged_uploads_and_aborts_incomplete_multipart(template):
    rules = template["Resources"]["Blobs"]["Properties"]["LifecycleConfiguration"]["Rules"]
    expiring = [rule["Prefix"] for rule in rules if "ExpirationInDays" in rule]
    assert expiring == ["uploads/"]
    assert any(rule.get("AbortIncompleteMultipartUpload") and rule["Prefix"] == "" for rule in rules)
    assert all(rule["Prefix"] != "" or "ExpirationInDays" not in rule for rule in rules)


def test_every_model_has_its_table_on_demand_with_recovery_ttl_and_retention(template):
    tables = resources(template, "AWS::DynamoDB::Table")
    assert len(tables) == len(TABLES)
    for model, concern in TABLES.items():
        table = tables[stack.table_id(concern)]
        properties = table["Properties"]
        schema = model._get_schema()
        assert table["DeletionPolicy"] == "RetainExceptOnCreate"
        assert properties["TableName"] == f"dockless-{STAGE}-{concern}"
        assert properties["BillingMode"] == "PAY_PER_REQUEST"
        assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert properties["KeySchema"][0]["KeyType"] == "HASH"
        assert {(k["AttributeName"], k["KeyType"]) for k in properties["KeySchema"]} == \
            {(k["AttributeName"], k["KeyType"]) for k in schema["key_schema"]}
        assert sorted(i["IndexName"] for i in properties.get("GlobalSecondaryIndexes", [])) == \
            sorted(i["index_name"] for i in schema["global_secondary_indexes"])
        ttl = properties.get("TimeToLiveSpecification")
        assert ttl == ({"AttributeName": TTL_ATTRIBUTES[model], "Enabled": True} if model in TTL_ATTRIBUTES else None)


def test_secrets_are_retained_and_the_token_key_is_generated(template):
    secrets = resources(template, "AWS::SecretsManager::Secret")
    assert set(secrets) == {"TokenSigningKey", "RegistrySigningKey", "OriginSecret", "SsoClientSecret", "EdgeSecret"}
    assert "GenerateSecretString" in secrets["EdgeSecret"]["Properties"]
    assert all(secret["DeletionPolicy"] == "RetainExceptOnCreate" for secret in secrets.values())
    assert "GenerateSecretString" in secrets["TokenSigningKey"]["Properties"]


def test_every_function_gets_the_stacks_resources_as_settings(template):
    functions = resources(template, "AWS::Serverless::Function")
    assert set(functions) == {stack.API_FUNCTION, *stack.JOB_FUNCTIONS, *stack.QUEUE_FUNCTIONS}
    for function in functions.values():
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["DOCKLESS_BUCKET"] == {"Ref": "Blobs"}
        assert variables["DOCKLESS_TOKEN_SIGNING_KEY_SECRET"] == {"Ref": "TokenSigningKey"}
        assert variables["DOCKLESS_PUBLIC_URL_PARAMETER"] == template["Resources"]["PublicUrl"]["Properties"]["Name"]
        resolved = {k: v if isinstance(v, str) else "resolved" for k, v in variables.items()}
        assert variables["DOCKLESS_LOG_RETENTION_DAYS"] == {"Ref": "LogRetentionDays"}
        resolved["DOCKLESS_LOG_RETENTION_DAYS"] = str(template["Parameters"]["LogRetentionDays"]["Default"])
        settings = Settings.from_environ(resolved)
        assert settings.log_retention_days == 400
        assert settings.table_prefix == f"dockless-{STAGE}"
        assert settings.trusted_proxy_hops == 2 and settings.s3_presign_endpoint_url is None
        assert settings.origin_secret and settings.token_signing_key_secret and settings.public_url_parameter
        assert "DOCKLESS_PUBLIC_URL" not in variables  # it would point at no one's registry
    # A job's lease outlasts its run only if the function cannot run longer (chalicelib/metadata/leases.py).
    for name, (_, _, seconds) in JOBS.items():
        assert functions[stack.to_cfn_resource_name(name)]["Properties"]["Timeout"] == seconds
    assert functions["VerifyUnprovenBlobs"]["Properties"]["Timeout"] == 900
    assert functions[stack.API_FUNCTION]["Properties"]["Timeout"] == jobs.API_RUN_SECONDS


def test_scheduled_jobs_are_chalice_schedules_in_the_stack(template):
    for name in stack.JOB_FUNCTIONS:
        (event,) = template["Resources"][name]["Properties"]["Events"].values()
        assert event["Type"] == "Schedule"


def test_the_queue_consumers_read_the_stacks_queues_one_message_at_a_time(template):
    for name, queue in stack.QUEUE_FUNCTIONS.items():
        (event,) = template["Resources"][name]["Properties"]["Events"].values()
        assert event["Type"] == "SQS" and event["Properties"]["BatchSize"] == 1
        assert event["Properties"]["Queue"] == {"Fn::GetAtt": [queue, "Arn"]}
        # The events stay in order (FIFO); scans need none, and go to the dead letters after three tries.
        properties = template["Resources"][queue]["Properties"]
        assert properties.get("FifoQueue") is (True if queue != "ScansQueue" else None)
        visibility = template["Resources"][queue]["Properties"]["VisibilityTimeout"]
        assert visibility >= template["Resources"][name]["Properties"]["Timeout"]  # as Lambda requires
    assert set(stack.QUEUE_FUNCTIONS.values()) == {"EventsQueue", "DeliveriesQueue", "ScansQueue"}
    scans = template["Resources"]["ScansQueue"]["Properties"]
    assert scans["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
                                      "maxReceiveCount": 3}
    assert template["Resources"]["ScanImages"]["Properties"]["Timeout"] == 900


def test_every_handler_is_a_name_of_the_app_module(template):
    """Lambda calls `app.<name>`: each function's handler must be one (a lambda's `<lambda>` is not)."""
    import app
    for name, function in resources(template, "AWS::Serverless::Function").items():
        module, attribute = function["Properties"]["Handler"].split(".")
        assert module == "app" and callable(getattr(app, attribute, None)), name


def test_every_body_reaches_lambda_base64(template):
    body = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    assert body["x-amazon-apigateway-binary-media-types"] == ["*/*"]


def test_gateway_refusals_are_oci_errors_in_the_apis_definition(template):
    """In the OpenAPI definition, which every deployment takes, not as standalone resources, which
    SAM's deployment snapshot leaves out (aws/serverless-application-model#390, #3482)."""
    assert resources(template, "AWS::ApiGateway::GatewayResponse") == {}
    responses = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"][
        "x-amazon-apigateway-gateway-responses"]
    expected = {"REQUEST_TOO_LARGE": errors.FRONT_DOOR_TOO_LARGE, "MISSING_AUTHENTICATION_TOKEN": errors.ROUTE_UNKNOWN,
                "INTEGRATION_TIMEOUT": errors.FRONT_DOOR_TIMEOUT, "DEFAULT_5XX": errors.FRONT_DOOR_FAILED}
    assert set(responses) == set(expected)
    for kind, error in expected.items():
        assert responses[kind]["statusCode"] == str(error.status)
        body = json.loads(responses[kind]["responseTemplates"]["application/json"])
        assert body["errors"][0]["code"] == error.code
        headers = responses[kind]["responseParameters"]
        assert headers[f"gatewayresponse.header.{spec.API_VERSION_HEADER}"] == "'registry/2.0'"
        assert headers[f"gatewayresponse.header.{spec.SIGNATURES_HEADER}"] == "'1'"
        assert headers["gatewayresponse.header.Cache-Control"] == "'no-store'"


def test_cloudfront_caches_no_error(template):
    config = template["Resources"]["Distribution"]["Properties"]["DistributionConfig"]
    assert sorted(e["ErrorCode"] for e in config["CustomErrorResponses"]) == [
        400, 403, 404, 405, 414, 416, 500, 501, 502, 503, 504]
    assert all(e["ErrorCachingMinTTL"] == 0 and set(e) == {"ErrorCode", "ErrorCachingMinTTL"}
               for e in config["CustomErrorResponses"])


def test_cloudfront_forwards_authorization_every_query_and_header_but_host(template):
    config = template["Resources"]["Distribution"]["Properties"]["DistributionConfig"]
    behavior = config["DefaultCacheBehavior"]
    cache = template["Resources"]["CachePolicy"]["Properties"]["CachePolicyConfig"]
    assert cache["DefaultTTL"] == 0 and cache["MinTTL"] == 0 and cache["MaxTTL"] <= 1
    key = cache["ParametersInCacheKeyAndForwardedToOrigin"]
    assert key["HeadersConfig"]["Headers"] == ["Authorization"]
    assert key["QueryStringsConfig"]["QueryStringBehavior"] == "all"
    assert behavior["OriginRequestPolicyId"] == stack.ALL_VIEWER_EXCEPT_HOST
    assert set(behavior["AllowedMethods"]) >= {"GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"}
    assert behavior["ViewerProtocolPolicy"] == "https-only"
    origin = _api_origin(template)
    assert _api_origin(as_deployed(template))["OriginPath"] == "/api"
    assert origin["OriginCustomHeaders"][0]["HeaderName"] == spec.ORIGIN_SECRET_HEADER
    assert [a["EventType"] for a in behavior["LambdaFunctionAssociations"]] == ["origin-response"]
    assert [a["EventType"] for a in behavior["FunctionAssociations"]] == ["viewer-request"]
    assert config["Aliases"]["Fn::If"][0] == "HasDomain"


def test_each_door_is_cloudfronts_origin_and_the_other_is_not_made(template):
    """API Gateway's REST API stage (the default), or the API function's own URL, without auth but
    invocable only through it, checked by the origin secret as the REST API is."""
    rest = as_deployed(template)
    origin = _api_origin(rest)
    assert (origin["DomainName"], origin["OriginPath"]) == (stack.REST_API_DOMAIN, "/api")
    assert not resources(rest, "AWS::Lambda::Url") and "AlarmFunctionUrl5xx" not in rest["Resources"]
    assert rest["Outputs"]["OriginUrl"]["Value"]["Fn::Sub"].endswith("/api")

    url = as_deployed(template, stack.FUNCTION_URL_DOOR)
    origin = _api_origin(url)
    assert (origin["DomainName"], origin["OriginPath"]) == (stack.FUNCTION_URL_DOMAIN, "")
    assert origin["OriginCustomHeaders"][0]["HeaderName"] == spec.ORIGIN_SECRET_HEADER
    (function_url,) = resources(url, "AWS::Lambda::Url").values()
    assert function_url["Properties"] == {"TargetFunctionArn": {"Ref": stack.API_FUNCTION}, "AuthType": "NONE",
                                          "InvokeMode": "BUFFERED"}
    permissions = sorted((p["Properties"]["Action"], p["Properties"].get("FunctionUrlAuthType"),
                          p["Properties"].get("InvokedViaFunctionUrl"))
                         for p in resources(url, "AWS::Lambda::Permission").values()
                         if p["Properties"].get("Principal") == "*")
    assert permissions == [("lambda:InvokeFunction", None, True), ("lambda:InvokeFunctionUrl", "NONE", None)]
    assert "AlarmApi5xx" not in url["Resources"] and "AlarmFunctionUrl5xx" in url["Resources"]
    assert url["Outputs"]["OriginUrl"]["Value"] == {"Fn::GetAtt": ["ApiFunctionUrl", "FunctionUrl"]}
    assert template["Parameters"]["Door"]["AllowedValues"] == list(stack.DOORS)


def _api_origin(template) -> dict:
    origins = template["Resources"]["Distribution"]["Properties"]["DistributionConfig"]["Origins"]
    assert sorted(o["Id"] for o in origins) == ["api", "blobs"]
    return next(o for o in origins if o["Id"] == "api")


def test_blob_gets_pass_the_gate_to_the_bucket_and_the_rest_to_the_api(template):
    """The blob gate's behaviour: its viewer-request function, the API as the origin it falls back
    to, the bucket through origin access control; Lambda@Edge there only behind API Gateway."""
    for door, restored in ((stack.API_GATEWAY_DOOR, ["origin-response"]), (stack.FUNCTION_URL_DOOR, [])):
        config = as_deployed(template, door)["Resources"]["Distribution"]["Properties"]["DistributionConfig"]
        (behaviour,) = config["CacheBehaviors"]
        assert behaviour["PathPattern"] == "/v2/*/blobs/sha256:*" and behaviour["TargetOriginId"] == "api"
        assert behaviour["FunctionAssociations"] == [{"EventType": "viewer-request", "FunctionARN": {
            "Fn::GetAtt": ["BlobGate", "FunctionMetadata.FunctionARN"]}}]
        assert [a["EventType"] for a in behaviour["LambdaFunctionAssociations"]] == restored
        assert behaviour["CachePolicyId"] == config["DefaultCacheBehavior"]["CachePolicyId"]
        (blobs,) = [o for o in config["Origins"] if o["Id"] == "blobs"]
        assert blobs["DomainName"] == {"Fn::GetAtt": ["Blobs", "RegionalDomainName"]}
        assert blobs["OriginAccessControlId"] == {"Fn::GetAtt": ["BlobsAccessControl", "Id"]}
        assert "OriginCustomHeaders" not in blobs  # the origin secret is the API's alone
    control = template["Resources"]["BlobsAccessControl"]["Properties"]["OriginAccessControlConfig"]
    assert (control["OriginAccessControlOriginType"], control["SigningBehavior"]) == ("s3", "always")
    gate = template["Resources"]["BlobGate"]["Properties"]
    assert gate["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0"
    before, secret, after = gate["FunctionCode"]["Fn::Join"][1]
    assert secret == {"Fn::Sub": "{{resolve:secretsmanager:${EdgeSecret}:SecretString}}"}
    assert "__" not in before + after  # every placeholder filled
    assert len((before + after).encode()) < 10 * 1024  # CloudFront Functions' code limit


def test_the_viewer_host_function_passes_the_host_on(tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    script = tmp_path / "run.js"
    script.write_text(stack.VIEWER_HOST_CODE + """
var out = handler({request: {headers: {host: {value: 'registry.example.com'}}}});
console.log(JSON.stringify(out.headers));""")
    headers = json.loads(subprocess.run([node, str(script)], capture_output=True, text=True, check=True).stdout)
    assert headers[spec.VIEWER_HOST_HEADER.lower()] == {"value": "registry.example.com"}


def test_public_url_is_an_output_and_a_parameter_without_a_cycle(template):
    parameter = template["Resources"]["PublicUrl"]["Properties"]
    assert parameter["Name"] == f"/dockless/{STAGE}/public-url"
    assert template["Outputs"]["PublicUrl"]["Value"] == {"Fn::GetAtt": ["PublicUrl", "Value"]}
    # The functions name the parameter; they never reference the distribution (cfn-lint would
    # report the cycle, E3004).
    assert "Distribution" not in json.dumps(template["Resources"][stack.API_FUNCTION])


def test_alarms_cover_5xx_function_errors_throttles_and_quotas(template):
    alarms = resources(template, "AWS::CloudWatch::Alarm").values()
    metrics = {(a["Properties"]["Namespace"], a["Properties"]["MetricName"]) for a in alarms}
    assert {("AWS/ApiGateway", "5XXError"), ("AWS/Lambda", "Errors"), ("AWS/Lambda", "Throttles"),
            ("AWS/DynamoDB", "ReadThrottleEvents"), ("AWS/DynamoDB", "WriteThrottleEvents")} <= metrics
    # The quota alerts' metric (chalicelib/lifecycle/quota.py emits it through the embedded metric format).
    quota = {a["Properties"]["Dimensions"][0]["Value"] for a in alarms
             if (a["Properties"]["Namespace"], a["Properties"]["MetricName"]) == ("dockless", "QuotaAlerts")}
    assert quota == {"80", "100"}


def test_the_functions_role_is_the_committed_policy(template):
    committed = COMMITTED_POLICY
    assert committed == permissions.policy(STAGE)
    roles = resources(template, "AWS::IAM::Role")
    assert roles and all(r["Properties"]["Policies"][0]["PolicyDocument"] == committed for r in roles.values())


def _runtime_python() -> str:
    python = runtime.interpreter()
    assert python, f"these tests import the bundle with {runtime.PYTHON}: set DOCKLESS_RUNTIME_PYTHON"
    return python


def test_every_function_runs_the_pinned_python_on_arm64_and_the_edge_function_on_x86(template):
    functions = resources(template, "AWS::Serverless::Function")
    assert len(functions) == 1 + len(JOBS) + len(jobs.QUEUE_CONSUMERS)
    assert {(f["Properties"]["Runtime"], tuple(f["Properties"]["Architectures"])) for f in functions.values()} \
        == {("python3.13", ("arm64",))}
    (edge,) = resources(stack.edge_template(), "AWS::Lambda::Function").values()
    # Lambda@Edge takes no arm64 functions.
    assert (edge["Properties"]["Runtime"], edge["Properties"]["Architectures"]) == ("python3.13", ["x86_64"])


def test_the_bundles_wheels_are_the_runtimes(template):
    """Every wheel in the bundle is pure Python or built for CPython 3.13 (or its stable ABI) on
    aarch64, whatever Python packaged it: MarkupSafe's speedups, cffi, and cryptography's Rust
    bindings are the native modules, and come for that target."""
    with zipfile.ZipFile(Path(template["_path"]).parent / "deployment.zip") as archive:
        names = archive.namelist()
        tags = {name.split(".dist-info")[0]: [line.split(": ")[1] for line in archive.read(name).decode().splitlines()
                                              if line.startswith("Tag: ")]
                for name in names if name.endswith(".dist-info/WHEEL")}
    assert len(tags) >= 10
    for wheel, wheel_tags in tags.items():
        pure = set(wheel_tags) <= {"py2-none-any", "py3-none-any"}
        native = all((tag.startswith("cp313-cp313-manylinux") or re.fullmatch(r"cp3\d+-abi3-manylinux.*", tag))
                     and tag.endswith("_aarch64") for tag in wheel_tags)
        assert wheel_tags and (pure or native), (wheel, wheel_tags)
    native = [name for name in names if name.endswith(".so")]
    assert sorted(native) == ["_cffi_backend.cpython-313-aarch64-linux-gnu.so", "cryptography/hazmat/bindings/_rust.abi3.so",
                              "markupsafe/_speedups.cpython-313-aarch64-linux-gnu.so"]


def test_the_bundle_carries_what_the_functions_import_and_works_alone(template, tmp_path):
    """deployment.zip: the functions' imports with boto3 and botocore of one release, none of the
    CLI's tools, at most 12 MB; unpacked alone (no site-packages) on the runtime's Python it
    imports the app and builds every client the functions use."""
    bundle = Path(template["_path"]).parent / "deployment.zip"
    assert bundle.stat().st_size <= 12 * 1024 * 1024
    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
        archive.extractall(tmp_path / "bundle")
    tops = {name.split("/")[0] for name in names}
    assert {"app.py", "chalice", "chalicelib", "boto3", "botocore", "pynamodb", "blinker", "gnupg.py"} <= tops
    assert not tops & {"pip", "setuptools", "click", "yaml", "wcwidth", "dockless", "infra", "tests", "moto"}
    versions = {name.split("-")[1] for name in tops if name.startswith(("boto3-", "botocore-"))}
    assert len(versions) == 1, tops  # one release of both
    services = {name.split("/")[2] for name in names if name.startswith("botocore/data/") and name.count("/") > 3}
    assert services == set(package.BOTOCORE_SERVICES)
    script = ("import sys; sys.path.insert(0, sys.argv[1]); import app; "
              "from chalicelib.runtime.config import Settings; from chalicelib.backend import build_backend; "
              "from chalicelib.metadata.models import Manifest; "
              "s = build_backend(Settings.from_environ({'AWS_DEFAULT_REGION': 'eu-west-1'})); "
              "[s.client(n) for n in ('secretsmanager', 'ssm')]; Manifest._get_connection().connection.client; "
              "from chalicelib import console; "  # the console's templates and their library came along
              "assert 'Sign in' in console._templates().get_template('signin.html').render(caller=None, csrf='x', problem=None, name=None); "
              "print(sys.version_info[:2], s.objects.presign_get('k').split('?')[0])")
    result = subprocess.run([_runtime_python(), "-S", "-c", script, str(tmp_path / "bundle")], capture_output=True,
                            text=True, env={"PATH": "/usr/bin:/bin", "AWS_ACCESS_KEY_ID": "dummy",
                                            "AWS_SECRET_ACCESS_KEY": "dummy"})
    assert result.returncode == 0, result.stderr
    version, url = result.stdout.strip().split(") ")
    assert version == "(3, 13" and url.endswith(".s3.eu-west-1.amazonaws.com/k")


def _cached(source: str) -> str:
    """Where the runtime's import looks for a module's bytecode (PEP 3147, CPython 3.13's tag)."""
    folder, _, name = source.rpartition("/")
    return f"{folder + '/' if folder else ''}__pycache__/{name.removesuffix('.py')}.cpython-313.pyc"


def test_the_functions_start_from_the_bundles_bytecode(template, tmp_path):
    """Lambda's /var/task is read-only: without .pyc files in the zip every cold start compiles
    every module. Each module's bytecode is the runtime's (3.13's tag, compiled by a 3.13, whatever
    Python packaged it) and is what the import runs: with a module's source replaced by a failing
    one, the app still imports."""
    bundle = tmp_path / "bundle"
    with zipfile.ZipFile(Path(template["_path"]).parent / "deployment.zip") as archive:
        names = set(archive.namelist())
        archive.extractall(bundle)
    sources = {name for name in names if name.endswith(".py")}
    assert {"app.py", "chalicelib/runtime/application.py", "botocore/client.py", "pynamodb/models.py"} <= sources
    assert {name for name in sources if _cached(name) not in names} == set()
    assert not [name for name in names if name.endswith(".pyc") and ".cpython-313." not in name]
    for name in ("chalicelib/runtime/config.py", "botocore/client.py"):
        (bundle / name).write_text("raise SystemExit('compiled from source at cold start')\n")
    result = subprocess.run([_runtime_python(), "-S", "-B", "-c", "import sys; sys.path.insert(0, sys.argv[1]); import app",
                             str(bundle)], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr


def test_the_cost_model_counts_what_the_template_bills(template):
    """chalicelib/lifecycle/prices.py prices the stack's fixed items by count: they are the packaged
    template's, and its logs are kept as long as the log groups keep them."""
    for door in stack.DOORS:
        assert prices.STACK_ALARMS == len(resources(as_deployed(template, door), "AWS::CloudWatch::Alarm"))
    assert prices.STACK_SECRETS == len(resources(template, "AWS::SecretsManager::Secret"))
    assert prices.STACK_JOBS == len(JOBS) == len(resources(template, "AWS::Serverless::Function")) - 1 \
        - len(jobs.QUEUE_CONSUMERS)
    assert {json.dumps(g["Properties"]["RetentionInDays"]) for g in resources(template, "AWS::Logs::LogGroup").values()} \
        == {'{"Ref": "LogRetentionDays"}'}
    assert template["Parameters"]["LogRetentionDays"]["Default"] == prices.LOG_RETENTION_DAYS
    assert template["Resources"][stack.API_FUNCTION]["Properties"]["Environment"]["Variables"][
        "DOCKLESS_LOG_RETENTION_DAYS"] == {"Ref": "LogRetentionDays"}
    assert len(TABLES) == len(resources(template, "AWS::DynamoDB::Table"))
    (edge,) = resources(stack.edge_template(), "AWS::Lambda::Function").values()
    assert edge["Properties"]["MemorySize"] / 1024 == prices.EDGE_MEMORY_GB
    assert {f["Properties"].get("MemorySize") for f in resources(template, "AWS::Serverless::Function").values()} \
        == {int(prices.LAMBDA_MEMORY_GB * 1024)}
    assert all(f["Properties"]["Architectures"] == ["arm64"] for f in resources(template, "AWS::Serverless::Function").values())


NAMED = ("Name", "TableName", "LogGroupName", "AlarmName", "FunctionName", "BucketName", "RoleName",
         "TopicName", "PolicyName")
# Names one account shares across regions: CloudFront's and IAM's, and the edge stacks, which all
# live in us-east-1.
GLOBAL_TYPES = ("AWS::CloudFront::", "AWS::IAM::")


def _names(node, resolve):
    """Every explicit name under a resource's properties, resolved for one stack."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("Dimensions", "Tags"):
                continue  # a metric's or a tag's "Name" names no resource
            if key in NAMED and (isinstance(value, str) or (isinstance(value, dict) and "Fn::Sub" in value)):
                yield resolve(value)
            else:
                yield from _names(value, resolve)
    elif isinstance(node, list):
        for value in node:
            yield from _names(value, resolve)


def test_two_stages_in_two_regions_share_no_name():
    """prod and test, each in eu-west-1 and us-east-2, in one account: no two stacks name a
    resource alike where AWS would refuse the second (regional names within a region, CloudFront
    and IAM names and the us-east-1 edge stacks across all)."""
    from dockless.deploy.stack import Target
    regional, global_ = {}, {}
    for stage in ("prod", "test"):
        for region in ("eu-west-1", "us-east-2"):
            name = stack.stack_name(stage)

            def resolve(value, name=name, region=region):
                text = value if isinstance(value, str) else value["Fn::Sub"]
                return text.replace("${AWS::StackName}", name).replace("${AWS::Region}", region)
            for resource in stack.merge_template(stage)["Resources"].values():
                kind = resource.get("Type", "")
                where = global_ if kind.startswith(GLOBAL_TYPES) else regional.setdefault(region, {})
                for found in _names(resource.get("Properties", {}), resolve):
                    if "${" not in found:  # a name made of another resource's id is unique with it
                        where.setdefault((kind, found), []).append((stage, region))
            target = Target(stage, region)
            global_.setdefault(("edge stack", target.edge_stack), []).append((stage, region))
            regional.setdefault(region, {}).setdefault(("stack", target.stack), []).append((stage, region))
    clashes = {key: users for names in [global_, *regional.values()] for key, users in names.items() if len(users) > 1}
    assert clashes == {}
    assert any(kind.startswith("AWS::CloudFront::") for kind, _ in global_)  # the check saw the global names
