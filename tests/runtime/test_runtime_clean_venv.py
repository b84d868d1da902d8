"""The point of the runtime: it installs and runs with numpy + Pillow + one interpreter, no torch.

Each test builds a clean virtual environment (no system site packages) holding only numpy,
Pillow and a TFLite interpreter, installs styleforge from a wheel WITHOUT extras, stylizes a
real photo through the console script and through the API, imports the torch-free photo modules
(:mod:`styleforge.photo`: looks, classical baselines, make-dataset) and applies a tone look, and
checks that torch and tensorflow were never imported and are not even installed.

The environments are cached under pytest's cache folder, keyed by Python version and
requirements, so only the first run pays for ``pip install``; the wheel is rebuilt and
reinstalled every run so the code under test is always the checkout's.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
ENVIRONMENTS = {
    # the default: Google's LiteRT wheel
    "litert": ("numpy", "pillow", "ai-edge-litert"),
    # the 32-bit Raspberry Pi OS path: the last tflite-runtime wheel, which needs numpy 1.x
    "tflite-runtime": ("numpy<2", "pillow", "tflite-runtime==2.14.0"),
}
# no interpreter at all: a LUT bundle needs numpy and Pillow only
LUT_ONLY = ("numpy", "pillow")
SOURCE_ITEMS = ("pyproject.toml", "README.md", "LICENSE", "styleforge", "train", "export", "runtime", "benchmarks", "data")

# Run inside the clean venv: stylize via the in-process CLI and the API, then report modules.
PROBE = r"""
import json, sys, importlib.util
import numpy as np
from PIL import Image
from styleforge.cli import main
from styleforge.runtime import open_bundle
from styleforge.runtime.metrics import psnr
from styleforge.photo import baselines, dataset, looks  # torch-free, and no scipy / scikit-image at import

bundle, photo, out_dir, backend = sys.argv[1:5]
rc = main(["stylize", bundle, photo, "--out", out_dir, "--backend", backend, "--quiet", "--suffix", "_cli"])
stylizer = open_bundle(bundle, backend=backend)
img = Image.open(photo).convert("RGB").crop((0, 0, 97, 131))  # odd size: padded and tiled
styled = stylizer.stylize(img)
ref_in = np.asarray(Image.open(bundle + "/reference/input_000.png").convert("RGB"))
ref_out = np.asarray(Image.open(bundle + "/reference/output_000.png").convert("RGB"))
print(json.dumps({
    "cli_rc": rc,
    "size": list(styled.size),
    "changed": float(np.abs(np.asarray(styled, np.int16) - np.asarray(img, np.int16)).mean()),
    "reference_psnr": psnr(stylizer.stylize(ref_in), ref_out),
    "artifact": stylizer.artifact.key,
    "photo": [m.__name__ for m in (looks, baselines, dataset)],
    "look_changed": float(np.abs(looks.apply_look("film-warm", ref_in).astype(np.int16) - ref_in).mean()),
    "backend": stylizer.backend.info(),
    "imported": sorted(m for m in ("torch", "tensorflow", "onnxruntime", "onnx", "tf_keras") if m in sys.modules),
    "installed": sorted(m for m in ("torch", "tensorflow", "onnxruntime") if importlib.util.find_spec(m)),
}))
"""


def _sh(cmd: list, cwd: Path | None = None, **kwargs) -> subprocess.CompletedProcess:
    # Never run from the checkout: its ``styleforge/`` folder would shadow the installed package.
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=cwd or Path.home(), **kwargs)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="session")
def runtime_wheel(tmp_path_factory) -> Path:
    """A wheel of the checkout, built from a copy so parallel work never sees build/ folders."""
    src = tmp_path_factory.mktemp("wheel-src")
    for item in SOURCE_ITEMS:
        path = REPO / item
        if path.is_dir():
            shutil.copytree(path, src / item, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif path.is_file():
            shutil.copy2(path, src / item)
    if not (src / "README.md").exists():
        (src / "README.md").write_text("styleforge\n")
    dist = tmp_path_factory.mktemp("wheel")
    _sh([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", dist, src])
    (wheel,) = dist.glob("styleforge-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in ("stylizer.py", "tiling.py", "tensors.py", "cli.py", "backends/litert_backend.py"):
        assert f"styleforge/runtime/{module}" in names, f"wheel lacks styleforge/runtime/{module}"
    for module in ("looks.py", "baselines.py", "dataset.py"):
        assert f"styleforge/photo/{module}" in names, f"wheel lacks styleforge/photo/{module}"
    return wheel


def clean_venv(request, name: str, wheel: Path) -> Path:
    """Python of a cached venv with only ``ENVIRONMENTS[name]`` + the styleforge wheel (no deps)."""
    requirements = {**ENVIRONMENTS, "lut-only": LUT_ONLY}[name]
    key = hashlib.sha256(f"{sys.version}|{'|'.join(requirements)}".encode()).hexdigest()[:12]
    venv = Path(request.config.cache.mkdir("styleforge-clean-venvs")) / f"{name}-{key}"
    python = venv / "bin" / "python"
    with open(venv.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two pytest sessions must not build the same venv at once
        if not (venv / ".ready").exists():
            shutil.rmtree(venv, ignore_errors=True)
            # no --system-site-packages: only what we install below is importable
            _sh([sys.executable, "-m", "venv", venv])
            _sh([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *requirements], timeout=600)
            (venv / ".ready").write_text("\n".join(requirements))
        _sh([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps", "--force-reinstall", wheel])
    return python


@pytest.mark.parametrize("backend", sorted(ENVIRONMENTS))
def test_runtime_runs_without_torch_or_tensorflow(request, backend, runtime_wheel, tiny_bundle, tmp_path):
    import json

    from styleforge.photo.album import album_paths

    python = clean_venv(request, backend, runtime_wheel)
    photo = tmp_path / "portrait.png"
    Image.open(album_paths()[0]).convert("RGB").resize((150, 110)).save(photo)

    # 1. the console script, as a user runs it
    out = tmp_path / "out"
    script = python.parent / "styleforge"
    proc = subprocess.run(
        [str(script), "stylize", str(tiny_bundle), str(photo), "--out", str(out), "--backend", backend, "--quiet"],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    styled = Image.open(out / "portrait.png")
    assert styled.size == (150, 110)
    assert not np.array_equal(np.asarray(styled.convert("RGB")), np.asarray(Image.open(photo).convert("RGB")))

    # 2. the API and the in-process CLI, with the modules they pulled in
    probe = _sh([python, "-c", PROBE, tiny_bundle, photo, tmp_path / "out2", backend], cwd=tmp_path)
    report = json.loads(probe.stdout.strip().splitlines()[-1])
    assert report["cli_rc"] == 0 and (tmp_path / "out2" / "portrait_cli.png").is_file()
    assert report["size"] == [97, 131]
    assert report["changed"] > 1.0  # the model did something
    assert report["backend"]["backend"] == backend
    assert report["backend"]["library"] == ("ai_edge_litert" if backend == "litert" else "tflite_runtime")
    assert report["artifact"].startswith("tflite_")
    assert report["reference_psnr"] > 30.0, report
    assert report["photo"] == ["styleforge.photo.looks", "styleforge.photo.baselines", "styleforge.photo.dataset"]
    assert report["look_changed"] > 1.0
    assert report["imported"] == [], f"heavy modules imported: {report['imported']}"
    assert report["installed"] == [], f"heavy packages installed: {report['installed']}"


def test_a_colour_models_bundle_runs_its_lut_without_any_interpreter(request, runtime_wheel, tmp_path):
    """A colour generator's bundle (TorchScript + look.cube + its LUT graph) in a venv with only
    numpy and Pillow: ``stylize`` and ``open_bundle`` run the LUT by default."""
    torch = pytest.importorskip("torch")
    from styleforge.export.bundle import export_bundle
    from styleforge.photo.album import album_paths
    from styleforge.train.models.colour import ColourGenerator

    torch.manual_seed(0)
    model = ColourGenerator(curve_knots=8, lut_size=9)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    bundle = tmp_path / "colour"
    export_bundle(model.eval(), bundle, formats=("onnx",), size=(64, 64), progress=False)
    python = clean_venv(request, "lut-only", runtime_wheel)
    photo = tmp_path / "p.jpg"
    Image.open(album_paths()[0]).convert("RGB").resize((150, 110)).save(photo, quality=95)
    script = python.parent / "styleforge"
    proc = subprocess.run([str(script), "stylize", str(bundle), str(photo), "--out", str(tmp_path / "o"), "--quiet"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "(lut_cube on lut)" in proc.stdout and "Traceback" not in proc.stderr
    code = ("import sys, importlib.util\n"
            "from styleforge.runtime import open_bundle\n"
            f"s = open_bundle({str(bundle)!r})\n"
            "print(s.info()['backend'], [m for m in ('torch', 'onnxruntime', 'ai_edge_litert') if importlib.util.find_spec(m)])\n")
    probe = _sh([python, "-c", code], cwd=tmp_path)
    assert probe.stdout.split("\n")[-2] == "lut []"
    assert Image.open(tmp_path / "o" / "p.jpg").size == (150, 110)
