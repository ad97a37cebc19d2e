"""The commands the README and docs/ show are commands that exist, with options that parse: every
`dockless …` line of a code block is parsed by the CLI itself (the command path, its options and
their values, its required arguments), and every `make <target>` names a target of the Makefile.
What they do is each command's own tests; here, that a reader who copies one is not told
"No such command" or "No such option"."""
import re
import shlex
from pathlib import Path

import click
import pytest

from dockless.cli import main

ROOT = Path(__file__).parents[2]
PAGES = sorted([ROOT / "README.md", ROOT / "CONTRIBUTING.md", *(ROOT / "docs").glob("*.md")])
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)


def shell_lines(page: Path):
    """Each command line of the page's code blocks: continuations joined, comments dropped."""
    for block in FENCE.findall(page.read_text()):
        for line in block.replace("\\\n", " ").splitlines():
            try:
                words = shlex.split(line, comments=True)
            except ValueError:
                continue  # not shell (a JSON or YAML block)
            yield line, words


def commands(words):
    """The simple commands of a line (split at &&, ||, |, ;, &), heredoc strings and env
    assignments aside."""
    current = []
    for word in words + [";"]:
        if word in ("&&", "||", "|", ";", "&"):
            while current and re.fullmatch(r"[A-Z_]+=.*", current[0]):
                current.pop(0)
            if current:
                yield current
            current = []
        elif word in ("<<<", ">", "2>", "<"):
            current.append("\0")  # what follows is a redirection's, not the command's
        elif current and current[-1] == "\0":
            current.pop()
        else:
            current.append(word)


def documented(program: str):
    found = []
    for page in PAGES:
        for line, words in shell_lines(page):
            found.extend((page.relative_to(ROOT), line.strip(), command[1:])
                         for command in commands(words) if command and command[0] == program)
    return found


def parse(args):
    """Parse args as `dockless` would, down to the leaf command, without running anything."""
    command, name, rest, parent = main, "dockless", list(args), None
    while True:
        ctx = command.make_context(name, rest, parent=parent)
        if not isinstance(command, click.Group):
            return
        # a group keeps the subcommand's name apart from its arguments (click's protected args)
        rest = [*ctx._protected_args, *ctx.args]
        name, command, rest = command.resolve_command(ctx, rest)
        parent = ctx


DOCKLESS = documented("dockless")


def test_the_docs_show_dockless_commands():
    assert len(DOCKLESS) > 50


@pytest.mark.parametrize("page, line, args", DOCKLESS, ids=[f"{p}: {' '.join(a)[:60]}" for p, _, a in DOCKLESS])
def test_each_documented_dockless_command_parses(page, line, args):
    try:
        parse(args)
    except click.BadParameter as refused:
        # a file the reader has (a key, an image tarball): its name parsed, its absence is fine here
        if "does not exist" not in str(refused) and "No such file" not in str(refused):
            raise AssertionError(f"{page}: {line}: {refused.format_message()}") from None
    except click.UsageError as refused:
        raise AssertionError(f"{page}: {line}: {refused.format_message()}") from None


def test_each_documented_make_target_exists():
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    named = {(page, command[1]) for page, _, command in
             ((p, l, ["make", *a]) for p, l, a in documented("make")) if len(command) > 1}
    assert named and {target for _, target in named} <= targets, sorted(named)
