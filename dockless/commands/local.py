"""Servers on this machine: `dockless serve` (the local stack) and `dockless gateway` (the registry
API in front of a deployed registry, layer bytes straight to its bucket)."""
import logging
import signal
import threading

import click

from chalicelib.runtime.function_url import DOORS
from dockless.ui import UI, Exit


def register(main: click.Group) -> None:
    main.add_command(serve)
    main.add_command(gateway)


@click.command()
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
@click.option("--faults", metavar="SPEC", default=None,
              help="Make the local AWS answer as a busy account would, at these rates, e.g. "
                   "dynamodb.TransactionConflict=0.2,dynamodb.Throttling=0.1,s3.SlowDown=0.05; "
                   "dynamodb.Contention makes overlapping writes conflict as DynamoDB's do.")
@click.option("--chunked-bodies", type=click.Choice(["whole", "refused"]), default="whole", show_default=True,
              help="What the API's front door does with a chunked request body: hands the function the "
                   "whole body, or refuses it 411 (what `dockless check` says your account does).")
@click.option("--door", type=click.Choice(DOORS), default=DOORS[0], show_default=True,
              help="Which deployed door the API's front door behaves as (`dockless deploy --door`).")
@click.pass_obj
def serve(ui: UI, port, host, api_port, public_url, request_log, tls, tls_dir, faults, chunked_bodies, door):
    """Run the local stack: moto S3 + DynamoDB, the API behind a local front door on an internal
    port, the gateway on the public port, and the scheduled jobs.

    \b
    Example:
      dockless serve --port 5000 &
      docker push localhost:5000/team/app:1
      dockless serve --tls      # HTTPS, for clients that insist on it (python-dxf)
      dockless serve --faults dynamodb.TransactionConflict=0.2,s3.SlowDown=0.05   # a busy account
      dockless serve --door function-url    # as a registry deployed with --door function-url
    """
    from pathlib import Path

    from chalicelib.runtime.observe import RECORD_LOGGERS, REQUEST_LOGGER
    from dockless.local import tls as tls_module
    from dockless.local.faults import Faults
    from dockless.local.stack import LocalStack

    _log_to(logging.StreamHandler(), "dockless")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the moto server's access log
    for records in RECORD_LOGGERS:
        records.propagate = False  # one JSON line per request: the file's, not the terminal's
    if request_log:
        _log_to(logging.FileHandler(request_log), REQUEST_LOGGER.name)
    directory = Path(tls_dir) if tls_dir else (tls_module.default_directory() if tls else None)
    try:
        injected = Faults.parse(faults)
    except ValueError as wrong:
        raise click.BadParameter(str(wrong), param_hint="--faults") from None
    stack = LocalStack(host=host, port=port, public_url=public_url, api_port=api_port, tls_dir=directory,
                       faults=injected, chunked_bodies=chunked_bodies, door=door)
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


@click.command()
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
    from dockless.gateway import server as gateway_module

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

