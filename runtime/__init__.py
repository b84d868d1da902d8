"""Torch-free runtime: stylize images with an exported bundle using numpy, Pillow and one interpreter.

``import styleforge.runtime`` pulls in numpy and Pillow only; interpreters load when a backend
is chosen.
"""

from styleforge.runtime.contract import Artifact, BundleError, Manifest, TensorSpec
from styleforge.runtime.lut_stylizer import LutStylizer
from styleforge.runtime.manifest import load_manifest
from styleforge.runtime.stylizer import Stylizer, open_stylizer
from styleforge.runtime.stylizer_base import BaseStylizer

__all__ = ["Artifact", "BaseStylizer", "BundleError", "LutStylizer", "Manifest", "Stylizer", "TensorSpec",
           "load_manifest", "open_stylizer"]
