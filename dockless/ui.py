"""The one object that owns the terminal: results to stdout, progress and diagnostics to stderr,
and the exit codes every command uses."""
import enum
import sys

import click


class Exit(enum.IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2


class UI:
    def result(self, text: str) -> None:
        click.echo(text, file=sys.stdout)
        sys.stdout.flush()

    def info(self, text: str) -> None:
        click.echo(text, file=sys.stderr)

    def error(self, text: str) -> None:
        click.secho(f"error: {text}", file=sys.stderr, fg="red")

    def progress(self):
        """Per-blob progress bars (bytes, rate) on stderr; results stay on stdout."""
        from rich.console import Console
        from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                                   TransferSpeedColumn)
        return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                        TransferSpeedColumn(), TimeRemainingColumn(), console=Console(stderr=True),
                        transient=False)
