"""The root `vidcolor` group: lazy subcommands and the one place errors become one red line."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from .. import __version__
from ..errors import VidcolorError
from .render import print_error

# Subcommands that need the training extras, imported only when used: name -> (module:attribute, help).
# The help is declared here so `vidcolor --help` lists them without importing torch.
LAZY_COMMANDS = {"train": ("vidcolor.train.cli:train", "Train, export and evaluate models (needs the training extras).")}


class LazyGroup(click.Group):
    """A group that imports some subcommands ('name': ('module:attribute', help)) only when used.

    A subcommand that fails to import becomes a stub that reports why, so a missing optional
    dependency never breaks the rest of the CLI; `--help` lists them by their declared help.
    """

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.lazy:
            return super().get_command(ctx, name)
        module_name, attribute = self.lazy[name][0].split(":")
        try:
            return getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as exc:
            return _unavailable_command(name, f"{exc.__class__.__name__}: {exc}")

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of `--help`, without importing the lazy commands."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names), default=0)
        rows = []
        for name in names:
            if name in self.lazy:
                rows.append((name, self.lazy[name][1]))
            elif (command := super().get_command(ctx, name)) is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _unavailable_command(name: str, reason: str) -> click.Command:
    def fail(args: tuple[str, ...]) -> None:
        raise VidcolorError(f"'vidcolor {name}' is unavailable ({reason}); install the training extras: "
                            f"pip install 'vidcolor[train]'")
    return click.Command(name, callback=fail, help=f"(unavailable: {reason})",
                         params=[click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)],
                         context_settings={"ignore_unknown_options": True, "help_option_names": []})


class VidcolorGroup(LazyGroup):
    """The root group: turns every error into one line and a non-zero exit."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        """Click's own errors (usage, bad option values) in the same `error:` form as ours, after the
        usage line that says where to look; the exit codes are click's (2 for usage)."""
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.Abort:
            print_error("aborted")
            sys.exit(1)
        except click.ClickException as exc:
            if isinstance(exc, click.UsageError) and exc.ctx is not None:
                hint = f" (see '{exc.ctx.command_path} {exc.ctx.help_option_names[0]}')"
            else:
                hint = ""
            print_error(exc.format_message() + hint)
            sys.exit(exc.exit_code)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            print_error("interrupted")
            ctx.exit(130)
        except BrokenPipeError:  # `vidcolor run --cuts-only ... | head`: the reader left, nothing to say
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
            ctx.exit(1)
        except Exception as exc:
            if ctx.params.get("debug"):
                raise
            print_error(str(exc) if isinstance(exc, VidcolorError)
                        else f"internal error: {exc.__class__.__name__}: {exc} (run with --debug for details)")
            ctx.exit(1)


@click.group(cls=VidcolorGroup, lazy=LAZY_COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(__version__, prog_name="vidcolor")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Colorize black-and-white video."""
    ctx.obj = {"debug": debug}


def main() -> None:
    cli(prog_name="vidcolor")
