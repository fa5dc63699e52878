"""`python -m vidcolor.train ...` is `vidcolor train ...` with the same one-line errors (tracebacks with
--debug), without importing the product's CLI, whose media modules need PyAV: this is the command a machine
with torch alone runs (a lent GPU), and the one torchrun launches."""

import sys

import click

from vidcolor.errors import VidcolorError

from .cli import train


def main(args: list[str]) -> int:
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    try:
        train.main(args, prog_name="python -m vidcolor.train", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            raise
        message = str(exc) if isinstance(exc, VidcolorError) else \
            f"internal error: {exc.__class__.__name__}: {exc} (run with --debug for details)"
        print("error: " + " ".join(message.split()), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
