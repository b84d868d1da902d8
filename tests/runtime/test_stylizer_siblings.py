"""The model and LUT stylizers are siblings behind one interface, chosen in one place."""

from __future__ import annotations

from styleforge.runtime import BaseStylizer, LutStylizer, Stylizer, open_stylizer
from styleforge.runtime.adaptive_lut import AdaptiveLutStylizer


def test_siblings_share_the_interface_not_the_model_machinery():
    assert issubclass(Stylizer, BaseStylizer) and issubclass(LutStylizer, BaseStylizer)
    assert not issubclass(LutStylizer, Stylizer) and issubclass(AdaptiveLutStylizer, LutStylizer)
    for method in ("stylize", "stylize_batch", "stylize_file", "info", "close"):
        assert getattr(LutStylizer, method) is not None and hasattr(BaseStylizer, method)
    assert not hasattr(LutStylizer, "tile_shape") and not hasattr(LutStylizer, "_run_tile")


def test_open_stylizer_is_the_one_choice(tmp_path):
    from styleforge import cli

    bundle = tmp_path / "film"
    assert cli.main(["export", "--look", "film-warm", "--formats", "cube", "--lut-size", "17",
                     "--out", str(bundle)]) == 0
    with open_stylizer(bundle) as stylizer:
        assert isinstance(stylizer, LutStylizer) and stylizer.info()["backend"] == "lut"
