/* Small helpers shared by the views: DOM building, numbers as people read them, fetch. */
"use strict";

const fb = {};

fb.$ = (selector, root) => (root || document).querySelector(selector);

/* el("div", {class: "x", text: "hi"}, child, ...): an element, never innerHTML. */
fb.el = (tag, attributes, ...children) => {
  const svg = ["svg", "rect", "line", "text", "g", "polyline", "title", "path"].includes(tag);
  const node = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag)
                   : document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
};

fb.units = ["B", "KiB", "MiB", "GiB", "TiB"];

/* 31.2 MiB, as the boot screen prints sizes. */
fb.size = (count) => {
  let value = Number(count);
  for (const unit of fb.units) {
    if (Math.abs(value) < 1024 || unit === "TiB") {
      return unit === "B" ? `${Math.round(value)} B` : `${value.toFixed(1)} ${unit}`;
    }
    value /= 1024;
  }
  return `${count} B`;
};

fb.rate = (perSecond) => (perSecond === null ? "? B/s" : `${fb.size(perSecond)}/s`);

/* 42 s, 3 min 05 s */
fb.duration = (seconds) => {
  const whole = Math.max(0, Math.round(seconds));
  if (whole < 100) return `${whole} s`;
  return `${Math.floor(whole / 60)} min ${String(whole % 60).padStart(2, "0")} s`;
};

fb.ms = (ms) => `${(ms / 1000).toFixed(3)} s`;

fb.hexdump = (hex) => {
  const lines = [];
  for (let offset = 0; offset < hex.length / 2; offset += 16) {
    const bytes = [];
    let text = "";
    for (let i = offset; i < Math.min(offset + 16, hex.length / 2); i++) {
      const byte = parseInt(hex.substr(i * 2, 2), 16);
      bytes.push(hex.substr(i * 2, 2));
      text += byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : ".";
    }
    lines.push(`${offset.toString(16).padStart(6, "0")}  ${bytes.join(" ").padEnd(47)}  ${text}`);
  }
  return lines.join("\n");
};

/* JSON from the API; an error document becomes an Error whose message says what to do. */
fb.api = async (path, options) => {
  const response = await fetch(path, Object.assign({credentials: "same-origin"}, options || {}));
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    const error = body && body.error ? body.error : {message: String(body)};
    const text = error.hint ? `${error.message} (${error.hint})` : error.message;
    throw new Error(text);
  }
  return body;
};

fb.showError = (node, error) => {
  node.textContent = error ? String(error.message || error) : "";
  node.hidden = !error;
};

/* Names of the session machine's timers, for the countdown. */
fb.timerNames = {
  device: "waiting for a fastboot device",
  probe: "identifying the phone",
  build: "building the boot image",
  upload: "uploading",
  boot: "booting",
  gadget: "stage0 to come back on USB",
  serve: "serving",
};
