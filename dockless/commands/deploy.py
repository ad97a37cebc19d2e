"""A registry in an AWS account: `dockless deploy`, `destroy`, `key rotate-registry` and `check`."""

import sys

import click

from chalicelib.runtime.config import LOG_RETENTION_CHOICES, LOG_RETENTION_DAYS
from chalicelib.runtime.function_url import DOORS
from dockless.ui import UI, Exit
from dockless.commands.images import credentials
from dockless.commands.repositories import key


def register(main: click.Group) -> None:
    main.add_command(deploy)
    main.add_command(destroy)
    main.add_command(check)


def _target_options(function):
    for option in reversed([
        click.option("--stage", required=True, help="Name of this registry's stage: stack dockless-STAGE."),
        click.option("--region", envvar=["AWS_REGION", "AWS_DEFAULT_REGION"], required=True,
                     help="AWS region of the stack [default: $AWS_REGION or $AWS_DEFAULT_REGION]."),
    ]):
        function = option(function)
    return function


@click.command()
@_target_options
@click.option("--domain", default="", help="Custom domain (a CNAME to the distribution is yours to add).")
@click.option("--certificate-arn", default="", help="ACM certificate for --domain, in us-east-1.")
@click.option("--gpg-layer-arn", default="", help="Lambda layer with a full gpg (infra/gpg-layer), for automatic signing.")
@click.option("--alarm-email", default="", help="Subscribe this address to the stack's alarms.")
@click.option("--door", type=click.Choice(DOORS), default=DOORS[0], show_default=True,
              help="What CloudFront sends requests through to the API function: API Gateway, or the function's "
                   "own URL (no per-request gateway fee; docs/aws.md, \"The doors\").")
@click.option("--sso-issuer", default="", help="Single sign-on: the OpenID Connect provider's https:// issuer URL.")
@click.option("--sso-client-id", default="", help="Single sign-on: the registry's client id at the provider.")
@click.option("--sso-team", "sso_teams", multiple=True, metavar="GROUP=TEAM",
              help="Single sign-on: the provider's group GROUP makes people members of team TEAM (repeatable).")
@click.option("--sso-scopes", default="openid profile email", show_default=True,
              help="Single sign-on: the scopes asked for (add the one that puts groups in the ID token, e.g. groups).")
@click.option("--advisory-feed", "advisory_feeds", multiple=True, metavar="URL",
              help="An https URL of OSV advisories (e.g. OSV's Debian/all.zip) the registry imports daily (repeatable).")
@click.option("--log-retention-days", type=click.Choice([str(days) for days in LOG_RETENTION_CHOICES]),
              default=str(LOG_RETENTION_DAYS), show_default=True,
              help="How long the functions' logs (a record per request) are kept; the audit trail is kept apart "
                   "(docs/costs.md: the logs' share of each request).")
@click.option("--sso-client-secret-stdin", is_flag=True,
              help="Read the client's secret from standard input into the stack's secret (kept until given again).")
@click.pass_obj
def deploy(ui: UI, stage, region, domain, certificate_arn, gpg_layer_arn, alarm_email, door, sso_issuer,
           sso_client_id, sso_teams, sso_scopes, advisory_feeds, log_retention_days, sso_client_secret_stdin):
    """Deploy (or update) a registry to the AWS account of the credentials in the environment.

    Packages the app, creates or updates its stacks, waits, prints the registry's URL, and on the
    first run creates user `admin` and prints its token once. Re-running updates in place.

    \b
    Example:
      dockless deploy --stage prod --region eu-west-1
      dockless deploy --stage prod --region eu-west-1 --domain registry.example.com \\
          --certificate-arn arn:aws:acm:us-east-1:123456789012:certificate/...
      dockless deploy --stage prod --region eu-west-1 --door function-url
      dockless deploy --stage prod --region eu-west-1 --sso-issuer https://acme.okta.com \
          --sso-client-id 0oa1dockless --sso-team platform=platform --sso-client-secret-stdin < secret
    """
    from dockless.deploy.stack import Deployer, Target, boto3_clients
    if bool(domain) != bool(certificate_arn):
        ui.error("--domain and --certificate-arn go together")
        raise SystemExit(Exit.USAGE)
    if bool(sso_issuer) != bool(sso_client_id) or any("=" not in pair for pair in sso_teams):
        ui.error("--sso-issuer and --sso-client-id go together; --sso-team is GROUP=TEAM")
        raise SystemExit(Exit.USAGE)
    secret = sys.stdin.readline().strip() if sso_client_secret_stdin else None
    target = Target(stage, region, domain, certificate_arn, gpg_layer_arn, alarm_email, door, sso_issuer,
                    sso_client_id, ",".join(sso_teams), secret, sso_scopes, ",".join(advisory_feeds),
                    int(log_retention_days))
    outputs = Deployer(target, boto3_clients, ui.info).deploy()
    ui.result(f"registry: {outputs['PublicUrl']}")
    host = outputs["PublicUrl"].split("://", 1)[-1]
    ui.info(f"  docker login {host} -u admin")
    if outputs.get("CheckPassed") is False:
        ui.error("the deployment failed `dockless check` (the FAIL lines above say what to do)")
        raise SystemExit(Exit.FAILED)


@click.command()
@_target_options
@click.option("--delete-data", metavar="STAGE", default=None,
              help="Also delete the bucket, tables and secrets: name the stage again to confirm.")
@click.pass_obj
def destroy(ui: UI, stage, region, delete_data):
    """Delete a registry's stacks. Its data (bucket, tables, secrets) is kept unless told twice.

    \b
    Example:
      dockless destroy --stage test --region eu-west-1
      dockless destroy --stage test --region eu-west-1 --delete-data test
    """
    from dockless.deploy.stack import Deployer, Target, boto3_clients
    Deployer(Target(stage, region), boto3_clients, ui.info).destroy(delete_data)


@key.command(name="rotate-registry")
@_target_options
@click.pass_obj
def rotate_registry(ui: UI, stage, region):
    """Give a deployed registry a new signing key for automatic signing, made here with gpg and
    stored in the stage's secret with the AWS credentials of the environment. Functions take it as
    their containers start; signatures by the old key still verify.

    \b
    Example:
      dockless key rotate-registry --stage prod --region eu-west-1
    """
    from dockless.deploy.stack import Deployer, Target, boto3_clients
    made = Deployer(Target(stage, region), boto3_clients, ui.info).rotate_registry_key()
    raise SystemExit(Exit.OK if made else Exit.FAILED)


@click.command()
@click.argument("url")
@credentials
@click.option("--origin", default=None, help="The API Gateway URL behind CloudFront (stack output OriginUrl): "
                                             "checked to refuse requests that skip the front door.")
@click.option("--big", is_flag=True, help="Push a layer above S3's single-PUT size through the gateway (5 GiB).")
@click.option("--ca-cert", type=click.Path(dir_okay=False, exists=True), default=None,
              help="A CA certificate to trust (a local stack started with --tls).")
@click.pass_obj
def check(ui: UI, url, username, password, origin, big, ca_cert):
    """Prove a deployment end to end: push and pull a throwaway repository and check what only a real
    front door, bucket and account show, one line per check with what to do when it fails, then the
    latency of each kind of call. Exits 1 if any check fails.

    \b
    Example:
      DOCKLESS_USERNAME=admin DOCKLESS_PASSWORD=dkl_… dockless check https://d1234abcd.cloudfront.net
    """
    from dockless.deploy.check import Check
    if not (username and password):
        ui.error("give a user and an access token: -u NAME --password dkl_… (or DOCKLESS_USERNAME/DOCKLESS_PASSWORD)")
        raise SystemExit(Exit.USAGE)
    checker = Check(url, username, password, origin=origin, big=big, verify=ca_cert or True, say=ui.result)
    verdicts = checker.run()
    for row in checker.timing_table():
        ui.result(row)
    failed = [v for v in verdicts if v.status == "FAIL"]
    ui.info(f"{len(verdicts) - len(failed)} of {len(verdicts)} checks passed or were skipped"
            + (f"; failed: {', '.join(v.name for v in failed)}" if failed else ""))
    raise SystemExit(Exit.FAILED if failed else Exit.OK)
