// kerascnn serve: the try-it page. Plain JavaScript, no build step, no
// outside request: everything goes to this server's TF Serving REST API.
//   GET  /ui/models                                  served model names
//   GET  /v1/models/<name>                           versions and states
//   GET  /v1/models/<name>/versions/<v>/metadata     signatures + metadata
//   POST /v1/models/<name>/versions/<v>:predict      predictions
//   POST /v1/models/<name>/versions/<v>:explain      heat maps (optional)
"use strict";

const TOP_K = 5;
const STROKE_PAUSE_MS = 400;
const $ = (id) => document.getElementById(id);
const state = { model: null, version: null, meta: null, requests: 0 };

// === REST calls ===

async function getJson(url, body) {
  const init = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  };
  const response = await fetch(url, init);
  let answer;
  try {
    answer = await response.json();
  } catch (e) {
    throw new Error(`${url}: HTTP ${response.status}, not JSON`);
  }
  if (!response.ok) {
    throw new Error(answer.error || `${url}: HTTP ${response.status}`);
  }
  return answer;
}

function modelUrl(name, version) {
  const base = `/v1/models/${encodeURIComponent(name)}`;
  return version ? `${base}/versions/${version}` : base;
}

async function predict(signatureName, instances) {
  const url = `${modelUrl(state.model, state.version)}:predict`;
  const answer = await getJson(url, {
    signature_name: signatureName,
    instances: instances,
  });
  return answer.predictions[0];
}

// === Errors and busy state ===

function showError(error) {
  const box = $("error");
  box.textContent = error ? String(error.message || error) : "";
  box.hidden = !error;
}

async function guarded(task) {
  document.body.dataset.busy = "true";
  try {
    showError(null);
    await task();
  } catch (e) {
    showError(e);
  } finally {
    state.requests += 1;
    document.body.dataset.requests = String(state.requests);
    document.body.dataset.busy = "false";
  }
}

// === Model list ===

async function loadModels() {
  const list = $("model-list");
  const { models } = await getJson("/ui/models");
  list.textContent = "";
  if (!models.length) {
    list.innerHTML = '<li class="muted">No models served.</li>';
    return;
  }
  for (const name of models) {
    const status = await getJson(modelUrl(name));
    const versions = status.model_version_status
      .map((s) => ({ version: s.version, state: s.state }))
      .sort((a, b) => Number(b.version) - Number(a.version));
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.model = name;
    button.textContent = name;
    const small = document.createElement("span");
    small.className = "versions";
    for (const v of versions) {
      const tag = document.createElement("span");
      tag.className = `state-${v.state}`;
      tag.dataset.version = v.version;
      tag.textContent = `v${v.version} ${v.state.toLowerCase()} `;
      small.appendChild(tag);
    }
    button.appendChild(small);
    const newest = versions.find((v) => v.state === "AVAILABLE");
    button.addEventListener("click", () =>
      guarded(() => selectModel(name, newest ? newest.version : null)));
    item.appendChild(button);
    list.appendChild(item);
  }
  const first = list.querySelector("button");
  if (first) first.click();
}

async function selectModel(name, version) {
  for (const b of document.querySelectorAll("#model-list button")) {
    b.setAttribute("aria-pressed", String(b.dataset.model === name));
  }
  const metadata = await getJson(`${modelUrl(name, version)}/metadata`);
  // "__saved_model_init_op" (TF Serving lists it too) is no signature.
  const signatures = Object.fromEntries(
    Object.entries(metadata.metadata.signature_def.signature_def)
      .filter(([key]) => !key.startsWith("__")));
  state.model = name;
  state.version = metadata.model_spec.version;
  state.meta = await getJson(
    `/ui/models/${encodeURIComponent(name)}/versions/` +
    `${state.version}/kerascnn_metadata`);
  state.signatures = signatures;
  $("model-title").textContent = `${name} v${state.version}`;
  const meta = state.meta;
  const info = [meta.model, meta.dataset && `trained on ${meta.dataset}`,
    meta.class_names && `${meta.class_names.length} classes`,
    `signatures: ${Object.keys(signatures).sort().join(", ")}`];
  $("model-info").textContent = info.filter(Boolean).join(" \u00b7 ");
  $("image-ui").hidden = !("predict_images" in signatures);
  // The drawing pad is for digit models (one grey channel), not photos.
  $("pad-figure").hidden = $("image-ui").hidden ||
    imageInputShape()[2] !== 1;
  $("tagger-ui").hidden = !("predict_sentences" in signatures);
  $("result").hidden = true;
  $("tagged").hidden = true;
  showCurl(name, state.version, signatures);
  if ($("image-ui").hidden && $("tagger-ui").hidden) {
    showError(new Error(
      `${name} has neither a predict_images nor a predict_sentences ` +
      "signature; this page can only try kerascnn's exports."));
  }
}

// An example request for the displayed model, to paste into a shell
// (bash): the JSON body is built by printf in single quotes and piped to
// curl, so no quote needs escaping and a large image fits.
function curlExample(name, version, signatures) {
  const url = `${window.location.origin}${modelUrl(name, version)}:predict`;
  if ("predict_images" in signatures) {
    return "printf '{\"signature_name\": \"predict_images\", " +
      "\"instances\": [{\"b64\": \"%s\"}]}' \"$(base64 -w0 image.jpg)\"" +
      ` | curl -s ${url} --data-binary @-`;
  }
  if ("predict_sentences" in signatures) {
    return `curl -s ${url} -d '{"signature_name": "predict_sentences", ` +
      `"instances": ["flights from boston to denver"]}'`;
  }
  return "";
}

// The same request over the Open Inference Protocol (KServe v2): curl
// with JSON for text, Triton's Python client with binary data for images.
function v2Example(name, version, signatures) {
  const path = `/v2/models/${encodeURIComponent(name)}` +
    (version ? `/versions/${version}` : "");
  if ("predict_sentences" in signatures) {
    return `curl -s ${window.location.origin}${path}/infer -d ` +
      `'{"inputs": [{"name": "sentences", "shape": [1], ` +
      `"datatype": "BYTES", "data": ["flights from boston to denver"]}]}'`;
  }
  if ("predict_images" in signatures) {
    return [
      "import numpy as np",
      "import tritonclient.http as httpclient",
      "",
      "client = httpclient.InferenceServerClient(" +
        `${JSON.stringify(window.location.host)})`,
      'images = httpclient.InferInput("images", [1], "BYTES")',
      'with open("image.jpg", "rb") as f:',
      "    images.set_data_from_numpy(np.array([f.read()], dtype=object))",
      `result = client.infer(${JSON.stringify(name)}, [images], ` +
        `model_version=${JSON.stringify(String(version || ""))})`,
      'print(result.as_numpy("class_names"))',
    ].join("\n");
  }
  return "";
}

function showCurl(name, version, signatures) {
  const example = curlExample(name, version, signatures);
  $("curl-example").textContent = example;
  $("curl").hidden = !example;
  const v2 = v2Example(name, version, signatures);
  $("v2-example").textContent = v2;
  $("v2").hidden = !v2;
}

// === Images: drawing pad, file drop, top-k bars ===

function imageInputShape() {
  const shape = state.meta.input_shape;
  if (shape && shape.length === 3) return shape;
  const info = state.signatures.predict_pixels.inputs.pixels;
  return info.tensor_shape.dim.slice(1).map((d) => Number(d.size));
}

// MNIST's own preprocessing: the ink fitted into a 20x20 box whose
// centre of mass sits at the centre of the 28x28 image.
function drawingAsPng(pad) {
  const [height, width, channels] = imageInputShape();
  const pixels = pad.getContext("2d")
    .getImageData(0, 0, pad.width, pad.height).data;
  let minX = pad.width, minY = pad.height, maxX = -1, maxY = -1;
  let mass = 0, sumX = 0, sumY = 0;
  for (let y = 0; y < pad.height; y++) {
    for (let x = 0; x < pad.width; x++) {
      const v = pixels[(y * pad.width + x) * 4];
      if (!v) continue;
      minX = Math.min(minX, x); maxX = Math.max(maxX, x);
      minY = Math.min(minY, y); maxY = Math.max(maxY, y);
      mass += v; sumX += v * x; sumY += v * y;
    }
  }
  if (maxX < 0) return null;
  const out = document.createElement("canvas");
  out.width = width;
  out.height = height;
  const ctx = out.getContext("2d");
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, width, height);
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  if (channels === 1) {
    const boxW = maxX - minX + 1, boxH = maxY - minY + 1;
    const scale = (Math.min(width, height) * 20 / 28) / Math.max(boxW, boxH);
    const dx = width / 2 - (sumX / mass - minX) * scale;
    const dy = height / 2 - (sumY / mass - minY) * scale;
    ctx.drawImage(pad, minX, minY, boxW, boxH, dx, dy,
      boxW * scale, boxH * scale);
  } else {
    ctx.drawImage(pad, 0, 0, width, height);
  }
  return out.toDataURL("image/png").split(",")[1];
}

async function classify(b64, source) {
  const prediction = await predict("predict_images", [{ b64: b64 }]);
  const probabilities = prediction.probabilities;
  const names = (state.meta.class_names && state.meta.class_names.length)
    ? state.meta.class_names : probabilities.map((_, i) => String(i));
  const ranked = probabilities
    .map((p, i) => ({ name: names[i], p: p }))
    .sort((a, b) => b.p - a.p)
    .slice(0, Math.min(TOP_K, probabilities.length));
  const bars = $("bars");
  bars.textContent = "";
  for (const { name, p } of ranked) {
    const row = document.createElement("li");
    row.dataset.class = name;
    row.innerHTML = '<span class="name"></span><span class="track">' +
      '<span class="fill"></span></span><span class="pct"></span>';
    row.querySelector(".name").textContent = name;
    row.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
    row.querySelector(".pct").textContent = `${(100 * p).toFixed(1)}%`;
    bars.appendChild(row);
  }
  const top = $("top-class");
  top.textContent = String(prediction.class_names);
  top.dataset.class = String(prediction.class_names);
  $("source").textContent = `(${source})`;
  $("result").dataset.source = source;
  $("result").hidden = false;
  state.lastImage = b64;
  await showExplanation();
}

// === Explain: the server's heat map over the model input ===

// Matplotlib's "jet" in five stops, linearly interpolated.
const JET = [[0, 0, 128], [0, 128, 255], [128, 255, 128], [255, 128, 0],
  [128, 0, 0]];

function jet(v) {
  const x = Math.min(Math.max(v, 0), 1) * (JET.length - 1);
  const i = Math.min(Math.floor(x), JET.length - 2);
  const t = x - i;
  return JET[i].map((c, k) => Math.round(c + t * (JET[i + 1][k] - c)));
}

async function showExplanation() {
  const heat = $("heat");
  if (!$("explain").checked || !state.lastImage) {
    heat.hidden = true;
    return;
  }
  const url = `${modelUrl(state.model, state.version)}:explain`;
  // No method: the server's default, Grad-CAM where the SavedModel has
  // its feature_map_gradients signature, else SmoothGrad.
  const answer = await getJson(url, { instances: [{ b64: state.lastImage }] });
  const map = answer.explanations[0].map;
  const [height, width] = [map.length, map[0].length];
  const image = await loadImage(`data:image/png;base64,${state.lastImage}`);
  const small = document.createElement("canvas");
  small.width = width;
  small.height = height;
  const ctx = small.getContext("2d");
  ctx.drawImage(image, 0, 0, width, height);
  const pixels = ctx.getImageData(0, 0, width, height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [r, g, b] = jet(map[y][x]);
      const i = (y * width + x) * 4;
      pixels.data[i] = (pixels.data[i] + r) / 2;
      pixels.data[i + 1] = (pixels.data[i + 1] + g) / 2;
      pixels.data[i + 2] = (pixels.data[i + 2] + b) / 2;
      pixels.data[i + 3] = 255;
    }
  }
  ctx.putImageData(pixels, 0, 0);
  const big = heat.getContext("2d");
  big.imageSmoothingEnabled = false;
  big.drawImage(small, 0, 0, heat.width, heat.height);
  heat.dataset.classIndex = String(answer.explanations[0].class_index);
  heat.dataset.method = answer.method;
  heat.title = `${answer.method} heat map of class ${answer.explanations[0].class_index}`;
  heat.hidden = false;
}

function setUpPad() {
  const pad = $("pad");
  const ctx = pad.getContext("2d");
  const clear = () => {
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, pad.width, pad.height);
  };
  clear();
  let drawing = false;
  let timer = null;
  const point = (e) => {
    const r = pad.getBoundingClientRect();
    return [(e.clientX - r.left) * pad.width / r.width,
      (e.clientY - r.top) * pad.height / r.height];
  };
  pad.addEventListener("pointerdown", (e) => {
    drawing = true;
    clearTimeout(timer);
    pad.setPointerCapture(e.pointerId);
    ctx.strokeStyle = "#fff";
    ctx.fillStyle = "#fff";
    ctx.lineWidth = 16;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    const [x, y] = point(e);
    ctx.beginPath();
    ctx.arc(x, y, ctx.lineWidth / 2, 0, 2 * Math.PI);
    ctx.fill();
    ctx.beginPath();
    ctx.moveTo(x, y);
  });
  pad.addEventListener("pointermove", (e) => {
    if (!drawing) return;
    const [x, y] = point(e);
    ctx.lineTo(x, y);
    ctx.stroke();
  });
  // Predict once the pen has rested for a moment (a digit may take
  // several strokes), not after every stroke.
  const finish = () => {
    if (!drawing) return;
    drawing = false;
    clearTimeout(timer);
    timer = setTimeout(() => {
      const b64 = drawingAsPng(pad);
      if (b64) guarded(() => classify(b64, "drawing"));
    }, STROKE_PAUSE_MS);
  };
  pad.addEventListener("pointerup", finish);
  pad.addEventListener("pointercancel", finish);
  $("clear").addEventListener("click", () => {
    clear();
    $("result").hidden = true;
  });
}

function readFile(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

// Data sets of light strokes on a dark background (as
// kerascnn.data.images.LIGHT_ON_DARK): a photo of a digit drawn dark on
// white paper is inverted before such a model sees it, and the page
// says so (as `kerascnn predict` does).
const LIGHT_ON_DARK = ["mnist", "fashion_mnist", "kmnist", "emnist"];
const LIGHT_BACKGROUND = 128;

function trainedLightOnDark() {
  const name = String(state.meta.dataset || "").toLowerCase()
    .replace(/^tfds:/, "").split("/")[0].split(":")[0];
  return LIGHT_ON_DARK.includes(name);
}

function loadImage(dataUrl) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error("The file is not an image " +
      "this browser can show; try a JPEG or PNG."));
    image.src = dataUrl;
  });
}

// The image inverted as a PNG (base64) when its border is light, else null.
async function invertedIfLight(dataUrl) {
  const image = await loadImage(dataUrl);
  const canvas = document.createElement("canvas");
  canvas.width = image.naturalWidth;
  canvas.height = image.naturalHeight;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";  // transparency over white, as in training
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(image, 0, 0);
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height);
  const px = data.data, w = canvas.width, h = canvas.height;
  let sum = 0, count = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (y && y < h - 1 && x && x < w - 1) continue;
      const i = (y * w + x) * 4;
      sum += (px[i] + px[i + 1] + px[i + 2]) / 3;
      count++;
    }
  }
  if (!count || sum / count < LIGHT_BACKGROUND) return null;
  for (let i = 0; i < px.length; i += 4) {
    px[i] = 255 - px[i]; px[i + 1] = 255 - px[i + 1];
    px[i + 2] = 255 - px[i + 2];
  }
  ctx.putImageData(data, 0, 0);
  return canvas.toDataURL("image/png").split(",")[1];
}

async function classifyFile(file) {
  const dataUrl = await readFile(file);
  const preview = $("preview");
  preview.src = dataUrl;
  preview.hidden = false;
  $("drop-text").hidden = true;
  const inverted = trainedLightOnDark() ? await invertedIfLight(dataUrl)
    : null;
  if (inverted) {
    await classify(inverted, `file ${file.name}; light background ` +
      "inverted: the model was trained on light digits on dark");
    return;
  }
  await classify(dataUrl.split(",")[1], `file ${file.name}`);
}

function setUpDrop() {
  const drop = $("drop");
  const input = $("file");
  input.addEventListener("change", () => {
    if (input.files.length) guarded(() => classifyFile(input.files[0]));
  });
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const file = e.dataTransfer.files[0];
    if (file) guarded(() => classifyFile(file));
  });
}

// === Slot tagger: coloured slots and the intent ===

function slotName(tag) {
  return tag.replace(/^[BI]-/, "");
}

function slotColour(slot) {
  let hash = 0;
  for (const c of slot) hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
  return `hsl(${hash % 360}, 70%, 84%)`;
}

async function tagSentence(text) {
  const prediction = await predict("predict_sentences", [text]);
  const n = Number(prediction.lengths);
  const tokens = $("tokens");
  const legend = $("legend");
  tokens.textContent = "";
  legend.textContent = "";
  const slots = new Set();
  for (let i = 0; i < n; i++) {
    const tag = prediction.tags[i];
    const span = document.createElement("span");
    span.className = "token";
    span.dataset.tag = tag;
    span.innerHTML = '<span class="word"></span><span class="tag"></span>';
    span.querySelector(".word").textContent = prediction.tokens[i];
    span.querySelector(".tag").textContent = tag;
    if (tag !== "O") {
      span.style.background = slotColour(slotName(tag));
      slots.add(slotName(tag));
    }
    tokens.appendChild(span);
  }
  for (const slot of [...slots].sort()) {
    const item = document.createElement("li");
    item.textContent = slot;
    item.style.background = slotColour(slot);
    legend.appendChild(item);
  }
  const intent = $("intent");
  intent.textContent = prediction.intent === undefined
    ? "(no intent head)" : String(prediction.intent);
  $("tagged").hidden = false;
}

function setUpTagger() {
  $("sentence-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("sentence").value.trim() || $("sentence").placeholder;
    guarded(() => tagSentence(text));
  });
}

document.addEventListener("DOMContentLoaded", () => {
  setUpPad();
  setUpDrop();
  setUpTagger();
  $("explain").addEventListener("change", () => guarded(showExplanation));
  guarded(loadModels);
});
