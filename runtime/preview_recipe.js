// styleforge preview: a look recipe (recipe.json) applied live with WebGL2, pass by pass.
// Hand-written, no framework. It mirrors the numpy runtime (styleforge.runtime.recipe, look_ops,
// look_blur) on float32 RGBA textures: every operator is one or more full-screen passes, every blur
// the runtime's pyramid Gaussian (2x2 means while sigma >= 4 px, a separable sampled Gaussian at
// that level with reflect padding, bilinear back up with half-pixel centres). Rows are the array's
// rows (row 0 = the photo's top) in every float texture; only the final pass flips them for the
// canvas. The constants come from the page (written from the Python modules), not from here.
// Needs EXT_color_buffer_float (float render targets); without it the page shows the runtime's output.
"use strict";
const StyleforgeRecipe = (function () {
  const MAX_TAPS = 64;  // blur taps either side x 2 + 1; the pyramid keeps sigma < 4 px, so 25 suffice

  const VERTEX = `#version 300 es
in vec2 position;
void main() { gl_Position = vec4(position, 0.0, 1.0); }`;

  function common(k) {
    return `#version 300 es
precision highp float;
precision highp int;
precision highp sampler2D;
precision highp sampler3D;
out vec4 result;
float luma(vec3 c) { return c.r * ${k.luma[0].toFixed(8)} + c.g * ${k.luma[1].toFixed(8)} + c.b * ${k.luma[2].toFixed(8)}; }
float midtones(float v) { v = clamp(v, 0.0, 1.0); return 4.0 * v * (1.0 - v); }
ivec2 here() { return ivec2(gl_FragCoord.xy); }
vec4 at(sampler2D t) { return texelFetch(t, here(), 0); }
`;
  }

  // One fragment shader per pass; `rgb` is the recipe's running image, unclipped float32.
  function fragments(k) {
    return {
      // the recipe's colour: trilinear in float32 on the clipped input (styleforge.runtime.lut.trilinear)
      colour_lut: `uniform sampler2D rgb; uniform sampler3D lut; uniform int size;
vec3 node(ivec3 i) { return texelFetch(lut, i, 0).rgb; }
void main() {
  vec3 x = clamp(at(rgb).rgb, 0.0, 1.0) * float(size - 1);
  ivec3 b = min(ivec3(x), ivec3(size - 2));
  vec3 f = x - vec3(b);
  vec3 c00 = mix(node(b), node(b + ivec3(1, 0, 0)), f.r);
  vec3 c10 = mix(node(b + ivec3(0, 1, 0)), node(b + ivec3(1, 1, 0)), f.r);
  vec3 c01 = mix(node(b + ivec3(0, 0, 1)), node(b + ivec3(1, 0, 1)), f.r);
  vec3 c11 = mix(node(b + ivec3(0, 1, 1)), node(b + ivec3(1, 1, 1)), f.r);
  result = vec4(mix(mix(c00, c10, f.g), mix(c01, c11, f.g), f.b), 1.0);
}`,
      // luma and its square (smooth_skin's moments; the others read .r)
      luma: `uniform sampler2D rgb;
void main() { float l = luma(at(rgb).rgb); result = vec4(l, l * l, 0.0, 0.0); }`,
      // bloom's highlights: clip(x) * sigmoid((L - threshold) / knee)
      bright: `uniform sampler2D rgb; uniform float threshold;
void main() {
  vec3 c = at(rgb).rgb;
  float l = clamp(luma(c), 0.0, 1.0);
  float gate = 1.0 / (1.0 + exp(-(l - threshold) / ${k.bloom_knee.toFixed(8)}));
  result = vec4(clamp(c, 0.0, 1.0) * gate, 0.0);
}`,
      // look_blur.downsample2: the 2x2 mean, the last row/column repeated when odd
      down: `uniform sampler2D src;
void main() {
  ivec2 n = textureSize(src, 0) - 1;
  ivec2 p = here() * 2;
  result = (texelFetch(src, min(p, n), 0) + texelFetch(src, min(p + ivec2(0, 1), n), 0)
            + texelFetch(src, min(p + ivec2(1, 0), n), 0) + texelFetch(src, min(p + ivec2(1, 1), n), 0)) * 0.25;
}`,
      copy: `uniform sampler2D src;
void main() { result = at(src); }`,
      // look_blur._blur_axis: sampled Gaussian taps, numpy's "reflect" padding (edge not repeated)
      blur: `uniform sampler2D src; uniform int horizontal; uniform int radius; uniform float taps[${MAX_TAPS}];
void main() {
  ivec2 p = here();
  ivec2 size = textureSize(src, 0);
  int n = (horizontal == 1 ? size.x : size.y) - 1;
  int i = horizontal == 1 ? p.x : p.y;
  vec4 sum = vec4(0.0);
  for (int k = -radius; k <= radius; k++) {
    int j = i + k;
    j = j < 0 ? -j : (j > n ? 2 * n - j : j);
    sum += taps[k + radius] * texelFetch(src, horizontal == 1 ? ivec2(j, p.y) : ivec2(p.x, j), 0);
  }
  result = sum;
}`,
      // look_blur.bilinear_resize back to full size: source = scale * (j + 0.5) - 0.5, clamped at 0
      up: `uniform sampler2D src; uniform float scale;
void main() {
  ivec2 n = textureSize(src, 0) - 1;
  vec2 s = max(scale * gl_FragCoord.xy - 0.5, 0.0);
  ivec2 i0 = min(ivec2(s), n);
  ivec2 i1 = min(i0 + 1, n);
  vec2 t = s - vec2(i0);
  vec4 left = texelFetch(src, i0, 0) * (1.0 - t.y) + texelFetch(src, ivec2(i0.x, i1.y), 0) * t.y;
  vec4 right = texelFetch(src, ivec2(i1.x, i0.y), 0) * (1.0 - t.y) + texelFetch(src, i1, 0) * t.y;
  result = left * (1.0 - t.x) + right * t.x;
}`,
      clarity: `uniform sampler2D rgb; uniform sampler2D base; uniform float amount;
void main() {
  vec3 c = at(rgb).rgb;
  float b = at(base).r;
  result = vec4(c + amount * midtones(b) * (luma(c) - b), 0.0);
}`,
      detail: `uniform sampler2D rgb; uniform sampler2D b0; uniform sampler2D b1; uniform sampler2D b2;
uniform float fine; uniform float medium; uniform float coarse;
void main() {
  vec3 c = at(rgb).rgb;
  float l = luma(c), s0 = at(b0).r, s1 = at(b1).r, s2 = at(b2).r;
  result = vec4(c + (fine * (l - s0) + medium * (s0 - s1) + coarse * (s1 - s2)), 0.0);
}`,
      // smooth_skin's fast guided filter, on the blur's level: r = eps / (var + eps) and m r from the
      // blurred moments (look_ops.guided_terms)
      guide: `uniform sampler2D moments; uniform float eps;
void main() {
  vec2 m = at(moments).rg;
  float v = max(m.g - m.r * m.r, 0.0);
  float r = eps / (v + eps);
  result = vec4(r, m.r * r, 0.0, 0.0);
}`,
      // ... then, the pair blurred again and upsampled to full size: L' = L + amount (B - R L)
      smooth_skin: `uniform sampler2D rgb; uniform sampler2D fields; uniform float amount;
void main() {
  vec3 c = at(rgb).rgb;
  vec2 rb = at(fields).rg;
  result = vec4(c + amount * (rb.g - rb.r * luma(c)), 0.0);
}`,
      sharpen: `uniform sampler2D rgb; uniform sampler2D base; uniform float amount;
void main() { vec3 c = at(rgb).rgb; result = vec4(c + amount * (luma(c) - at(base).r), 0.0); }`,
      // look_ops.vignette_mask; the superellipse norm is scaled by its larger term (same value, no pow(0, .))
      vignette: `uniform sampler2D rgb; uniform vec2 extent; uniform vec2 centre; uniform vec2 axes;
uniform float power; uniform float midpoint; uniform float edge; uniform float amount;
void main() {
  vec3 c = at(rgb).rgb;
  vec2 uv = gl_FragCoord.xy / extent;
  vec2 a = max(abs((uv - centre) * extent) / axes, vec2(1e-6));
  float m = max(a.x, a.y);
  float d = m * pow(pow(a.x / m, power) + pow(a.y / m, power), 1.0 / power) * pow(2.0, 0.5 - 1.0 / power);
  float s = clamp((d - midpoint) / edge + 0.5, 0.0, 1.0);
  float w = s * s * (3.0 - 2.0 * s);
  result = vec4(c * (1.0 + min(amount, 0.0) * w) + max(amount, 0.0) * w * (1.0 - c), 0.0);
}`,
      bloom: `uniform sampler2D rgb; uniform sampler2D glow; uniform float strength; uniform vec3 tint;
void main() { vec3 c = at(rgb).rgb; result = vec4(c + strength * (at(glow).rgb * tint) * (1.0 - c), 0.0); }`,
      fade: `uniform sampler2D rgb; uniform vec3 tint; uniform float amount;
void main() { vec3 c = at(rgb).rgb; result = vec4(c + amount * tint * (1.0 - c), 0.0); }`,
      // the grain field is the runtime's own (per photo, normalised), embedded as 8 bits: (q - 128) / 32
      grain: `uniform sampler2D rgb; uniform sampler2D field; uniform float amount; uniform float dependence;
void main() {
  vec3 c = at(rgb).rgb;
  float f = (texelFetch(field, here(), 0).r * 255.0 - ${k.grain_offset.toFixed(1)}) / ${k.grain_scale.toFixed(1)};
  float amplitude = amount * ((1.0 - dependence) + dependence * midtones(luma(c)));
  result = vec4(c + amplitude * f, 0.0);
}`,
      // the recipe clips once at the end, then strength blends with the photo; flipped for the canvas
      final: `uniform sampler2D photo; uniform sampler2D styled; uniform float strength;
void main() {
  ivec2 p = here();
  ivec2 q = ivec2(p.x, textureSize(photo, 0).y - 1 - p.y);
  vec3 x = texelFetch(photo, q, 0).rgb;
  vec3 y = clamp(texelFetch(styled, q, 0).rgb, 0.0, 1.0);
  result = vec4(clamp(x + strength * (y - x), 0.0, 1.0), 1.0);
}`,
    };
  }

  // ---------------------------------------------------------------- the blur's schedule (look_blur.py)

  function pyramidLevel(k, sigmaPx, height, width) {
    let level = 0, h = height, w = width;
    while (sigmaPx / 2 ** level >= k.level_sigma && Math.min((h + 1) >> 1, (w + 1) >> 1) >= k.min_level_side) {
      level += 1; h = (h + 1) >> 1; w = (w + 1) >> 1;
    }
    return level;
  }

  function levelSigma(k, sigmaPx, level) {
    return level === 0 ? sigmaPx : Math.sqrt(sigmaPx ** 2 / 4 ** level - k.level_variance);
  }

  function kernelRadius(k, sigma, size) {
    return Math.min(Math.max(1, Math.ceil(k.truncate * sigma)), size - 1);
  }

  function gaussianKernel(k, sigma, radius) {  // float32 taps; sub-pixel sigmas get their variance back
    const taps = new Float32Array(2 * radius + 1);
    const s = Math.fround(Math.max(sigma, k.min_sigma_px));
    let total = 0;
    for (let i = -radius; i <= radius; i++) total += (taps[i + radius] = Math.exp(-(i * i) / (2 * s * s)));
    for (let i = 0; i < taps.length; i++) taps[i] /= total;
    if (sigma < k.match_variance_below && radius >= 1) {
      let variance = 0;
      for (let i = -radius; i <= radius; i++) variance += i * i * taps[i + radius];
      const shortfall = Math.max(s * s - variance, 0);
      taps[radius] -= shortfall;
      taps[radius - 1] += shortfall / 2;
      taps[radius + 1] += shortfall / 2;
    }
    return taps;
  }

  // ---------------------------------------------------------------- the renderer

  class RecipeRenderer {
    // gl: the page's WebGL2 context; data: the page's recipe block (steps, tables, constants).
    constructor(gl, data) {
      if (!gl.getExtension("EXT_color_buffer_float")) throw new Error("this GPU cannot render to float textures (EXT_color_buffer_float)");
      this.gl = gl;
      this.k = data.constants;
      this.programs = {};
      const sources = fragments(this.k);
      for (const name of Object.keys(sources)) this.programs[name] = this.compile(common(this.k) + sources[name]);
      this.tables = {};
      for (const [name, lut] of Object.entries(data.tables)) {
        const bytes = Uint8Array.from(atob(lut.rgb_f32), (ch) => ch.charCodeAt(0));
        const rows = new Float32Array(bytes.buffer);  // red fastest: x = r, y = g, z = b
        if (rows.length !== lut.size ** 3 * 3) throw new Error(`the embedded table ${name} has the wrong length`);
        const texture = this.texture(gl.TEXTURE_3D);
        gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
        gl.texImage3D(gl.TEXTURE_3D, 0, gl.RGB32F, lut.size, lut.size, lut.size, 0, gl.RGB, gl.FLOAT, rows);
        this.tables[name] = { texture, size: lut.size };
      }
      this.free = new Map();  // "WxH" -> float render targets not in use
      this.fields = new Map();  // grain fields: "photo/step" -> texture
      this.passes = 0;
      this.photo = null;  // the photo whose targets the pool holds
    }

    compile(fragment) {
      const gl = this.gl;
      const program = gl.createProgram();
      for (const [kind, source] of [[gl.VERTEX_SHADER, VERTEX], [gl.FRAGMENT_SHADER, fragment]]) {
        const shader = gl.createShader(kind);
        gl.shaderSource(shader, source);
        gl.compileShader(shader);
        if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(shader));
        gl.attachShader(program, shader);
      }
      gl.bindAttribLocation(program, 0, "position");
      gl.linkProgram(program);
      if (!gl.getProgramParameter(program, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(program));
      return { program, where: {} };
    }

    texture(target) {
      const gl = this.gl;
      const texture = gl.createTexture();
      gl.bindTexture(target, texture);
      for (const p of [gl.TEXTURE_MIN_FILTER, gl.TEXTURE_MAG_FILTER]) gl.texParameteri(target, p, gl.NEAREST);
      for (const p of [gl.TEXTURE_WRAP_S, gl.TEXTURE_WRAP_T, gl.TEXTURE_WRAP_R]) gl.texParameteri(target, p, gl.CLAMP_TO_EDGE);
      return texture;
    }

    // A float32 RGBA render target of w x h (from the pool when one is free).
    acquire(w, h) {
      const key = `${w}x${h}`;
      const pool = this.free.get(key);
      if (pool && pool.length) return pool.pop();
      const gl = this.gl;
      const texture = this.texture(gl.TEXTURE_2D);
      gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA32F, w, h, 0, gl.RGBA, gl.FLOAT, null);
      const framebuffer = gl.createFramebuffer();
      gl.bindFramebuffer(gl.FRAMEBUFFER, framebuffer);
      gl.framebufferTexture2D(gl.FRAMEBUFFER, gl.COLOR_ATTACHMENT0, gl.TEXTURE_2D, texture, 0);
      if (gl.checkFramebufferStatus(gl.FRAMEBUFFER) !== gl.FRAMEBUFFER_COMPLETE) throw new Error("cannot render to a float texture");
      return { texture, framebuffer, w, h, key };
    }

    release(target) {
      if (!target || !target.key) return;  // the photo itself is not pooled
      if (!this.free.has(target.key)) this.free.set(target.key, []);
      this.free.get(target.key).push(target);
    }

    // Draw program `name` into `target` (null: the canvas) reading `inputs` {uniform: target or texture}.
    run(name, target, inputs, set) {
      const gl = this.gl;
      const p = this.programs[name];
      gl.useProgram(p.program);
      gl.bindFramebuffer(gl.FRAMEBUFFER, target ? target.framebuffer : null);
      gl.viewport(0, 0, target ? target.w : gl.canvas.width, target ? target.h : gl.canvas.height);
      const where = (uniform) => (uniform in p.where ? p.where[uniform] : (p.where[uniform] = gl.getUniformLocation(p.program, uniform)));
      let unit = 0;
      for (const [uniform, input] of Object.entries(inputs)) {
        gl.activeTexture(gl.TEXTURE0 + unit);
        if (input.lut) gl.bindTexture(gl.TEXTURE_3D, input.lut);
        else gl.bindTexture(gl.TEXTURE_2D, input.texture || input);
        gl.uniform1i(where(uniform), unit++);
      }
      if (set) set({
        f: (u, v) => gl.uniform1f(where(u), v),
        i: (u, v) => gl.uniform1i(where(u), v),
        v2: (u, x, y) => gl.uniform2f(where(u), x, y),
        v3: (u, x, y, z) => gl.uniform3f(where(u), x, y, z),
        taps: (u, taps) => gl.uniform1fv(where(u), taps),
      });
      gl.drawArrays(gl.TRIANGLES, 0, 3);
      this.passes += 1;
    }

    // look_blur.gaussian_blur of `source` (w x h, all four channels) by sigma `fraction` of the short side.
    blur(source, w, h, fraction) {
      const { small, level } = this.blurToLevel(source, w, h, fraction);
      return this.upsample(small, level, w, h, source);
    }

    // look_blur.blur_to_level: 2x2 means down to the blur's level and the Gaussian there ->
    // {small (a pooled target, or `source` itself when nothing ran), level, sigma (px of the level)}.
    blurToLevel(source, w, h, fraction) {
      const k = this.k;
      const sigmaPx = fraction * Math.min(w, h);
      const level = pyramidLevel(k, sigmaPx, h, w);
      let current = source;
      for (let l = 0; l < level; l++) {
        const next = this.acquire((current.w + 1) >> 1, (current.h + 1) >> 1);
        this.run("down", next, { src: current });
        if (current !== source) this.release(current);
        current = next;
      }
      const sigma = levelSigma(k, sigmaPx, level);
      return { small: this.blurSeparable(current, sigma, source), level, sigma };
    }

    // look_blur.blur_separable: the Gaussian of `sigma` px of `current`'s own grid, rows then
    // columns; `current` is released unless it is `keep`.
    blurSeparable(current, sigma, keep) {
      const k = this.k;
      for (const horizontal of [0, 1]) {  // rows first (numpy's axis 0), then columns
        const size = horizontal ? current.w : current.h;
        const radius = kernelRadius(k, sigma, size);
        if (radius <= 0) continue;
        if (2 * radius + 1 > MAX_TAPS) throw new Error(`a blur of ${sigma.toFixed(1)} px needs more than ${MAX_TAPS} taps`);
        const taps = new Float32Array(MAX_TAPS);
        taps.set(gaussianKernel(k, sigma, radius));
        const next = this.acquire(current.w, current.h);
        this.run("blur", next, { src: current }, (u) => { u.i("horizontal", horizontal); u.i("radius", radius); u.taps("taps", taps); });
        if (current !== keep) this.release(current);
        current = next;
      }
      return current;
    }

    // look_blur.upsample_from_level: `small` bilinearly up to w x h (half-pixel centres), released;
    // a new target either way (`small` may be `source`, which is not ours).
    upsample(small, level, w, h, source) {
      if (level === 0) return small === source ? this.copy(source) : small;
      const full = this.acquire(w, h);
      this.run("up", full, { src: small }, (u) => u.f("scale", 1 / 2 ** level));
      if (small !== source) this.release(small);
      return full;
    }

    copy(source) {
      const out = this.acquire(source.w, source.h);
      this.run("copy", out, { src: source });  // a 1 x 1 photo: nothing to blur
      return out;
    }

    // The grain field of step `step` for photo `photo` (its embedded bytes), uploaded once.
    field(photo, step, fields) {
      const key = `${photo}/${step}`;
      if (!this.fields.has(key)) {
        const gl = this.gl;
        const entry = fields[String(step)];
        if (!entry) throw new Error(`no grain field for step ${step + 1}`);
        const bytes = Uint8Array.from(atob(entry.field_u8), (ch) => ch.charCodeAt(0));
        if (bytes.length !== entry.width * entry.height) throw new Error("the embedded grain field has the wrong length");
        const texture = this.texture(gl.TEXTURE_2D);
        gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
        gl.texImage2D(gl.TEXTURE_2D, 0, gl.R8, entry.width, entry.height, 0, gl.RED, gl.UNSIGNED_BYTE, bytes);
        this.fields.set(key, texture);
      }
      return this.fields.get(key);
    }

    // One step on `rgb` (w x h); returns the new running image.
    step(index, step, rgb, w, h, photo, fields) {
      const out = this.acquire(w, h);
      const op = step.op;
      const temporaries = [];
      const blurred = (source, fraction) => { const b = this.blur(source, w, h, fraction); temporaries.push(b); return b; };
      const lumaOf = () => { const l = this.acquire(w, h); this.run("luma", l, { rgb }); temporaries.push(l); return l; };
      if (op === "colour_lut") {
        const table = this.tables[step.lut];
        this.run("colour_lut", out, { rgb, lut: { lut: table.texture } }, (u) => u.i("size", table.size));
      } else if (op === "clarity" || op === "sharpen") {
        const base = blurred(lumaOf(), step.radius);
        this.run(op, out, { rgb, base }, (u) => u.f("amount", step.amount));
      } else if (op === "detail") {
        const l = lumaOf();
        const [b0, b1, b2] = this.k.detail_bands.map((sigma) => blurred(l, sigma));
        this.run("detail", out, { rgb, b0, b1, b2 }, (u) => { u.f("fine", step.fine); u.f("medium", step.medium); u.f("coarse", step.coarse); });
      } else if (op === "smooth_skin") {  // the statistics stay on the blur's level; one upsampling
        const l = lumaOf();
        const { small: moments, level, sigma } = this.blurToLevel(l, w, h, step.radius);
        const pair = this.acquire(moments.w, moments.h);
        this.run("guide", pair, { moments }, (u) => u.f("eps", Math.fround(step.edge) * Math.fround(step.edge)));
        if (moments !== l) this.release(moments);
        const fields = this.upsample(this.blurSeparable(pair, sigma, null), level, w, h, null);
        temporaries.push(fields);
        this.run("smooth_skin", out, { rgb, fields }, (u) => u.f("amount", step.amount));
      } else if (op === "vignette") {
        const circle = 0.5 * Math.sqrt(w * w + h * h);
        const round = Math.max(step.roundness, 0);
        this.run("vignette", out, { rgb }, (u) => {
          u.v2("extent", w, h);
          u.v2("centre", step.center_x, step.center_y);
          u.v2("axes", (1 - round) * w / Math.SQRT2 + round * circle, (1 - round) * h / Math.SQRT2 + round * circle);
          u.f("power", 2 + 6 * Math.max(-step.roundness, 0));
          u.f("midpoint", step.midpoint);
          u.f("edge", 0.02 + 0.98 * step.feather);
          u.f("amount", step.amount);
        });
      } else if (op === "bloom") {
        const bright = this.acquire(w, h);
        temporaries.push(bright);
        this.run("bright", bright, { rgb }, (u) => u.f("threshold", step.threshold));
        const glow = blurred(bright, step.radius);
        // the tint is optional in a recipe (look_ops.OPTIONAL): untinted, (1, 1, 1)
        this.run("bloom", out, { rgb, glow }, (u) => {
          u.f("strength", step.strength);
          u.v3("tint", step.r ?? 1, step.g ?? 1, step.b ?? 1);
        });
      } else if (op === "fade") {
        this.run("fade", out, { rgb }, (u) => { u.v3("tint", step.r, step.g, step.b); u.f("amount", step.amount); });
      } else if (op === "grain") {
        const field = this.field(photo, index, fields);
        this.run("grain", out, { rgb, field }, (u) => { u.f("amount", step.amount); u.f("dependence", step.luma_dependence); });
      } else {
        throw new Error(`this page cannot run the operator ${op}`);
      }
      temporaries.forEach((t) => this.release(t));
      return out;
    }

    // The recipe `steps` (the page's edited copy) on `photoTexture` (w x h, photo number `photo`),
    // blended by `strength`, drawn onto the current canvas (sized w x h by the caller).
    draw(steps, photoTexture, w, h, photo, fields, strength) {
      const gl = this.gl;
      if (this.photo !== photo) this.flush();  // GPU memory holds one photo's targets at a time
      this.photo = photo;
      this.passes = 0;
      const source = { texture: photoTexture, w, h };
      let rgb = source;
      steps.forEach((step, index) => {
        const next = this.step(index, step, rgb, w, h, photo, fields);
        if (rgb !== source) this.release(rgb);
        rgb = next;
      });
      this.run("final", null, { photo: photoTexture, styled: rgb }, (u) => u.f("strength", strength));
      if (rgb !== source) this.release(rgb);
      const error = gl.getError();  // out of GPU memory draws nothing and throws nothing: ask
      if (error !== gl.NO_ERROR) throw new Error(`WebGL error 0x${error.toString(16)} (out of GPU memory?)`);
      return this.passes;
    }

    // Free every render target and grain field (another photo is coming).
    flush() {
      const gl = this.gl;
      for (const pool of this.free.values()) {
        for (const target of pool) { gl.deleteFramebuffer(target.framebuffer); gl.deleteTexture(target.texture); }
      }
      this.free.clear();
      for (const texture of this.fields.values()) gl.deleteTexture(texture);
      this.fields.clear();
    }
  }

  return { RecipeRenderer };
})();
