"""`dockless`: the command line. Nouns and verbs; every help text carries a runnable example."""
import click

from dockless.commands import (access, caches, deploy, history, images, lifecycle, local, mirror, repositories, scans,
                               webhooks)
from dockless.ui import UI, Exit


def user_errors() -> tuple:
    """What a user can cause (bad references and files, registry refusals, the network, a deploy's
    AWS errors): one error line and exit code 1, never a traceback. Evaluated only on failure, so
    commands that never touch AWS do not import botocore."""
    from subprocess import CalledProcessError

    from botocore.exceptions import BotoCoreError, ClientError as AwsError

    from chalicelib.oci.errors import RegistryError
    from dockless.client.registry import ClientError
    from dockless.deploy.stack import DeployError
    from dockless.images.sources import SourceError
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


# Every command, by noun (dockless/commands/), in the order `dockless --help` lists them.
for commands in (local, images, history, mirror, access, repositories, lifecycle, caches, webhooks, scans, deploy):
    commands.register(main)

if __name__ == "__main__":
    main()
