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
