"""The model and LUT stylizers are siblings behind one interface, opened in one place."""

from __future__ import annotations

import pytest

import styleforge.runtime as runtime
from styleforge.runtime import Stylizer, open_bundle
from styleforge.runtime.adaptive_lut import AdaptiveLutStylizer
from styleforge.runtime.backends import BACKENDS, Backend
from styleforge.runtime.lut_stylizer import LutStylizer
from styleforge.runtime.model_stylizer import ModelStylizer


def test_the_public_api_is_one_entry_point_and_one_interface():
    assert sorted(runtime.__all__) == ["Artifact", "BundleError", "Manifest", "Stylizer", "TensorSpec",
                                       "load_manifest", "open_bundle"]
    assert not hasattr(Stylizer, "from_bundle") and not hasattr(runtime, "open_stylizer")
    with pytest.raises(TypeError):
        Stylizer(None, None, ".")  # abstract: stylize_rgb is each sibling's


def test_siblings_share_the_interface_not_the_model_machinery():
    assert issubclass(ModelStylizer, Stylizer) and issubclass(LutStylizer, Stylizer)
    assert not issubclass(LutStylizer, ModelStylizer) and issubclass(AdaptiveLutStylizer, LutStylizer)
    for method in ("stylize", "stylize_batch", "stylize_file", "info", "close", "__enter__", "__exit__"):
        assert getattr(LutStylizer, method) is not None and hasattr(Stylizer, method)
    assert not hasattr(LutStylizer, "tile_shape") and not hasattr(LutStylizer, "_run_tile")


def test_backends_are_an_explicit_registry_of_classes():
    for name, backend in BACKENDS.items():
        assert issubclass(backend, Backend) and backend.name == name
        assert backend.formats and backend.modules


def test_open_bundle_is_the_one_choice(tmp_path):
    from styleforge import cli

    bundle = tmp_path / "film"
    assert cli.main(["export", "--look", "film-warm", "--formats", "cube", "--lut-size", "17",
                     "--out", str(bundle)]) == 0
    with open_bundle(bundle) as stylizer:
        assert isinstance(stylizer, LutStylizer) and stylizer.info()["backend"] == "lut"
        assert stylizer.manifest.artifacts[stylizer.artifact.key] is stylizer.artifact
