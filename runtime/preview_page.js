// styleforge preview: before/after split, strength, and the look applied live with WebGL2: a .cube
// in one pass, a look recipe (preview_recipe.js) pass by pass with a slider per step.
// Hand-written, no framework. The LUT path mirrors styleforge.runtime.lut: trilinear in float32 on
// the 8-bit input (x = v / 255 * (S - 1), base = min(floor(x), S - 2)), blended with the input as
// in + s * (lut(in) - in), rounded to 8 bits by the framebuffer.
"use strict";
(function () {
  const VERTEX = `#version 300 es
in vec2 position;
void main() { gl_Position = vec4(position, 0.0, 1.0); }`;

  const FRAGMENT = `#version 300 es
precision highp float;
precision highp int;
precision highp sampler3D;
uniform sampler2D photo;   // RGBA8, row 0 = the photo's top row
uniform sampler3D lut;     // RGB32F, texel (r, g, b) = output for input (r, g, b) / (S - 1)
uniform int size;
uniform float strength;
out vec4 colour;
vec3 node(ivec3 i) { return texelFetch(lut, i, 0).rgb; }
void main() {
  ivec2 extent = textureSize(photo, 0);
  ivec2 p = ivec2(gl_FragCoord.xy);
  vec3 c = texelFetch(photo, ivec2(p.x, extent.y - 1 - p.y), 0).rgb;
  vec3 x = clamp(c, 0.0, 1.0) * float(size - 1);
  ivec3 b = min(ivec3(x), ivec3(size - 2));
  vec3 f = x - vec3(b);
  vec3 c00 = mix(node(b), node(b + ivec3(1, 0, 0)), f.r);
  vec3 c10 = mix(node(b + ivec3(0, 1, 0)), node(b + ivec3(1, 1, 0)), f.r);
  vec3 c01 = mix(node(b + ivec3(0, 0, 1)), node(b + ivec3(1, 0, 1)), f.r);
  vec3 c11 = mix(node(b + ivec3(0, 1, 1)), node(b + ivec3(1, 1, 1)), f.r);
  vec3 styled = mix(mix(c00, c10, f.g), mix(c01, c11, f.g), f.b);
  colour = vec4(clamp(c + strength * (styled - c), 0.0, 1.0), 1.0);
}`;

  // One WebGL2 context for the whole page (browsers cap contexts); it draws one photo at a time
  // at the photo's full size and the result is copied onto that photo's visible canvas. The LUT and
  // the recipe renderer share it and its photo texture.
  class Gpu {
    constructor() {
      this.canvas = document.createElement("canvas");
      const gl = this.canvas.getContext("webgl2", { alpha: false, antialias: false, depth: false,
        premultipliedAlpha: false, preserveDrawingBuffer: true });
      if (!gl) throw new Error("WebGL2 is not available in this browser");
      this.gl = gl;
      const buffer = gl.createBuffer();  // one triangle that covers the viewport, at attribute 0
      gl.bindBuffer(gl.ARRAY_BUFFER, buffer);
      gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([-1, -1, 3, -1, -1, 3]), gl.STATIC_DRAW);
      gl.enableVertexAttribArray(0);
      gl.vertexAttribPointer(0, 2, gl.FLOAT, false, 0, 0);
      this.photoTexture = texture(gl, gl.TEXTURE_2D);
      this.photo = null;
      this.name = gl.getParameter(gl.VERSION);
    }

    // Upload `image` (a decoded image element) as it is (no colour conversion) when it changes;
    // the canvas takes its size.
    upload(image) {
      const gl = this.gl;
      if (this.photo !== image) {
        this.canvas.width = image.naturalWidth;
        this.canvas.height = image.naturalHeight;
        gl.activeTexture(gl.TEXTURE0);
        gl.bindTexture(gl.TEXTURE_2D, this.photoTexture);
        gl.pixelStorei(gl.UNPACK_FLIP_Y_WEBGL, false);
        gl.pixelStorei(gl.UNPACK_PREMULTIPLY_ALPHA_WEBGL, false);
        gl.pixelStorei(gl.UNPACK_COLORSPACE_CONVERSION_WEBGL, gl.NONE);
        gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA8, gl.RGBA, gl.UNSIGNED_BYTE, image);
        this.photo = image;
      }
    }

    show(target) {
      target.getContext("2d", { alpha: false }).drawImage(this.canvas, 0, 0);
    }
  }

  function texture(gl, target) {
    const made = gl.createTexture();
    gl.bindTexture(target, made);
    for (const p of [gl.TEXTURE_MIN_FILTER, gl.TEXTURE_MAG_FILTER]) gl.texParameteri(target, p, gl.NEAREST);
    for (const p of [gl.TEXTURE_WRAP_S, gl.TEXTURE_WRAP_T, gl.TEXTURE_WRAP_R]) gl.texParameteri(target, p, gl.CLAMP_TO_EDGE);
    return made;
  }

  class LutRenderer {
    constructor(gpu, lut) {
      const gl = gpu.gl;
      this.gpu = gpu;
      this.gl = gl;
      const program = gl.createProgram();
      for (const [kind, source] of [[gl.VERTEX_SHADER, VERTEX], [gl.FRAGMENT_SHADER, FRAGMENT]]) {
        const shader = gl.createShader(kind);
        gl.shaderSource(shader, source);
        gl.compileShader(shader);
        if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(shader));
        gl.attachShader(program, shader);
      }
      gl.bindAttribLocation(program, 0, "position");
      gl.linkProgram(program);
      if (!gl.getProgramParameter(program, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(program));
      gl.useProgram(program);
      this.program = program;

      const bytes = Uint8Array.from(atob(lut.rgb_f32), (ch) => ch.charCodeAt(0));
      const rows = new Float32Array(bytes.buffer);  // red fastest, then green, then blue
      if (rows.length !== lut.size ** 3 * 3) throw new Error("the embedded LUT has the wrong length");
      gl.activeTexture(gl.TEXTURE1);
      this.lutTexture = texture(gl, gl.TEXTURE_3D);
      gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
      gl.texImage3D(gl.TEXTURE_3D, 0, gl.RGB32F, lut.size, lut.size, lut.size, 0, gl.RGB, gl.FLOAT, rows);
      gl.uniform1i(gl.getUniformLocation(program, "photo"), 0);
      gl.uniform1i(gl.getUniformLocation(program, "lut"), 1);
      gl.uniform1i(gl.getUniformLocation(program, "size"), lut.size);
      this.strength = gl.getUniformLocation(program, "strength");
    }

    // Draw `image` (a decoded image element) through the LUT at `strength` onto the 2D canvas `target`.
    draw(image, strength, target) {
      const gl = this.gl;
      this.gpu.upload(image);
      gl.useProgram(this.program);
      gl.bindFramebuffer(gl.FRAMEBUFFER, null);
      gl.activeTexture(gl.TEXTURE0);
      gl.bindTexture(gl.TEXTURE_2D, this.gpu.photoTexture);
      gl.activeTexture(gl.TEXTURE1);
      gl.bindTexture(gl.TEXTURE_3D, this.lutTexture);
      gl.viewport(0, 0, this.gpu.canvas.width, this.gpu.canvas.height);
      gl.uniform1f(this.strength, strength);
      gl.drawArrays(gl.TRIANGLES, 0, 3);
      this.gpu.show(target);
    }
  }

  function base64(bytes) {
    let text = "";
    for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(text);
  }

  const lut = JSON.parse(document.getElementById("styleforge-lut").textContent);
  const recipe = JSON.parse(document.getElementById("styleforge-recipe").textContent);
  let gpu = null;
  let renderer = null;
  let recipeRenderer = null;
  let webglProblem = lut ? "" : "this look has no .cube";
  let recipeProblem = recipe ? "" : "this look has no recipe";
  if (lut || recipe) {
    try { gpu = new Gpu(); } catch (err) { webglProblem = recipeProblem = String(err.message || err); }
  }
  if (gpu && lut) {
    try { renderer = new LutRenderer(gpu, lut); } catch (err) { webglProblem = String(err.message || err); }
  }
  if (gpu && recipe) {
    try { recipeRenderer = new StyleforgeRecipe.RecipeRenderer(gpu.gl, recipe); } catch (err) { recipeProblem = String(err.message || err); }
  }

  // The recipe as edited on this page: its steps with each one's main parameter from its slider
  // (a value nobody moved keeps the recipe's own, unrounded).
  const edited = recipe ? recipe.recipe.steps.map((step) => Object.assign({}, step)) : null;
  const renders = [];  // one "render again" function per photo
  const current = [];  // one "render now if out of date" function per photo

  function recipeText() {
    return JSON.stringify({ version: recipe.recipe.version, steps: edited }, null, 1) + "\n";
  }

  function showValue(index) {
    const key = recipe.strength[edited[index].op];
    document.querySelectorAll(`input.step-strength[data-step="${index}"]`).forEach((input) => {
      input.value = String(edited[index][key]);
      const shown = Number(edited[index][key]).toFixed(Number(input.dataset.decimals));
      input.setAttribute("aria-valuetext", shown);
      input.parentElement.querySelector("output").textContent = shown;
    });
  }

  function setStep(index, value) {  // one slider moved: every photo's copy of it follows, every photo re-renders
    edited[index][recipe.strength[edited[index].op]] = value;
    showValue(index);
    renders.forEach((again) => again());
  }

  function saveRecipe() {  // a download, made here: no server
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([recipeText()], { type: "application/json" }));
    link.download = "recipe.json";
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  }

  function setUp(section) {
    const stage = section.querySelector(".stage");
    const before = section.querySelector("img.before");
    const after = section.querySelector(".after");
    const afterImage = section.querySelector("img.after-image");
    const canvas = section.querySelector("canvas.live");
    const divider = section.querySelector(".divider");
    const split = section.querySelector("input.split");
    const strength = section.querySelector("input.strength");
    const splitValue = section.querySelector(".split-value");
    const strengthValue = section.querySelector(".strength-value");
    const status = section.querySelector(".status");
    const outputs = section.querySelectorAll(".outputs figure img");
    const radios = section.querySelectorAll("input[type=radio]");
    const index = Number(section.dataset.index);
    const grainBlock = section.querySelector("script.grain-fields");
    const fields = grainBlock ? JSON.parse(grainBlock.textContent) : {};
    let pending = false;

    function live(chosen) {  // draws the live output and says so; false when it cannot
      if (chosen.dataset.live !== "1") return false;
      if (chosen.dataset.program === "recipe") {
        if (recipeRenderer === null) return false;
        try {
          gpu.upload(before);
          const passes = recipeRenderer.draw(edited, gpu.photoTexture, before.naturalWidth, before.naturalHeight,
            index, fields, Number(strength.value) / 100);
          gpu.show(canvas);
          status.textContent = `Live: the recipe (${edited.length} steps, ${passes} passes) applied by ${gpu.name} at ${canvas.width}×${canvas.height}.`;
          return true;
        } catch (err) {
          recipeProblem = String(err.message || err);
          recipeRenderer = null;
          document.querySelectorAll("input.step-strength").forEach((input) => { input.disabled = true; });
          return false;
        }
      }
      if (renderer === null) return false;
      renderer.draw(before, Number(strength.value) / 100, canvas);
      status.textContent = `Live: look.cube applied by ${gpu.name} at ${canvas.width}×${canvas.height}.`;
      return true;
    }

    function render() {
      pending = false;
      const s = Number(strength.value) / 100;
      const x = Number(split.value);
      after.style.clipPath = `inset(0 0 0 ${x}%)`;
      divider.style.left = `${x}%`;
      splitValue.textContent = `${x} %`;
      split.setAttribute("aria-valuetext", `${x} % before, ${100 - x} % after`);
      strengthValue.textContent = `${Math.round(s * 100)} %`;
      strength.setAttribute("aria-valuetext", `${Math.round(s * 100)} %`);
      const chosen = section.querySelector("input[type=radio]:checked") || radios[0];
      const shown = live(chosen);
      if (!shown) {
        const source = outputs[Number(chosen.value)].src;
        if (afterImage.src !== source) afterImage.src = source;
        afterImage.style.opacity = String(s);
        const problem = chosen.dataset.program === "recipe" ? recipeProblem : webglProblem;
        const what = chosen.dataset.program === "recipe" ? "recipe" : "LUT";
        status.textContent = chosen.dataset.live === "1"
          ? `WebGL2 unavailable (${problem}): showing the runtime's pre-rendered ${what} output.`
          : `Pre-rendered (${chosen.dataset.origin}); strength blends it with the original.`;
      }
      canvas.hidden = !shown;
      afterImage.hidden = shown;
    }
    function update() {  // coalesce bursts of input events into one frame
      stale = false;
      if (!pending) { pending = true; requestAnimationFrame(render); }
    }
    // A recipe slider re-renders every photo; one out of sight (or near it) waits until it comes back.
    let visible = true;
    let stale = false;
    if ("IntersectionObserver" in window) {
      new IntersectionObserver((entries) => {
        visible = entries[entries.length - 1].isIntersecting;
        if (visible && stale) update();
      }, { rootMargin: "50%" }).observe(section);
    }
    renders.push(() => { if (visible) update(); else stale = true; });
    current.push(() => { if (stale) { stale = false; render(); } });  // render() itself leaves stale alone
    split.addEventListener("input", update);
    strength.addEventListener("input", update);
    radios.forEach((radio) => radio.addEventListener("change", update));
    section.querySelectorAll("input.step-strength").forEach((input) => {
      if (recipeRenderer === null) input.disabled = true;  // nothing would show the change
      input.addEventListener("input", () => setStep(Number(input.dataset.step), Number(input.value)));
    });
    const save = section.querySelector("button.save-recipe");
    if (save) save.addEventListener("click", saveRecipe);
    const reset = section.querySelector("button.reset-recipe");
    if (reset) reset.addEventListener("click", () => recipe.recipe.steps.forEach((step, i) => {
      Object.assign(edited[i], step);
      showValue(i);
      renders.forEach((again) => again());
    }));
    stage.addEventListener("pointerdown", (event) => {
      stage.setPointerCapture(event.pointerId);
      move(event);
    });
    stage.addEventListener("pointermove", (event) => { if (stage.hasPointerCapture(event.pointerId)) move(event); });
    function move(event) {
      const box = stage.getBoundingClientRect();
      split.value = String(Math.round(Math.min(1, Math.max(0, (event.clientX - box.left) / box.width)) * 100));
      update();
    }
    return before.decode().catch(() => undefined).then(render);
  }

  const sections = Array.from(document.querySelectorAll("section.photo"));
  const ready = Promise.all(sections.map(setUp));

  // For tests and the curious: what is live, and the pixels a photo's live canvas shows now.
  window.styleforgePreview = {
    ready: ready.then(() => Object.assign({ webgl2: renderer !== null || recipeRenderer !== null,
      problem: webglProblem, photos: sections.length },
      recipe ? { recipe: recipeRenderer !== null, recipeProblem } : {})),
    frame: () => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))),
    pixels(index) {
      current[index]();  // a photo out of sight may not have drawn the latest edit yet
      const canvas = sections[index].querySelector("canvas.live");
      const data = canvas.getContext("2d", { alpha: false }).getImageData(0, 0, canvas.width, canvas.height).data;
      return { width: canvas.width, height: canvas.height, rgba: base64(data) };
    },
    recipe: () => (recipe ? recipeText() : null),  // what "save recipe" downloads now
  };
})();
