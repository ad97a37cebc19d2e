"""`dockless`: the command line. Nouns and verbs; every help text carries a runnable example."""
import logging
import signal
import threading

import click

from dockless import admin_cli, history_cli, mirror_cli
from dockless.ui import UI, Exit


def user_errors() -> tuple:
    """What a user can cause (bad references and files, registry refusals, the network, a deploy's
    AWS errors): one error line and exit code 1, never a traceback. Evaluated only on failure, so
    commands that never touch AWS do not import botocore."""
    from subprocess import CalledProcessError

    from botocore.exceptions import BotoCoreError, ClientError as AwsError

    from chalicelib.oci.errors import RegistryError
    from dockless.client import ClientError
    from dockless.deploy import DeployError
    from dockless.sources import SourceError
    return ValueError, OSError, ClientError, RegistryError, SourceError, DeployError, BotoCoreError, AwsError, \
        CalledProcessError


class Commands(click.Group):
    """The command group: every command (and subcommand) fails in one way, via user_errors()."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.exceptions.Exit:
            raise
        except Exception as error:  # noqa: BLE001 - narrowed just below, without importing on success
            if not isinstance(error, user_errors()):
                raise
            ctx.find_object(UI).error(str(error))
            raise SystemExit(Exit.FAILED) from None


@click.group(cls=Commands)
@click.pass_context
def main(ctx):
    """dockless: a private, serverless container registry.

    \b
    Example:
      dockless serve --port 5000
    """
    ctx.obj = UI()


@main.command()
@click.option("--port", default=5000, show_default=True, help="Port of the registry (0: any free port).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--api-port", default=0, show_default=True,
              help="Internal port of the API behind the gateway (0: any free port).")
@click.option("--public-url", default=None,
              help="URL clients use to reach the registry [default: http://localhost:PORT].")
@click.option("--request-log", type=click.Path(dir_okay=False), default=None,
              help="Also append the per-request JSON records to this file.")
@click.option("--tls", is_flag=True, help="Serve HTTPS, with a certificate from a local CA (made once).")
@click.option("--tls-dir", type=click.Path(file_okay=False), default=None,
              help="Where the local CA lives [default: ~/.local/share/dockless/tls].")
@click.pass_obj
def serve(ui: UI, port, host, api_port, public_url, request_log, tls, tls_dir):
    """Run the local stack: moto S3 + DynamoDB, the API behind a local front door on an internal
    port, the gateway on the public port, and the scheduled jobs.

    \b
    Example:
      dockless serve --port 5000 &
      docker push localhost:5000/team/app:1
      dockless serve --tls      # HTTPS, for clients that insist on it (python-dxf)
    """
    from pathlib import Path

    from dockless import tls as tls_module
    from dockless.localstack import LocalStack

    _log_to(logging.StreamHandler(), "dockless")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the moto server's access log
    if request_log:
        _log_to(logging.FileHandler(request_log), "dockless.request")
    directory = Path(tls_dir) if tls_dir else (tls_module.default_directory() if tls else None)
    stack = LocalStack(host=host, port=port, public_url=public_url, api_port=api_port, tls_dir=directory)
    stack.start()
    if stack.ca_path:
        ui.info(f"tls: clients trust {stack.ca_path}, e.g.\n"
                f"  sudo mkdir -p /etc/docker/certs.d/localhost:{stack.port} && "
                f"sudo cp {stack.ca_path} /etc/docker/certs.d/localhost:{stack.port}/ca.crt\n"
                f"  podman, skopeo, buildah: --cert-dir {stack.ca_path.parent}\n"
                f"  python (requests): REQUESTS_CA_BUNDLE={stack.ca_path}")
    if stack.admin_token:
        ui.info(f"admin token (shown once; user admin): {stack.admin_token}")
        ui.info(f"  docker login localhost:{stack.port} -u admin --password-stdin   "
                "# paste the token, then Enter and Ctrl-D")
    ui.result(f"api: {stack.api_url}")
    ui.result(f"ready: {stack.url}")
    _wait_for_signal()
    ui.info("stopping")
    stack.stop()
    raise SystemExit(Exit.OK)


def _target_options(function):
    for option in reversed([
        click.option("--stage", required=True, help="Name of this registry's stage: stack dockless-STAGE."),
        click.option("--region", envvar=["AWS_REGION", "AWS_DEFAULT_REGION"], required=True,
                     help="AWS region of the stack [default: $AWS_REGION or $AWS_DEFAULT_REGION]."),
    ]):
        function = option(function)
    return function


@main.command()
@_target_options
@click.option("--domain", default="", help="Custom domain (a CNAME to the distribution is yours to add).")
@click.option("--certificate-arn", default="", help="ACM certificate for --domain, in us-east-1.")
@click.option("--gpg-layer-arn", default="", help="Lambda layer with a full gpg (infra/gpg-layer), for automatic signing.")
@click.option("--alarm-email", default="", help="Subscribe this address to the stack's alarms.")
@click.pass_obj
def deploy(ui: UI, stage, region, domain, certificate_arn, gpg_layer_arn, alarm_email):
    """Deploy (or update) a registry to the AWS account of the credentials in the environment.

    Packages the app, creates or updates its stacks, waits, prints the registry's URL, and on the
    first run creates user `admin` and prints its token once. Re-running updates in place.

    \b
    Example:
      dockless deploy --stage prod --region eu-west-1
      dockless deploy --stage prod --region eu-west-1 --domain registry.example.com \\
          --certificate-arn arn:aws:acm:us-east-1:123456789012:certificate/...
    """
    from dockless.deploy import Deployer, Target, boto3_clients
    if bool(domain) != bool(certificate_arn):
        ui.error("--domain and --certificate-arn go together")
        raise SystemExit(Exit.USAGE)
    target = Target(stage, region, domain, certificate_arn, gpg_layer_arn, alarm_email)
    outputs = Deployer(target, boto3_clients, ui.info).deploy()
    ui.result(f"registry: {outputs['PublicUrl']}")
    host = outputs["PublicUrl"].split("://", 1)[-1]
    ui.info(f"  docker login {host} -u admin")
    if outputs.get("CheckPassed") is False:
        ui.error("the deployment failed `dockless check` (the FAIL lines above say what to do)")
        raise SystemExit(Exit.FAILED)


@main.command()
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
    from dockless.deploy import Deployer, Target, boto3_clients
    Deployer(Target(stage, region), boto3_clients, ui.info).destroy(delete_data)


@admin_cli.key.command(name="rotate-registry")
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
    from dockless.deploy import Deployer, Target, boto3_clients
    made = Deployer(Target(stage, region), boto3_clients, ui.info).rotate_registry_key()
    raise SystemExit(Exit.OK if made else Exit.FAILED)


@main.command()
@click.option("--upstream", required=True, help="The registry to forward to, e.g. https://registry.example.com")
@click.option("--port", default=5000, show_default=True, help="Port to listen on (0: any free port).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--public-url", default=None,
              help="URL clients use to reach this gateway [default: http://localhost:PORT].")
@click.option("--spool-dir", type=click.Path(file_okay=False), default=None,
              help="Where upload bodies are spooled before they go to the bucket [default: system temp].")
@click.option("--spool-limit", default="64GiB", show_default=True,
              help="Most bytes spooled at once; uploads beyond it get 503 and are retried by clients.")
@click.option("--spool-idle-seconds", default=600, show_default=True,
              help="A spool unused this long (an upload its client abandoned) is deleted.")
@click.pass_obj
def gateway(ui: UI, upstream, port, host, public_url, spool_dir, spool_limit, spool_idle_seconds):
    """Serve the registry API locally, sending layer bytes straight to the bucket.

    Every request goes to UPSTREAM unchanged except upload bodies, which are spooled, checked
    against their digest and uploaded with presigned URLs; the API never sees layer bytes.

    \b
    Example:
      dockless gateway --upstream https://registry.example.com --port 5000 &
      docker push localhost:5000/team/app:1
    """
    from dockless import gateway as gateway_module

    from chalicelib.oci.sizes import parse as parse_bytes

    _log_to(logging.StreamHandler(), "dockless")
    try:
        limit = parse_bytes(spool_limit)
    except ValueError as error:
        ui.error(str(error))
        raise SystemExit(Exit.USAGE) from None
    server = gateway_module.make_server(gateway_module.Gateway(upstream, spool_dir, limit, spool_idle_seconds),
                                        host, port, public_url)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ui.result(f"ready: http://{host}:{server.server_address[1]}")
    _wait_for_signal()
    ui.info("stopping")
    server.shutdown()
    raise SystemExit(Exit.OK)


def connect(reference: str, username, password):
    """The parsed reference and a client for its registry (RegistryClient.of: the credentials
    given, else the stored login, else anonymous)."""
    from dockless.client import RegistryClient
    from chalicelib.oci.reference import Reference
    parsed = Reference.parse(reference)
    return parsed, RegistryClient.of(parsed.base_url, username, password)


def credentials(function):
    """-u/--username and --password, from the environment by default (never stored)."""
    function = click.option("--password", envvar="DOCKLESS_PASSWORD", default=None,
                            help="An access token (dkl_…) [env: DOCKLESS_PASSWORD].")(function)
    return click.option("-u", "--username", envvar="DOCKLESS_USERNAME", default=None,
                        help="User or robot name [env: DOCKLESS_USERNAME].")(function)


@main.command()
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
    from dockless.check import Check
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


@main.command()
@click.argument("image")
@click.argument("destination", required=False)
@credentials
@click.pass_obj
def push(ui: UI, image, destination, username, password):
    """Push IMAGE to the registry, layer bytes straight to the bucket.

    IMAGE is a local docker image (saved from the daemon), an OCI layout DIR[:TAG], or a
    docker-archive FILE.tar. DESTINATION is host[:port]/name[:tag] (default: IMAGE itself).
    Blobs the registry already has are skipped; the rest go up in parallel.

    \b
    Example:
      dockless push localhost:5000/team/app:1
      dockless push ./layout:v1 localhost:5000/team/app:1
    """
    import tempfile
    from pathlib import Path

    from chalicelib.oci import sizes
    from dockless import sources, transfer

    target, client = connect(destination or image, username, password)
    with tempfile.TemporaryDirectory(prefix="dockless-push-") as workdir:
        result = transfer.push(sources.open_image(image, Path(workdir)), target, client, ui)
    ui.result(f"pushed {target.host}/{target.name}@{result.digest} ({len(result.uploaded)} blobs, "
              f"{sizes.human(result.uploaded_bytes)} uploaded; {len(result.skipped)} already there)")


@main.command()
@click.argument("reference")
@click.argument("directory", type=click.Path(file_okay=False))
@credentials
@click.pass_obj
def pull(ui: UI, reference, directory, username, password):
    """Pull REFERENCE (host[:port]/name[:tag|@digest]) into an OCI layout DIRECTORY, blobs in
    parallel and straight from the bucket, every digest verified.

    \b
    Example:
      dockless pull localhost:5000/team/app:1 ./layout
      skopeo copy oci:./layout:1 docker-daemon:team/app:1
    """
    from pathlib import Path

    from dockless import transfer

    source, client = connect(reference, username, password)
    digest = transfer.pull(source, Path(directory), client, ui)
    ui.result(f"pulled {source} ({digest}) into {directory}")


@main.command()
@click.argument("reference")
@click.option("--key", "fingerprint", required=True, help="Fingerprint of a key in the local gpg keyring.")
@click.option("--sign-identity", default=None,
              help="The name the signature vouches for [default: REFERENCE as given]; use the registry's "
                   "public name when REFERENCE goes through a local gateway.")
@credentials
@click.pass_obj
def sign(ui: UI, reference, fingerprint, sign_identity, username, password):
    """Sign the image REFERENCE with a local gpg key and upload the signature.

    \b
    Example:
      dockless sign registry.example.com/team/app:1 --key 062B4DAF...
    """
    from dockless import signing

    target, client = connect(reference, username, password)
    name = signing.sign(client, target, fingerprint, sign_identity)
    ui.result(f"signed {target} as {name}")


@main.command()
@click.argument("reference")
@click.option("--keyring", type=click.File("rb"), default=None,
              help="Armoured public keys to trust [default: the registry's /keys/<namespace>/KEYS].")
@credentials
@click.pass_obj
def verify(ui: UI, reference, keyring, username, password):
    """Check the signatures of REFERENCE; exit 1 unless one verifies with a trusted key for this
    digest and this name.

    \b
    Example:
      dockless verify registry.example.com/team/app:1 --keyring KEYS
    """
    from dockless import signing

    target, client = connect(reference, username, password)
    keys = keyring.read() if keyring else client.session.get(
        f"{target.base_url}/keys/{target.name.split('/')[0]}/KEYS", timeout=60).content
    results = signing.verify(client, target, keys)
    good = False
    for result in results:
        ok = result["valid"] and result["digest_matches"] and result["identity_matches"]
        good = good or ok
        signer = signing.grouped(result["fingerprint"]) if result["fingerprint"] else f"key id {result['key_id']}"
        ui.result(f"{result['name']}\n  Primary key fingerprint: {signer}\n"
                  f"  {'trusted, verified' if result['valid'] else 'NOT trusted or not verified'}; "
                  f"identity {result['identity']}{'' if result['identity_matches'] else ' (does not match)'}")
    if not results:
        ui.result(f"{target}: no signatures")
    raise SystemExit(Exit.OK if good else Exit.FAILED)


def _wait_for_signal() -> None:
    stopped = threading.Event()
    # Installed explicitly: a shell starts background jobs with SIGINT ignored, and Python keeps
    # that, so Ctrl-C after `fg` or `kill -INT` would otherwise do nothing.
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stopped.set())
    while not stopped.wait(0.5):
        pass


def _log_to(handler: logging.Handler, logger_name: str) -> None:
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    # stdout carries results only (the `ready:` line); a library's root handler must not get these.
    logger.propagate = False


admin_cli.register(main)
history_cli.register(main)
mirror_cli.register(main)

if __name__ == "__main__":
    main()
