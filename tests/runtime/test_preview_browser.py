"""The preview page in a real browser: headless Chromium opens it from ``file://``, the test moves
the sliders with the keyboard and reads the live canvas back.

The WebGL2 LUT must agree with the runtime's ``stylize`` (``LutStylizer``) within 2 levels per
channel on album photos, at full and half strength; strength 0 must give the input back; a
photo change must re-render the new photo. A look recipe (every operator) must be within
:data:`RECIPE_DB` of the runtime's ``Recipe.apply`` on the embedded photos, before and after its
per-step sliders move, and "save recipe" must download the edited recipe that ``styleforge export
--recipe`` turns into a bundle giving the same pixels. Chromium is Debian's ``chromium`` (``make setup``
installs it where apt-get can); without it the test is skipped with the reason.

Chromium is driven over ``--remote-debugging-pipe``: the DevTools protocol as NUL-separated JSON
on file descriptors 3 and 4, so no websocket library, driver or download is needed.

``STYLEFORGE_PREVIEW_SCREENSHOT=docs/preview.png`` also saves a screenshot of the page.
"""

from __future__ import annotations

import base64
import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from styleforge.runtime import open_bundle
from styleforge.runtime import preview as pv

ALBUM = Path(__file__).resolve().parents[2] / "data" / "album"
PHOTOS = [ALBUM / "pool.jpg", ALBUM / "wayne.jpg", ALBUM / "anne_helene.jpg"]  # 800x600, 592x800, 400x600
TOLERANCE = 2  # levels per channel, WebGL vs the runtime (the bound)
RECIPE_DB = 40.0  # PSNR of the live recipe against the runtime's (the bound)
KEYS = {"Home": 36, "End": 35, "PageDown": 34, "PageUp": 33, "ArrowLeft": 37, "ArrowUp": 38,
        "ArrowRight": 39, "ArrowDown": 40}


def chromium_path() -> str | None:
    for name in (os.environ.get("STYLEFORGE_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


class Chromium:
    """Headless Chromium and one page, over the DevTools protocol on a pipe."""

    def __init__(self, executable: str, window: tuple[int, int] = (1400, 1000)):
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        self.profile = tempfile.mkdtemp(prefix="styleforge-chromium-")
        args = [executable, "--headless", "--no-sandbox", "--remote-debugging-pipe",
                f"--user-data-dir={self.profile}", "--no-first-run", "--no-default-browser-check",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-quic", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",  # software WebGL2
                "--force-color-profile=srgb", f"--window-size={window[0]},{window[1]}", "about:blank"]

        def onto_3_and_4() -> None:  # the protocol's file descriptors in the child
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self._stderr = open(Path(self.profile) / "stderr.log", "w")
        self.proc = subprocess.Popen(args, pass_fds=(3, 4), preexec_fn=onto_3_and_4, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self._stderr)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []
        page = next(t for t in self.call("Target.getTargets")["targetInfos"] if t["type"] == "page")
        self.session = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)["sessionId"]
        self.page("Runtime.enable")
        self.page("Page.enable")

    def _receive(self, timeout: float) -> dict:
        while b"\0" not in self._buffer:
            if not select.select([self._from_chrome], [], [], timeout)[0]:
                raise TimeoutError(f"chromium did not answer in {timeout:.0f} s")
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def call(self, method: str, session: str | None = None, timeout: float = 60.0, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive(timeout)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def page(self, method: str, **params) -> dict:
        return self.call(method, session=self.session, **params)

    def evaluate(self, expression: str):
        result = self.page("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"page error: {result['exceptionDetails']}")
        return result["result"].get("value")

    def press(self, key: str) -> None:
        code = KEYS[key]
        for kind in ("rawKeyDown", "keyUp"):
            self.page("Input.dispatchKeyEvent", type=kind, key=key, code=key, windowsVirtualKeyCode=code,
                      nativeVirtualKeyCode=code)

    def errors(self) -> list[str]:
        return [json.dumps(e["params"])[:300] for e in self.events
                if e.get("method") == "Runtime.exceptionThrown"
                or (e.get("method") == "Runtime.consoleAPICalled" and e["params"].get("type") == "error")]

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=10)
        except (OSError, RuntimeError, TimeoutError):
            pass
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)
        self._stderr.close()
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    executable = chromium_path()
    if executable is None:
        pytest.skip("Chromium is not installed (make setup installs Debian's chromium where apt-get works; "
                    "or set STYLEFORGE_CHROMIUM to a Chromium/Chrome binary)")
    chrome = Chromium(executable)
    yield chrome
    chrome.close()


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> tuple[Path, Path]:
    """(bundle, page) for the ``teal-orange`` look (a split tone: channels mixed) on three album photos."""
    from styleforge.export.lut_export import export_lut_bundle, look_colour_fn

    root = tmp_path_factory.mktemp("preview-browser")
    bundle = root / "teal-orange"
    export_lut_bundle(look_colour_fn("teal-orange"), bundle, size=33, style="teal-orange", name="teal-orange",
                      progress=False)
    from PIL import Image

    references = root / "references"  # a second, pre-rendered output per photo: the look at 70 %
    references.mkdir()
    stylizer = open_bundle(bundle, artifact="lut")
    for photo in PHOTOS:
        Image.fromarray(stylizer.stylize_rgb(pv.load_photo(photo, None)[0], 0.7)).save(references / f"{photo.stem}.png")
    return bundle, pv.build_preview(bundle, PHOTOS, root / "page", max_edge=None, reference_images=references,
                                    reference_label="the look at 70 %", lossless=True)


def canvas_pixels(chrome: Chromium, index: int) -> np.ndarray:
    shot = chrome.evaluate(f"window.styleforgePreview.frame().then(() => window.styleforgePreview.pixels({index}))")
    rgba = np.frombuffer(base64.b64decode(shot["rgba"]), np.uint8).reshape(shot["height"], shot["width"], 4)
    assert (rgba[..., 3] == 255).all()
    return rgba[..., :3]


def slider(chrome: Chromium, index: int, name: str, *keys: str) -> int:
    """Focus photo ``index``'s ``name`` slider and press ``keys`` as a person would; its value."""
    chrome.evaluate(f"document.querySelectorAll('section.photo')[{index}].querySelector('input.{name}').focus()")
    for key in keys:
        chrome.press(key)
    return int(chrome.evaluate(f"document.querySelectorAll('section.photo')[{index}].querySelector('input.{name}').value"))


def test_webgl_lut_matches_the_runtime_in_chromium(browser, page):
    bundle, html_path = page
    browser.page("Page.navigate", url=html_path.as_uri())
    deadline = time.monotonic() + 60
    while not browser.evaluate("document.readyState === 'complete' && !!window.styleforgePreview"):
        assert time.monotonic() < deadline, "the page did not load"
        time.sleep(0.1)
    state = browser.evaluate("window.styleforgePreview.ready")
    if not state["webgl2"] and "not available" in state["problem"]:
        pytest.skip(f"this Chromium has no WebGL2 here ({state['problem']})")
    assert state == {"webgl2": True, "problem": "", "photos": len(PHOTOS)}, state

    html = html_path.read_text()
    befores = [pv.decode_data_uri(uri) for uri in re.findall(r'<img class="before" src="([^"]+)"', html)]
    stylizer = open_bundle(bundle, artifact="lut")
    worst = {}
    for index, before in enumerate(befores):
        assert slider(browser, index, "strength", "End") == 100
        live = canvas_pixels(browser, index)
        assert live.shape == before.shape  # full resolution
        runtime = stylizer.stylize_rgb(before)
        worst[(index, 100)] = int(np.abs(live.astype(int) - runtime.astype(int)).max())
        assert np.abs(runtime.astype(int) - before.astype(int)).max() > 20  # the look changes the photo

        assert slider(browser, index, "strength", *["PageDown"] * 5) == 50
        half = canvas_pixels(browser, index)
        worst[(index, 50)] = int(np.abs(half.astype(int) - stylizer.stylize_rgb(before, 0.5).astype(int)).max())

        assert slider(browser, index, "strength", "Home") == 0
        assert np.array_equal(canvas_pixels(browser, index), before)  # strength 0 is the input, exactly

        assert slider(browser, index, "split", "Home") == 0  # all "after"
        clip = browser.evaluate("window.styleforgePreview.frame().then(() => document.querySelectorAll("
                                f"'section.photo')[{index}].querySelector('.after').style.clipPath)")
        assert clip in ("inset(0px 0px 0px 0%)", "inset(0px)", "inset(0%)"), clip  # nothing of "after" is hidden
        slider(browser, index, "split", "End")
        slider(browser, index, "strength", "End")
    # a pre-rendered output: chosen with the keyboard, shown as an image, strength as its opacity
    browser.evaluate("document.querySelector('section.photo input[type=radio]').focus()")
    browser.press("ArrowDown")
    slider(browser, 0, "strength", *["PageDown"] * 3)
    shown = browser.evaluate(
        "window.styleforgePreview.frame().then(() => { const s = document.querySelector('section.photo');"
        " const img = s.querySelector('img.after-image'); return {hidden: img.hidden, canvas: s.querySelector("
        "'canvas.live').hidden, same: img.src === s.querySelectorAll('.outputs img')[1].src,"
        " opacity: img.style.opacity, status: s.querySelector('.status').textContent}; })")
    assert shown == {"hidden": False, "canvas": True, "same": True, "opacity": "0.7",
                     "status": "Pre-rendered (the reference images); strength blends it with the original."}, shown
    browser.evaluate("document.querySelector('section.photo input[type=radio]').focus()")
    browser.press("ArrowUp")  # back to the live LUT
    # back to the first photo: the shared WebGL context re-renders it (a photo change is live)
    assert slider(browser, 0, "strength", "End") == 100
    assert np.abs(canvas_pixels(browser, 0).astype(int) - stylizer.stylize_rgb(befores[0]).astype(int)).max() <= TOLERANCE
    print(f"\nWebGL2 LUT vs runtime stylize, max level difference per (photo, strength %): {worst}")
    assert max(worst.values()) <= TOLERANCE, worst
    assert browser.errors() == []

    screenshot = os.environ.get("STYLEFORGE_PREVIEW_SCREENSHOT")
    if screenshot:  # the page as `styleforge preview BUNDLE pool.jpg` writes it, split near the middle
        plain = pv.build_preview(bundle, PHOTOS[:1], html_path.parent.parent / "plain")
        browser.page("Page.navigate", url=plain.as_uri())
        time.sleep(1.0)
        assert browser.evaluate("window.styleforgePreview.ready")["webgl2"]
        slider(browser, 0, "split", "Home", *["ArrowRight"] * 45)
        slider(browser, 0, "strength", "End")
        box = browser.evaluate("window.styleforgePreview.frame().then(() => { const r = document.querySelector("
                               "'section.photo').getBoundingClientRect(); return [r.bottom + window.scrollY]; })")
        shot = browser.page("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                            clip={"x": 0, "y": 0, "width": 1400, "height": box[0] + 12, "scale": 1})
        Path(screenshot).write_bytes(base64.b64decode(shot["data"]))


# ------------------------------------------------------------------------------ a look recipe

EVERY_OP = [  # every operator, each with a visible effect; the colour is the teal-orange look.cube
    {"op": "smooth_skin", "amount": 0.6, "radius": 0.01, "edge": 0.05},  # pyramid level 0 at 240 px
    {"op": "detail", "fine": 0.5, "medium": 0.4, "coarse": -0.3},
    {"op": "clarity", "amount": 0.5, "radius": 0.03},
    {"op": "colour_lut", "lut": "look.cube"},
    {"op": "sharpen", "amount": 0.8, "radius": 0.003},
    {"op": "bloom", "strength": 0.6, "threshold": 0.6, "radius": 0.05, "r": 1.3, "g": 0.9, "b": 0.5},
    {"op": "fade", "amount": 0.1, "r": 0.6, "g": 0.5, "b": 0.4},
    {"op": "vignette", "amount": -0.4, "midpoint": 0.6, "roundness": 0.3, "feather": 0.6, "center_x": 0.45,
     "center_y": 0.55},
    {"op": "grain", "amount": 0.04, "size": 0.004, "luma_dependence": 0.5, "seed": 7},
    {"op": "smooth_skin", "amount": 0.5, "radius": 0.04, "edge": 0.08},  # level 2 at 240 px: the fields on the level
]


@pytest.fixture(scope="module")
def recipe_page(page) -> tuple[Path, Path]:
    """(bundle, page) of a recipe of every operator around the teal-orange look.cube, made the way a
    person would: a recipe.json written by hand, ``styleforge export --recipe`` with the LUT bundle's
    table, ``styleforge preview`` on two album photos at 400 px."""
    from styleforge.export.recipe_edit import export_edited_recipe

    lut_bundle, lut_page = page
    root = lut_page.parent.parent
    (root / "recipe.json").write_text(json.dumps({"version": 1, "steps": EVERY_OP}))
    bundle = root / "every-op"
    export_edited_recipe(root / "recipe.json", lut_bundle, bundle, heldout_images=PHOTOS[:1], progress=False,
                         ffmpeg_size=(320, 240))  # the chain is not what this test is about: small
    return bundle, pv.build_preview(bundle, PHOTOS[:2], root / "recipe-page", max_edge=320, lossless=True)


def open_page(chrome: Chromium, html_path: Path) -> dict:
    chrome.page("Page.navigate", url=html_path.as_uri())
    deadline = time.monotonic() + 60
    while not chrome.evaluate("document.readyState === 'complete' && !!window.styleforgePreview"):
        assert time.monotonic() < deadline, "the page did not load"
        time.sleep(0.1)
    return chrome.evaluate("window.styleforgePreview.ready")


def recipe_db(live: np.ndarray, recipe, before: np.ndarray, strength: float = 1.0) -> float:
    """PSNR of the page's 8-bit pixels against ``Recipe.apply`` in float (not rounded), 0-255."""
    from styleforge.runtime.metrics import psnr

    reference = recipe.apply(before.astype(np.float32) / np.float32(255.0), strength) * 255.0
    return psnr(live.astype(np.float64), reference.astype(np.float64), 255.0)


def test_webgl_recipe_matches_the_runtime_and_its_sliders_edit_it(browser, recipe_page, tmp_path):
    from styleforge.cli import main
    from styleforge.runtime.metrics import psnr
    from styleforge.runtime.recipe import parse_recipe

    bundle, html_path = recipe_page
    state = open_page(browser, html_path)
    if not state["webgl2"] and "not available" in state["problem"]:
        pytest.skip(f"this Chromium has no WebGL2 here ({state['problem']})")
    assert state == {"webgl2": True, "problem": "", "photos": 2, "recipe": True, "recipeProblem": ""}, state
    stylizer = open_bundle(bundle)
    recipe = stylizer.recipe
    befores = [pv.decode_data_uri(uri) for uri in re.findall(r'<img class="before" src="([^"]+)"', html_path.read_text())]
    figures = {}
    for index, before in enumerate(befores):
        live = canvas_pixels(browser, index)
        assert live.shape == before.shape
        figures[(index, "recipe")] = recipe_db(live, recipe, before)
        assert psnr(before.astype(float), live.astype(float)) < 30  # the look is really there
    assert slider(browser, 0, "strength", *["PageDown"] * 5) == 50
    figures[(0, "recipe at 50 %")] = recipe_db(canvas_pixels(browser, 0), recipe, befores[0], 0.5)
    assert slider(browser, 0, "strength", "Home") == 0
    assert np.array_equal(canvas_pixels(browser, 0), befores[0])
    slider(browser, 0, "strength", "End")

    # a person moves three sliders of photo 0: less bloom, lighter corners, no clarity
    steps = {op["op"]: i for i, op in enumerate(EVERY_OP)}
    moved = {"bloom": ["PageDown"] * 3, "vignette": ["End"], "clarity": ["Home"]}  # their strength keys
    for op, keys in moved.items():
        focus = f"document.querySelector('section.photo input.step-strength[data-step=\"{steps[op]}\"]')"
        browser.evaluate(f"{focus}.focus()")
        for k in keys:
            browser.press(k)
    text = browser.evaluate("window.styleforgePreview.recipe()")
    edited = parse_recipe(json.loads(text)).with_tables(recipe.tables)
    values = {s.op: s.params for s in edited.steps}
    assert values["vignette"]["amount"] == 1.0 and values["clarity"]["amount"] == -1.0
    assert abs(values["bloom"]["strength"] - (0.6 - 3 * 0.15)) < 0.011  # Page Down: a tenth of [-0.5, 1]
    assert [s for s in edited.steps if s.op not in moved] == [s for s in recipe.steps if s.op not in moved]
    shown = browser.evaluate("Array.from(document.querySelectorAll('section.photo')).map((s) => Array.from("
                             "s.querySelectorAll('input.step-strength')).map((i) => Number(i.value)))")
    assert shown[0] == shown[1]  # every photo's sliders follow
    for index, before in enumerate(befores):
        live = canvas_pixels(browser, index)
        figures[(index, "edited")] = recipe_db(live, edited, before)
        runtime_before, runtime_after = (r.apply(before.astype(np.float32) / 255.0) * 255.0 for r in (recipe, edited))
        assert psnr(runtime_before, runtime_after) < 30  # the edit is a real change, and the page made the same one

    # "save recipe" downloads what the page shows; export --recipe makes it a bundle with the same pixels
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.call("Browser.setDownloadBehavior", behavior="allow", downloadPath=str(downloads))
    browser.evaluate("document.querySelectorAll('section.photo')[1].querySelector('button.save-recipe').click()")
    deadline = time.monotonic() + 30
    while not (downloads / "recipe.json").is_file():
        assert time.monotonic() < deadline, f"no download: {list(downloads.iterdir())}"
        time.sleep(0.1)
    assert (downloads / "recipe.json").read_text() == text
    (tmp_path / "heldout").mkdir()
    shutil.copy(PHOTOS[2], tmp_path / "heldout")  # one small photo for export's runtime check
    assert main(["export", "--recipe", str(downloads / "recipe.json"), "--bundle", str(bundle),
                 "--out", str(tmp_path / "edited"), "--heldout", str(tmp_path / "heldout"), "--quiet"]) == 0
    new = open_bundle(tmp_path / "edited")
    for index, before in enumerate(befores):
        exported = new.stylize_rgb(before)
        assert psnr(canvas_pixels(browser, index).astype(float), exported.astype(float)) >= RECIPE_DB
    # Reset puts the bundle's recipe back
    browser.evaluate("document.querySelector('button.reset-recipe').click()")
    assert parse_recipe(json.loads(browser.evaluate("window.styleforgePreview.recipe()"))).steps == recipe.steps
    figures[(0, "reset")] = recipe_db(canvas_pixels(browser, 0), recipe, befores[0])

    # the colour part alone is the one-pass LUT, as on a LUT bundle's page
    browser.evaluate("document.querySelector('section.photo input[type=radio]').focus()")
    browser.press("ArrowDown")
    assert browser.evaluate("document.querySelector('section.photo input[type=radio]:checked').dataset.program") == "lut"
    colour = open_bundle(bundle, artifact="cube").stylize_rgb(befores[0])
    assert np.abs(canvas_pixels(browser, 0).astype(int) - colour.astype(int)).max() <= TOLERANCE
    print("\nWebGL2 recipe vs Recipe.apply, PSNR dB per (photo, state):",
          {k: round(v, 2) for k, v in figures.items()})
    assert min(figures.values()) >= RECIPE_DB, figures
    assert browser.errors() == []
