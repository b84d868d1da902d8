"""Every failure of a command ends in one line and exit 2; --debug shows the traceback."""

from __future__ import annotations

import argparse

from styleforge import cli
from styleforge.errors import CLIError, StyleforgeError
from styleforge.runtime.imageio import ImageError


def test_area_errors_share_one_base():
    assert issubclass(ImageError, StyleforgeError) and issubclass(ImageError, ValueError)
    assert issubclass(CLIError, StyleforgeError)


def test_a_missing_input_is_one_line(tmp_path, capsys):
    code = cli.main(["stylize", str(tmp_path / "no-bundle"), str(tmp_path / "no.jpg"),
                     "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.startswith("styleforge stylize: error: ") and len(err.strip().splitlines()) == 1


def test_an_unexpected_failure_is_one_line_unless_debug(monkeypatch, capsys):
    def boom(args):
        raise KeyError("surprise")

    class Parser:
        def __init__(self, command=None):
            pass

        def parse_args(self, argv):
            return argparse.Namespace(command="stylize", func=boom, debug="--debug" in argv)

    monkeypatch.setattr(cli, "build_parser", Parser)
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    assert cli.main([]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "KeyError: 'surprise'" in err and "--debug" in err
    assert cli.main(["--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err
    monkeypatch.setenv(cli.DEBUG_ENV, "1")
    assert cli.main([]) == 2
    assert "Traceback" in capsys.readouterr().err
