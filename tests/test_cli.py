"""The top-level CLI: lists every subcommand without importing torch or tensorflow."""

import subprocess
import sys


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys\n"
        "from styleforge.cli import build_parser\n"
        "build_parser().format_help()\n"
        "heavy = [m for m in ('torch', 'tensorflow', 'onnx', 'onnxruntime') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_help_runs():
    out = subprocess.run(
        [sys.executable, "-m", "styleforge", "--help"], check=True, capture_output=True, text=True
    ).stdout
    assert "styleforge" in out


def test_stylize_and_bench_import_only_what_they_run():
    """A command line naming one command builds only that command's parser: stylize and bench do
    not import the training, export or evaluation modules (nor torch) to parse their arguments."""
    code = (
        "import sys\n"
        "from styleforge import cli\n"
        "for command in ('stylize', 'bench'):\n"
        "    try:\n"
        "        cli.main([command, '--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "ours = sorted(m for m in sys.modules if m.startswith(('styleforge.train', 'styleforge.export',\n"
        "                                                     'styleforge.benchmarks.cli_eval', 'torch')))\n"
        "assert not ours, ours\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_every_command_is_listed_in_help():
    from styleforge import cli

    out = cli.build_parser().format_help()
    for commands in cli.COMMAND_MODULES.values():
        for command in commands:
            assert command in out
