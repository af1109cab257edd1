"""Entry point of the `tpa` command. Each verb calls one public library function."""
from __future__ import annotations

import os
import sys
import traceback

import click

from sampling.errors import TpaError

from . import (commands_codebook, commands_demo, commands_fieldwork, commands_estimate, commands_import, commands_report, commands_sample,
               commands_sampling, commands_score)
from .clitools import info


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tpa")
def cli():
    """tpa: third-party assessment (第三方评估) of targeted poverty alleviation.

    Evaluators draw samples, field teams import questionnaires, leadership receives PDF reports.
    """


@cli.command("init")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--year", type=int, default=2019, show_default=True, help="Assessed year.")
@click.option("--regime", type=click.Choice(["A", "B", "C"]), default="B", show_default=True,
              help="A annual 考核, B county exit check, C provincial variant.")
@click.option("--province", "provinces", multiple=True, help="Province code or name (repeatable).")
@click.option("--line-series", type=click.Choice(["planning", "nbs"]), default="planning", show_default=True,
              help="Poverty-line series.")
@click.option("--name", default=None, help="Name of the assessment.")
@click.option("--force", is_flag=True, help="Overwrite an existing configuration.")
def init_cmd(directory, year, regime, provinces, line_series, name, force):
    """Create an assessment workspace in DIRECTORY."""
    from sampling.workspace import init_workspace

    ws = init_workspace(directory, year=year, regime=regime, provinces=provinces, line_series=line_series,
                        name=name, force=force)
    info(f"workspace created: {ws.path} (configuration {ws.config_path.name}, database {ws.db_path.name})")


for module in (commands_sampling, commands_sample, commands_codebook, commands_import, commands_fieldwork, commands_score, commands_estimate, commands_report,
               commands_demo):
    module.register(cli)


def main(argv=None) -> int:
    try:
        rv = cli.main(args=argv, prog_name="tpa", standalone_mode=False)
    except TpaError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug, not a user error: one line, the traceback only on request
        if os.environ.get("TPA_DEBUG"):
            traceback.print_exc()
        click.echo(f"internal error: {type(exc).__name__}: {exc}. Set TPA_DEBUG=1 for the traceback "
                   "and report it.", err=True)
        return 70
    # a verb may return an exit code (e.g. 1 for "checked, and found problems")
    return rv if isinstance(rv, int) and not isinstance(rv, bool) else 0


if __name__ == "__main__":
    sys.exit(main())
