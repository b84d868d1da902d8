"""Regenerate the vendored photo corpus ``data/corpus/`` from Debian packages (``make corpus``).

The corpus (see :mod:`styleforge.photo.corpus`) is vendored: tests and benchmarks read the stored
files and never run this. This module documents and repeats how they were made:

1. ``apt-get download`` (no root needed) the pinned packages of :data:`PACKAGES` into a cache
   folder, unpack them with ``dpkg-deb -x``.
2. GCompris keeps its images inside Qt resource files (``.rcc``); :func:`read_rcc` reads that
   format (header ``qres``, a tree of 14- or 22-byte entries, a UTF-16 name table, data blobs
   that may be zlib-compressed; zstd-compressed entries are reported, not guessed).
3. Only photos with a credit of their own are taken: a per-file stanza of the package's
   ``debian/copyright`` (DEP-5) or of the activity's ``README`` inside the ``.rcc``. Drawings,
   illustrations, clip art (GCompris' ``lang`` word pictures, ``details``, ``paintings``...)
   and abstract wallpapers are left out by the rules of :data:`GCOMPRIS_FOLDERS` and
   :data:`LEAVE_OUT`; near-duplicates are dropped by :func:`near_duplicates`.
4. Each photo is stored upright, long side :data:`LONG_SIDE` px (Lanczos), sRGB JPEG quality
   :data:`JPEG_QUALITY`, with its sha256, size and credit in ``corpus.json``; ``ATTRIBUTION.md``
   lists the credits for people.

Run: ``python -m styleforge.photo.corpus_build --out data/corpus [--debs CACHE]``.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import io
import json
import re
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

from styleforge.errors import StyleforgeError
from styleforge.photo.corpus import CORPUS_FORMAT

PACKAGES = {  # package -> pinned version (Debian bookworm)
    "gcompris-qt-data": "3.1-2",
    "lomiri-wallpapers-16.04": "20.04.0-2",
    "mate-backgrounds": "1.26.0-1",
}
LONG_SIDE = 320
JPEG_QUALITY = 90
# GCompris folders whose images are photographs (the rest are drawings or paintings)
GCOMPRIS_FOLDERS = (
    "src/activities/categorization/resource/images/fishes/",
    "src/activities/categorization/resource/images/monuments/",
    "src/activities/categorization/resource/images/others/",
    "src/activities/categorization/resource/images/renewable/",
    "src/activities/categorization/resource/images/tools/",
    "src/activities/categorization/resource/images/alphabets/",
    "src/activities/categorization/resource/images/numbers/",
    "src/activities/explore_world_animals/resource/animals/",
    "src/activities/erase/resource/",
)
LEAVE_OUT = {  # file stems left out, with why
    "analogpattern_by_Peter_Nerlich": "abstract light pattern, not a scene",
    "umang_by_Abhishek_Mudgal": "abstract colour gradient, not a scene",
}
SKIMAGE_PHOTOS = {  # scikit-image data photos, with the credit its docstrings give
    "astronaut.png": ("NASA (Eileen Collins), NASA Great Images database", "public-domain", True),
    "chelsea.png": ("Stefan van der Walt", "CC0-1.0", False),
    "coffee.png": ("Rachel Michetti, courtesy of Pikolo Espresso Bar", "CC0-1.0", False),
    "rocket.jpg": ("SpaceX (launch of DSCOVR on Falcon 9)", "public-domain", False),
}
NEAR_DUPLICATE_CORR = 0.92  # 24x24 grey thumbnails correlated above this are one scene


class CorpusBuildError(StyleforgeError, RuntimeError):
    """A package could not be fetched or unpacked, or a resource file could not be read."""


# ---------------------------------------------------------------------------------------------
# Qt resource files


def read_rcc(blob: bytes) -> dict[str, bytes]:
    """Files of a Qt ``.rcc`` resource blob: ``{"dir/sub/name": bytes}`` (uncompressed).

    Format (Qt's ``rcc``, versions 1-3, big-endian): ``b"qres"``, version, tree offset, data
    offset, names offset (v3: a flags word). A tree entry is name offset (u32), flags (u16:
    1 zlib, 2 directory, 4 zstd), then for a directory child count and first child (u32 each),
    for a file country/language (u16 each) and data offset (u32); v2+ add a u64 mtime. A name is
    u16 length, u32 hash, UTF-16BE; data is u32 length then bytes (zlib: u32 size + stream).
    """
    if blob[:4] != b"qres":
        raise CorpusBuildError("not a Qt resource file (no 'qres' magic)")
    version, tree, data, names = struct.unpack(">IIII", blob[4:20])
    if version not in (1, 2, 3):
        raise CorpusBuildError(f"Qt resource format version {version} is not supported")
    entry_size = 14 if version == 1 else 22

    def name_at(offset: int) -> str:
        (length,) = struct.unpack(">H", blob[names + offset : names + offset + 2])
        return blob[names + offset + 6 : names + offset + 6 + 2 * length].decode("utf-16-be")

    files: dict[str, bytes] = {}
    stack = [(0, "")]
    while stack:
        index, prefix = stack.pop()
        base = tree + index * entry_size
        name_offset, flags = struct.unpack(">IH", blob[base : base + 6])
        name = name_at(name_offset) if index else ""
        path = f"{prefix}{name}"
        if flags & 2:
            count, first = struct.unpack(">II", blob[base + 6 : base + 14])
            stack += [(child, f"{path}/" if index else "") for child in range(first, first + count)]
            continue
        (offset,) = struct.unpack(">I", blob[base + 10 : base + 14])
        (size,) = struct.unpack(">I", blob[data + offset : data + offset + 4])
        raw = blob[data + offset + 4 : data + offset + 4 + size]
        if flags & 4:
            raise CorpusBuildError(f"{path}: zstd-compressed resource entries are not supported")
        files[path] = zlib.decompress(raw[4:]) if flags & 1 else raw
    return files


# ---------------------------------------------------------------------------------------------
# credits


def parse_dep5(text: str) -> list[dict[str, str]]:
    """Stanzas of a DEP-5 ``copyright`` file (or a README in that style) that name ``Files``."""
    stanzas = []
    for paragraph in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in paragraph.splitlines():
            match = re.match(r"^([A-Za-z-]+):\s*(.*)$", line)
            if match:
                key = match.group(1)
                fields[key] = match.group(2).strip()
            elif key and line.strip():
                fields[key] += " " + line.strip()
        if "Files" in fields:
            stanzas.append(fields)
    return stanzas


def normalise_licence(text: str) -> str:
    """A licence field as an SPDX-like short name ("Public Domain" -> "public-domain")."""
    first = text.strip().splitlines()[0].strip() if text.strip() else ""
    if first.lower().startswith("public"):
        return "public-domain"
    first = first.split()[0] if first else ""
    return {"GPLv2+": "GPL-2+", "CC-BY-SA": "CC-BY-SA-" + (text.split()[1] if len(text.split()) > 1 else "")}.get(first, first).rstrip("-")


def credit_for(path: str, stanzas: list[dict[str, str]]) -> dict[str, str] | None:
    """The last stanza whose ``Files`` names ``path`` itself (by stem: the package converted
    ``.jpg`` to ``.webp``); a catch-all pattern (``*`` or ``dir/*``) is not a per-file credit."""
    stem = path.rsplit(".", 1)[0]
    found = None
    for stanza in stanzas:
        for pattern in stanza["Files"].split():
            if "*" in pattern.rsplit("/", 1)[-1].rsplit(".", 1)[0]:
                continue  # a pattern over many files: not this photo's own credit
            if pattern.rsplit(".", 1)[0] in (stem, stem.rsplit("/", 1)[-1]) or fnmatch.fnmatch(path, pattern):
                found = stanza
    return found


# ---------------------------------------------------------------------------------------------
# gathering


def fetch_packages(cache: Path) -> dict[str, Path]:
    """``apt-get download`` each pinned package into ``cache`` (kept when already there)."""
    cache.mkdir(parents=True, exist_ok=True)
    debs = {}
    for package, version in PACKAGES.items():
        found = sorted(cache.glob(f"{package}_{version.replace(':', '%3a')}_*.deb"))
        if not found:
            subprocess.run(["apt-get", "download", f"{package}={version}"], cwd=cache, check=True)
            found = sorted(cache.glob(f"{package}_*.deb"))
        if not found:
            raise CorpusBuildError(f"apt-get download {package}={version} left no .deb in {cache}")
        debs[package] = found[-1]
    return debs


def _unpack(deb: Path, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dpkg-deb", "-x", str(deb), str(into)], check=True)
    return into


def gather(debs: dict[str, Path], work: Path) -> list[dict]:
    """Candidate photos: ``{"name", "data" (encoded image bytes), "source", "credit", "license",
    "link", "people"}`` from every package and scikit-image, before near-duplicate removal."""
    out: list[dict] = []
    root = _unpack(debs["gcompris-qt-data"], work / "gcompris")
    doc = root / "usr/share/doc/gcompris-qt-data/copyright"
    stanzas = parse_dep5(doc.read_text(encoding="utf-8"))
    resources: dict[str, bytes] = {}
    for rcc in sorted((root / "usr/share/gcompris-qt/rcc").glob("*.rcc")):
        for path, blob in read_rcc(rcc.read_bytes()).items():
            resources[path.split("gcompris/", 1)[-1]] = blob
    readmes = {p.rsplit("/", 1)[0] + "/": parse_dep5(b.decode("utf-8", "replace")) for p, b in resources.items() if p.endswith("/README")}
    for path, blob in sorted(resources.items()):
        folder = path.rsplit("/", 1)[0] + "/"
        if folder not in GCOMPRIS_FOLDERS or not path.endswith((".webp", ".jpg", ".jpeg")):
            continue
        stanza = credit_for(path.rsplit("/", 1)[-1], readmes.get(folder, [])) or credit_for(path, stanzas)
        if stanza is None or not stanza.get("License"):
            continue  # no credit of its own: left out
        activity = path.split("/")[2]
        out.append({
            "name": f"gc_{activity}_{Path(path).stem}",
            "data": blob,
            "source": f"Debian gcompris-qt-data {PACKAGES['gcompris-qt-data']}, rcc resource {path}",
            "credit": stanza.get("Copyright", "").strip(),
            "license": normalise_licence(stanza["License"]),
            "link": (stanza.get("Source") or stanza.get("Comment") or "").split()[0] if (stanza.get("Source") or stanza.get("Comment")) else "",
            "people": False,
        })
    for package, folder in (("lomiri-wallpapers-16.04", "usr/share/backgrounds"), ("mate-backgrounds", "usr/share/backgrounds/mate/nature")):
        root = _unpack(debs[package], work / package)
        stanzas = parse_dep5((root / f"usr/share/doc/{package}/copyright").read_text(encoding="utf-8"))
        short = package.split("-")[0]
        for photo in sorted((root / folder).glob("*.jpg")):
            if photo.stem in LEAVE_OUT:
                continue
            rel = f"{Path(folder).name}/{photo.name}" if short == "mate" else f"16.04/{photo.name}"
            stanza = credit_for(rel, stanzas)
            if stanza is None:
                continue
            out.append({
                "name": f"{short}_{photo.stem}",
                "data": photo.read_bytes(),
                "source": f"Debian {package} {PACKAGES[package]}, {folder}/{photo.name}",
                "credit": stanza.get("Copyright", "").strip(),
                "license": normalise_licence(stanza["License"]),
                "link": "",
                "people": False,
            })
    try:
        import skimage.data
    except ImportError:
        print("scikit-image is not installed: its photos are left out", file=sys.stderr)
    else:
        import skimage

        folder = Path(skimage.data.__file__).parent
        for file, (credit, licence, people) in SKIMAGE_PHOTOS.items():
            out.append({
                "name": f"skimage_{Path(file).stem}",
                "data": (folder / file).read_bytes(),
                "source": f"scikit-image {skimage.__version__} skimage/data/{file}",
                "credit": credit,
                "license": licence,
                "link": "https://scikit-image.org/docs/stable/api/skimage.data.html",
                "people": people,
            })
    return out


def near_duplicates(images: list, threshold: float = NEAR_DUPLICATE_CORR) -> set[int]:
    """Indices to drop: each image whose 24x24 grey thumbnail correlates above ``threshold``
    with an earlier kept one. ``images``: Pillow images."""
    import numpy as np

    thumbs = []
    for image in images:
        grey = np.asarray(image.convert("L").resize((24, 24)), dtype=np.float64).ravel()
        grey -= grey.mean()
        thumbs.append(grey / (np.linalg.norm(grey) + 1e-9))
    drop: set[int] = set()
    for i in range(len(thumbs)):
        for j in range(i):
            if j not in drop and float(thumbs[i] @ thumbs[j]) > threshold:
                drop.add(i)
                break
    return drop


def build(out: Path, debs: dict[str, Path]) -> dict:
    """Write the corpus photos, ``corpus.json`` and ``ATTRIBUTION.md`` into ``out``."""
    from PIL import Image

    with tempfile.TemporaryDirectory() as work:
        candidates = gather(debs, Path(work))
    images = []
    for cand in candidates:
        image = Image.open(io.BytesIO(cand["data"]))
        image.load()
        images.append(image.convert("RGB"))
    dropped = near_duplicates(images)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.jpg"):
        old.unlink()
    photos = []
    for index, (cand, image) in enumerate(zip(candidates, images)):
        if index in dropped:
            print(f"near-duplicate left out: {cand['name']}", file=sys.stderr)
            continue
        scale = LONG_SIDE / max(image.size)
        if scale < 1:
            image = image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
        name = re.sub(r"[^A-Za-z0-9_]+", "_", cand["name"]).lower() + ".jpg"
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=True)
        (out / name).write_bytes(buffer.getvalue())
        photos.append({
            "file": name,
            "group": Path(name).stem,
            "people": cand["people"],
            "size": list(image.size),
            "sha256": hashlib.sha256(buffer.getvalue()).hexdigest(),
            "credit": cand["credit"],
            "license": cand["license"],
            "link": cand["link"],
            "source": cand["source"],
        })
    manifest = {
        "format": CORPUS_FORMAT,
        "title": "styleforge learning-curve corpus",
        "purpose": "distinct real scenes to measure how a look learner scales with photos per side",
        "packages": PACKAGES,
        "processing": f"upright, long side {LONG_SIDE} px (Lanczos), JPEG quality {JPEG_QUALITY}, sRGB",
        "group_rule": "each photo is a scene group of its own (near-duplicates were left out)",
        "people_rule": "people = at least one human is a subject of the photo",
        "photos": photos,
    }
    (out / "corpus.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    lines = [
        "# styleforge learning-curve corpus: credits",
        "",
        f"{len(photos)} photographs, downscaled ({manifest['processing']}) from the Debian packages "
        + ", ".join(f"`{p}` {v}" for p, v in PACKAGES.items())
        + " and scikit-image's data folder, each under its own licence as credited by the package "
        "(`debian/copyright`, or the GCompris activity's README). Licence texts: "
        "<https://creativecommons.org/licenses/> (CC-BY-*, CC-BY-SA-*, CC0-1.0), "
        "<https://www.gnu.org/licenses/> (GPL-2+, GFDL). Regenerate with `make corpus`.",
        "",
        "| file | credit | licence | source |",
        "|---|---|---|---|",
    ]
    for photo in photos:
        link = f" <{photo['link']}>" if photo["link"] else ""
        lines.append(f"| {photo['file']} | {photo['credit'].replace('|', '/')} | {photo['license']} | {photo['source']}{link} |")
    (out / "ATTRIBUTION.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m styleforge.photo.corpus_build", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/corpus"), help="corpus folder to (re)write")
    parser.add_argument("--debs", type=Path, default=None, help="folder caching the .deb files (default: a temporary folder)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        debs = fetch_packages(args.debs or Path(tmp))
        manifest = build(args.out, debs)
    total = sum((args.out / p["file"]).stat().st_size for p in manifest["photos"])
    print(f"{len(manifest['photos'])} photos, {total / 1e6:.1f} MB in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
