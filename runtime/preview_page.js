// styleforge preview: before/after split, strength, and the look's .cube applied live with WebGL2.
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
  // at the photo's full size and the result is copied onto that photo's visible canvas.
  class LutRenderer {
    constructor(lut) {
      this.canvas = document.createElement("canvas");
      const gl = this.canvas.getContext("webgl2", { alpha: false, antialias: false, depth: false,
        premultipliedAlpha: false, preserveDrawingBuffer: true });
      if (!gl) throw new Error("WebGL2 is not available in this browser");
      this.gl = gl;
      const program = gl.createProgram();
      for (const [kind, source] of [[gl.VERTEX_SHADER, VERTEX], [gl.FRAGMENT_SHADER, FRAGMENT]]) {
        const shader = gl.createShader(kind);
        gl.shaderSource(shader, source);
        gl.compileShader(shader);
        if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(shader));
        gl.attachShader(program, shader);
      }
      gl.linkProgram(program);
      if (!gl.getProgramParameter(program, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(program));
      gl.useProgram(program);
      this.program = program;
      const buffer = gl.createBuffer();  // one triangle that covers the viewport
      gl.bindBuffer(gl.ARRAY_BUFFER, buffer);
      gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([-1, -1, 3, -1, -1, 3]), gl.STATIC_DRAW);
      const where = gl.getAttribLocation(program, "position");
      gl.enableVertexAttribArray(where);
      gl.vertexAttribPointer(where, 2, gl.FLOAT, false, 0, 0);

      const bytes = Uint8Array.from(atob(lut.rgb_f32), (ch) => ch.charCodeAt(0));
      const rows = new Float32Array(bytes.buffer);  // red fastest, then green, then blue
      if (rows.length !== lut.size ** 3 * 3) throw new Error("the embedded LUT has the wrong length");
      gl.activeTexture(gl.TEXTURE1);
      this.lutTexture = this.texture(gl.TEXTURE_3D);
      gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
      gl.texImage3D(gl.TEXTURE_3D, 0, gl.RGB32F, lut.size, lut.size, lut.size, 0, gl.RGB, gl.FLOAT, rows);
      gl.activeTexture(gl.TEXTURE0);
      this.photoTexture = this.texture(gl.TEXTURE_2D);
      gl.uniform1i(gl.getUniformLocation(program, "photo"), 0);
      gl.uniform1i(gl.getUniformLocation(program, "lut"), 1);
      gl.uniform1i(gl.getUniformLocation(program, "size"), lut.size);
      this.strength = gl.getUniformLocation(program, "strength");
      this.photo = null;
      this.name = gl.getParameter(gl.VERSION);
    }

    texture(target) {
      const gl = this.gl;
      const texture = gl.createTexture();
      gl.bindTexture(target, texture);
      for (const p of [gl.TEXTURE_MIN_FILTER, gl.TEXTURE_MAG_FILTER]) gl.texParameteri(target, p, gl.NEAREST);
      for (const p of [gl.TEXTURE_WRAP_S, gl.TEXTURE_WRAP_T, gl.TEXTURE_WRAP_R]) gl.texParameteri(target, p, gl.CLAMP_TO_EDGE);
      return texture;
    }

    // Draw `image` (a decoded image element) through the LUT at `strength` onto the 2D canvas `target`.
    draw(image, strength, target) {
      const gl = this.gl;
      if (this.photo !== image) {  // a photo change re-uploads its pixels as they are (no colour conversion)
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
      gl.viewport(0, 0, this.canvas.width, this.canvas.height);
      gl.uniform1f(this.strength, strength);
      gl.drawArrays(gl.TRIANGLES, 0, 3);
      const context = target.getContext("2d", { alpha: false });
      context.drawImage(this.canvas, 0, 0);
    }
  }

  function base64(bytes) {
    let text = "";
    for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(text);
  }

  const lut = JSON.parse(document.getElementById("styleforge-lut").textContent);
  let renderer = null;
  let webglProblem = lut ? "" : "this look has no .cube";
  if (lut) {
    try { renderer = new LutRenderer(lut); } catch (err) { webglProblem = String(err.message || err); }
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
    let pending = false;

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
      const live = chosen.dataset.live === "1" && renderer !== null;
      if (live) {
        renderer.draw(before, s, canvas);
        status.textContent = `Live: look.cube applied by ${renderer.name} at ${canvas.width}×${canvas.height}.`;
      } else {
        const source = outputs[Number(chosen.value)].src;
        if (afterImage.src !== source) afterImage.src = source;
        afterImage.style.opacity = String(s);
        status.textContent = chosen.dataset.live === "1"
          ? `WebGL2 unavailable (${webglProblem}): showing the runtime's pre-rendered LUT output.`
          : `Pre-rendered (${chosen.dataset.origin}); strength blends it with the original.`;
      }
      canvas.hidden = !live;
      afterImage.hidden = live;
    }
    function update() {  // coalesce bursts of input events into one frame
      if (!pending) { pending = true; requestAnimationFrame(render); }
    }
    split.addEventListener("input", update);
    strength.addEventListener("input", update);
    radios.forEach((radio) => radio.addEventListener("change", update));
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
    ready: ready.then(() => ({ webgl2: renderer !== null, problem: webglProblem, photos: sections.length })),
    frame: () => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))),
    pixels(index) {
      const canvas = sections[index].querySelector("canvas.live");
      const data = canvas.getContext("2d", { alpha: false }).getImageData(0, 0, canvas.width, canvas.height).data;
      return { width: canvas.width, height: canvas.height, rgba: base64(data) };
    },
  };
})();
