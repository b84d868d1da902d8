"""Options spelled the same way in every command: --size HxW or N, --json PATH, --out."""

from __future__ import annotations

import json

import pytest

from styleforge.cli import build_parser, main
from styleforge.cli_options import SIZE_HELP, parse_size, parse_sizes
from styleforge.errors import CLIError


def test_one_size_grammar():
    assert parse_size("512") == (512, 512) and parse_size("384x640") == (384, 640) == parse_size("384*640")
    assert parse_sizes("256,512x768") == [(256, 256), (512, 768)] and parse_sizes(None) == []
    for bad in ("0", "a", "1x2x3", "-4"):
        with pytest.raises(CLIError, match=f"--size must be {SIZE_HELP}"):
            parse_size(bad)


def test_size_json_out_are_described_alike_in_every_command():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # name -> sub-parser
    sizes = {name: a for name, sub in commands.items() for a in sub._actions if "--size" in a.option_strings}
    for name in ("export", "info", "bench"):
        assert "HxW in pixels or N for NxN" in sizes[name].help.replace(",", ""), name
    for name, sub in commands.items():
        for action in sub._actions:
            if "--json" in action.option_strings:
                assert action.metavar in ("PATH", "FILE"), name
                assert action.nargs != 0, f"{name}: --json takes a PATH"
    looks = {o for a in commands["looks"]._actions for o in a.option_strings}
    assert {"--out", "--output"} <= looks


def test_info_json_path_writes_the_report(tmp_path, capsys):
    out = tmp_path / "info.json"
    assert main(["info", "mobile", "--preset", "nano", "--size", "64", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["params"] > 0
    assert str(out) in capsys.readouterr().out
