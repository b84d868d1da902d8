"""Torch-free runtime: stylize images with an exported bundle using numpy, Pillow and one interpreter.

``open_bundle(path, **options)`` is the one way in: it returns a :class:`Stylizer` (``stylize``,
``stylize_file``, ``manifest``, ``artifact``, ``close`` / ``with``), whichever artifact the bundle
runs. ``import styleforge.runtime`` pulls in numpy and Pillow only; interpreters load when a
backend is chosen.
"""

from styleforge.runtime.contract import Artifact, BundleError, Manifest, TensorSpec
from styleforge.runtime.manifest import load_manifest
from styleforge.runtime.stylizer import open_bundle
from styleforge.runtime.stylizer_base import Stylizer

__all__ = ["Artifact", "BundleError", "Manifest", "Stylizer", "TensorSpec", "load_manifest", "open_bundle"]
