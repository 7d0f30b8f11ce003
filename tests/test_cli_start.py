"""The CLI's error boundary costs no import: sub-command help stays fast, an interrupted run still exits 128+N."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from fewcolor.cli import _Main
from fewcolor.train.loop import TrainingInterrupted


def test_subcommand_help_imports_no_torch() -> None:
    code = ("import sys\nfrom click.testing import CliRunner\nfrom fewcolor.cli import main\n"
            "res = CliRunner().invoke(main, ['evaluate', '--help'])\n"
            "assert res.exit_code == 0 and '--no-fid' in res.output, res.output\n"
            "print(sorted(m for m in ('torch', 'fewcolor.train.loop') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_training_interrupted_still_exits_with_the_signal(tmp_path: Path) -> None:
    @click.group(cls=_Main)
    def group() -> None:
        pass

    @group.command()
    def run() -> None:
        raise TrainingInterrupted(7, tmp_path / "state", signal.SIGTERM)

    res = CliRunner().invoke(group, ["run"])
    assert res.exit_code == 128 + signal.SIGTERM and "at step 7" in res.output
