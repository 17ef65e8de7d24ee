// The recognition page: pick or take a photo, send it to POST recognize, show the answer.
// No framework and no network access beyond this service, so it works offline on a museum's LAN.
"use strict";

const MAX_SIDE = 1280;        // photos are shrunk in the browser before upload (phone photos are large)
const $ = (id) => document.getElementById(id);

function show(id, visible) { $(id).hidden = !visible; }

function setStatus(text, isError) {
  const box = $("status");
  box.textContent = text;
  box.className = "card" + (isError ? " error" : "");
  show("status", Boolean(text));
}

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

function percent(x) { return (100 * x).toFixed(1) + "%"; }

// Shrink the photo to MAX_SIDE on its longer side (orientation from EXIF applied by the browser).
async function shrink(file) {
  try {
    const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
    const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
    if (scale === 1 && file.size < 2 * 1024 * 1024) { bitmap.close(); return file; }
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(bitmap.width * scale));
    canvas.height = Math.max(1, Math.round(bitmap.height * scale));
    canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    bitmap.close();
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.9));
    return blob || file;
  } catch (err) {
    return file;  // the browser cannot decode it: let the server give the reason
  }
}

function artworkFacts(a) {
  const dl = el("dl");
  for (const [name, value] of [["Artist", a.artist], ["Date", a.date], ["Department", a.department]]) {
    if (value) { dl.append(el("dt", {}, name), el("dd", {}, value)); }
  }
  if (a.url) {
    const dd = el("dd");
    const link = el("a", { href: a.url, target: "_blank", rel: "noopener" }, "more about it");
    dd.append(link);
    dl.append(el("dt", {}, "Link"), dd);
  }
  return dl;
}

// The decision's confidence as a bar, with a tick at the acceptance threshold. The confidence is
// the share of the bundle's validation photos answered with about this score that were right
// (the softmax, result.softmax, only when the bundle's threshold was given instead of calibrated).
function confidenceBar(result) {
  const bar = el("div", { class: "bar confidence", role: "meter", "aria-valuemin": "0", "aria-valuemax": "1",
    "aria-valuenow": result.confidence.toFixed(4), title: "confidence: share of validation photos answered this surely that were right " +
      "(tick: acceptance threshold)" });
  const fill = el("span");
  fill.style.width = percent(Math.max(0, Math.min(1, result.confidence)));
  const tick = el("i", { class: "threshold" });
  tick.style.left = percent(Math.max(0, Math.min(1, result.threshold)));
  bar.append(fill, tick);
  return bar;
}

// The photo's predicted attributes as tags, highest score first ("attributes" is absent when the
// bundle has no attributes run: the box stays hidden).
function renderAttributes(result) {
  const list = $("attributes");
  list.replaceChildren();
  const tags = (result.attributes || []).filter((t) => t.predicted);
  for (const t of tags) {
    const li = el("li", { class: "tag", title: (t.group ? t.group + ": " : "") + t.name + ", score " + t.score.toFixed(2) });
    if (t.group) li.append(el("span", { class: "group" }, t.group));
    li.append(el("span", { class: "name" }, t.name));
    list.append(li);
  }
  show("attributes-box", tags.length > 0);
}

function render(result) {
  const verdict = $("verdict");
  verdict.replaceChildren();
  const best = result.prediction;
  if (result.accepted) {
    verdict.className = "card accepted";
    verdict.append(el("div", { class: "label" }, "Recognised"), el("h3", { id: "answer-title" }, best.title),
      el("div", { class: "meta" }, "confidence " + percent(result.confidence)), confidenceBar(result),
      artworkFacts(best));
    // with re-ranking: how many points of the photo a homography maps onto the artwork's image
    if (typeof result.verified_inliers === "number") {
      verdict.append(el("div", { class: "meta verified" }, result.verified_inliers > 0
        ? "verified by " + result.verified_inliers + " matching points" : "not verified by matching points"));
    }
  } else {
    verdict.className = "card rejected";
    verdict.append(el("div", { class: "label" }, "Not recognised"),
      el("h3", { id: "answer-title" }, "This does not look like an artwork of the collection."),
      el("p", { class: "meta" }, "The closest match, " + best.title + ", has confidence " +
        percent(result.confidence) + ", below the acceptance threshold of " + percent(result.threshold) +
        ". Try again closer, straight on, with less glare."), confidenceBar(result));
  }
  renderAttributes(result);
  const list = $("matches");
  list.replaceChildren();
  result.matches.forEach((m, i) => {
    const li = el("li", { class: i === 0 && result.accepted ? "match best" : "match" });
    const img = el("img", { alt: m.title, loading: "lazy" });
    if (m.thumbnail) img.src = m.thumbnail.replace(/^\//, "");
    const body = el("div");
    body.append(el("div", { class: "title" }, m.title));
    const meta = [m.artist, m.date].filter(Boolean).join(", ");
    body.append(el("div", { class: "meta" }, (meta ? meta + " \u00b7 " : "") + "similarity " + m.similarity.toFixed(3)));
    // the bar shows how close the artwork's nearest image is to the photo (cosine similarity)
    const closeness = Math.max(0, Math.min(1, m.similarity));
    const bar = el("div", { class: "bar", role: "meter", "aria-valuemin": "0", "aria-valuemax": "1",
      "aria-valuenow": closeness.toFixed(3), title: "similarity " + m.similarity.toFixed(3) });
    const fill = el("span");
    fill.style.width = percent(closeness);
    bar.append(fill);
    body.append(bar);
    li.append(img, body);
    list.append(li);
  });
  const t = result.timing_ms || {};
  $("timing").textContent = t.total !== undefined ? "answered in " + t.total.toFixed(0) + " ms" : "";
  show("answer", true);
}

async function recognize(file) {
  if (!file) return;
  if (file.type && !file.type.startsWith("image/")) { setStatus("Please choose an image file.", true); return; }
  const query = $("query");
  if (query.dataset.url) URL.revokeObjectURL(query.dataset.url);
  query.dataset.url = URL.createObjectURL(file);
  query.src = query.dataset.url;
  show("answer", false);
  setStatus("Looking for this artwork\u2026", false);
  const form = new FormData();
  form.append("image", await shrink(file), file.name || "photo.jpg");
  let response, body;
  try {
    response = await fetch("recognize", { method: "POST", body: form });
    body = await response.json();
  } catch (err) {
    setStatus("The service cannot be reached (" + err.message + ").", true);
    return;
  }
  if (!response.ok) {
    const wait = response.status === 503 ? " Try again in a moment." : "";
    setStatus("Sorry: " + (body.detail || response.statusText) + "." + wait, true);
    return;
  }
  setStatus("", false);
  render(body);
}

for (const id of ["camera", "photo"]) {
  $(id).addEventListener("change", (ev) => { recognize(ev.target.files[0]); ev.target.value = ""; });
}
document.addEventListener("dragover", (ev) => { ev.preventDefault(); document.body.classList.add("dragging"); });
document.addEventListener("dragleave", () => document.body.classList.remove("dragging"));
document.addEventListener("drop", (ev) => {
  ev.preventDefault();
  document.body.classList.remove("dragging");
  if (ev.dataTransfer.files.length) recognize(ev.dataTransfer.files[0]);
});

fetch("health").then((r) => r.json()).then((h) => {
  $("collection").textContent = "Point your camera at one of the " + h.artworks +
    " artworks of the collection, or choose a photo.";
}).catch(() => {});
