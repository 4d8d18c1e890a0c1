"""Shared by the tests: run the CLI in-process."""

from __future__ import annotations

from click.testing import CliRunner

from doppel.cli import cli


def run(*args: object) -> tuple[int, str, str]:
    """`doppel ARGS...` in this process: (exit code, stdout, stderr)."""
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr
