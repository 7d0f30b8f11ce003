// fewcolor's page: no framework, no CDN. The options form is generated from the model's
// InferenceOption declarations (/api/models), so a new method option appears here without edits.
"use strict";

const $ = (id) => document.getElementById(id);
let models = [];
let limits = {};
const cards = []; // {name, chosen: result URL, results: [URLs]}

function currentModel() {
  return models.find((m) => m.id === $("model").value);
}

async function loadModels(select) {
  const reply = await fetch("/api/models");
  const data = await reply.json();
  models = data.models;
  limits = data.limits;
  const box = $("model");
  box.innerHTML = "";
  for (const m of models) {
    const opt = document.createElement("option");
    opt.value = m.id;
    opt.textContent = `${m.label} (${m.method})`;
    box.appendChild(opt);
  }
  if (select) box.value = select;
  showModel();
}

function optionInput(opt) {
  const label = document.createElement("label");
  label.className = "option";
  const title = opt.sweep ? `${opt.name}` : opt.name;
  label.append(title + " ");
  let input;
  if (opt.kind === "image-l" || opt.kind === "image-rgb") {
    input = document.createElement("input");
    input.type = "file";
    input.accept = "image/*";
  } else if (opt.choices) {
    input = document.createElement("select");
    for (const c of ["", ...opt.choices]) {
      const o = document.createElement("option");
      o.value = c;
      o.textContent = c || "(default)";
      input.appendChild(o);
    }
  } else if (opt.kind === "bool") {
    input = document.createElement("select");
    for (const [v, t] of [["", "(default)"], ["true", "yes"], ["false", "no"]]) {
      const o = document.createElement("option");
      o.value = v;
      o.textContent = t;
      input.appendChild(o);
    }
  } else {
    input = document.createElement("input");
    input.type = opt.kind === "str" ? "text" : "number";
    if (opt.kind === "float") input.step = "any";
    if (opt.minimum !== null) input.min = opt.minimum;
    if (opt.maximum !== null) input.max = opt.maximum;
    if (opt.default !== null) input.placeholder = String(opt.default);
  }
  input.dataset.option = opt.name;
  input.id = `opt-${opt.name}`;
  label.appendChild(input);
  const hint = document.createElement("span");
  hint.className = "hint";
  hint.textContent = opt.help + (opt.default !== null ? ` (default ${opt.default})` : "");
  label.appendChild(hint);
  return label;
}

function showModel() {
  const m = currentModel();
  const box = $("options");
  box.innerHTML = "";
  if (!m) return;
  $("model-summary").textContent = m.summary;
  for (const opt of m.options) {
    if (opt.sweep) {
      const sweep = optionInput({
        name: opt.sweep, kind: "int", minimum: 1, maximum: limits.max_variants, default: null, choices: null,
        help: `show K colourings with ${opt.name} = 1 … K and pick one`,
      });
      box.appendChild(sweep);
    }
    box.appendChild(optionInput(opt));
  }
  if (!m.options.length) box.textContent = "This model's method takes no options.";
}

function appendOptions(form) {
  for (const input of $("options").querySelectorAll("[data-option]")) {
    const name = input.dataset.option;
    if (input.type === "file") {
      if (input.files.length) form.append(`opt.${name}`, input.files[0]);
    } else if (input.value !== "") {
      form.append(`opt.${name}`, input.value);
    }
  }
}

async function errorText(reply) {
  try {
    return (await reply.json()).error || reply.statusText;
  } catch (e) {
    return `${reply.status} ${reply.statusText}`;
  }
}

function outputName(name) {
  return name.replace(/\.[^.]*$/, "") + "_color.png";
}

function choose(card, index) {
  const url = card.results[index];
  card.chosen = url;
  card.el.querySelector("img.after").src = url;
  const link = card.el.querySelector("a.download");
  link.href = url;
  link.download = outputName(card.name);
  card.el.querySelector(".variant-label").textContent = card.results.length > 1 ? `(variant ${index + 1})` : "";
  card.el.querySelectorAll(".variants button").forEach((b, i) => b.classList.toggle("chosen", i === index));
}

// The grey image the model colours: each pixel's CIE L (D65) shown as the grey of the same L, i.e. the
// sRGB encoding of its relative luminance Y. Computed here on a canvas (nothing is sent for it); shown only
// for an upload that has colour (for a grey one it is the input itself).
const TO_LINEAR = Float64Array.from({length: 256}, (_, i) => {
  const c = i / 255;
  return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
});
const Y_STEPS = 65535;
const TO_SRGB = Uint8ClampedArray.from({length: Y_STEPS + 1}, (_, i) => {
  const y = i / Y_STEPS;
  return Math.round(255 * (y <= 0.0031308 ? 12.92 * y : 1.055 * y ** (1 / 2.4) - 0.055));
});

async function greyInput(url) {
  const img = new Image();
  img.src = url;
  await img.decode();
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height);
  const px = data.data;
  let colour = false;
  for (let i = 0; i < px.length; i += 4) {
    const r = px[i], g = px[i + 1], b = px[i + 2];
    if (Math.max(r, g, b) - Math.min(r, g, b) > 1) colour = true;
    const y = 0.2126729 * TO_LINEAR[r] + 0.7151522 * TO_LINEAR[g] + 0.072175 * TO_LINEAR[b];
    px[i] = px[i + 1] = px[i + 2] = TO_SRGB[Math.round(Math.min(1, y) * Y_STEPS)];
  }
  if (!colour) return null;
  ctx.putImageData(data, 0, 0);
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
  return blob ? URL.createObjectURL(blob) : null;
}

async function showGreyInput(el, url) {
  try {
    const grey = await greyInput(url);
    if (!grey) return;
    el.querySelector("img.grey").src = grey;
    el.querySelector(".grey-figure").hidden = false;
  } catch (e) {
    // an image the browser cannot decode: the server's reply says why
  }
}

async function colorizeOne(file) {
  const el = $("card-template").content.firstElementChild.cloneNode(true);
  const card = {name: file.name, el, results: [], chosen: null};
  el.querySelector(".name").textContent = file.name;
  const local = URL.createObjectURL(file);
  el.querySelector("img.input").src = local;
  el.querySelector("img.before").src = local;
  showGreyInput(el, local); // not awaited: the upload does not wait for it
  const slider = el.querySelector(".slider");
  slider.addEventListener("input", () => {
    el.querySelector("img.before").style.clipPath = `inset(0 ${100 - slider.value}% 0 0)`;
  });
  $("results").prepend(el);
  if (file.size > limits.max_upload_bytes) {
    el.querySelector(".error").textContent = `too large: ${(file.size / 2 ** 20).toFixed(1)} MiB (limit ${(limits.max_upload_bytes / 2 ** 20).toFixed(1)} MiB)`;
    return;
  }
  const form = new FormData();
  form.append("model", $("model").value);
  form.append("image", file);
  appendOptions(form);
  let reply;
  for (;;) {
    reply = await fetch("/api/colorize", {method: "POST", body: form});
    if (reply.status !== 429) break;
    await new Promise((r) => setTimeout(r, 1500)); // busy: wait for a place in the queue
  }
  if (!reply.ok) {
    el.querySelector(".error").textContent = await errorText(reply);
    return;
  }
  card.results = (await reply.json()).results;
  const strip = el.querySelector(".variants");
  if (card.results.length > 1) {
    card.results.forEach((url, i) => {
      const b = document.createElement("button");
      b.type = "button";
      b.title = `variant ${i + 1}`;
      b.className = "variant";
      b.dataset.variant = String(i + 1);
      const img = document.createElement("img");
      img.src = url;
      img.alt = `variant ${i + 1}`;
      b.appendChild(img);
      b.addEventListener("click", () => choose(card, i));
      strip.appendChild(b);
    });
  }
  choose(card, 0);
  cards.push(card);
  $("zip").disabled = false;
}

async function colorizeAll() {
  const files = [...$("images").files];
  if (!files.length) {
    $("run-status").textContent = "choose images first";
    return;
  }
  $("run").disabled = true;
  let done = 0;
  for (const file of files) {
    $("run-status").textContent = `colorizing ${done + 1} of ${files.length}…`;
    try {
      await colorizeOne(file);
    } catch (e) {
      $("run-status").textContent = `failed: ${e}`;
    }
    done += 1;
  }
  $("run-status").textContent = `done: ${files.length} image(s)`;
  $("run").disabled = false;
}

async function downloadZip() {
  const items = cards.filter((c) => c.chosen).map((c) => ({id: c.chosen.split("/").pop(), name: outputName(c.name)}));
  const reply = await fetch("/api/zip", {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({items}),
  });
  if (!reply.ok) {
    $("run-status").textContent = await errorText(reply);
    return;
  }
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await reply.blob());
  link.download = "fewcolor.zip";
  document.body.appendChild(link);
  link.click();
  link.remove();
}

async function adaptModel() {
  const files = [...$("support").files];
  if (!files.length) {
    $("adapt-status").textContent = "choose 1–10 colour images first";
    return;
  }
  const form = new FormData();
  form.append("model", $("model").value);
  form.append("steps", $("adapt-steps").value);
  for (const f of files) form.append("support", f);
  $("adapt").disabled = true;
  $("adapt-status").textContent = "adapting… (this trains on your images)";
  const reply = await fetch("/api/adapt", {method: "POST", body: form});
  $("adapt").disabled = false;
  if (!reply.ok) {
    $("adapt-status").textContent = await errorText(reply);
    return;
  }
  const data = await reply.json();
  const model = data.model;
  const skipped = (data.skipped || []).map((s) => `${s.name} (${s.reason})`);
  $("adapt-status").textContent = `ready: ${model.label}` +
    (skipped.length ? `; left out ${skipped.length}: ${skipped.join("; ")}` : "");
  await loadModels(model.id);
}

function setupDrop() {
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    $("images").files = e.dataTransfer.files;
  });
}

$("model").addEventListener("change", showModel);
$("run").addEventListener("click", colorizeAll);
$("zip").addEventListener("click", downloadZip);
$("adapt").addEventListener("click", adaptModel);
setupDrop();
loadModels();
