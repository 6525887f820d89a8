/* The boot form and the running session: the machine's steps drawn as they come. */
"use strict";

fb.boot = {
  id: null,
  source: null,
  diagramReady: false,

  init(info) {
    const profiles = fb.$("#profile");
    for (const profile of info.profiles) {
      profiles.append(fb.el("option", {value: profile.id,
        text: profile.name ? `${profile.id} (${profile.name})` : profile.id}));
    }
    fb.$("#recent").replaceChildren(...info.recent.map((item) => fb.el("option", {value: item})));
    fb.$("#diagram").innerHTML = info.diagram;  // our own SVG, generated from the table
    fb.$("#boot-form").addEventListener("submit", (event) => { event.preventDefault(); this.start(); });
    fb.$("#boot-cancel").addEventListener("click", () => this.cancel());
    const running = info.boots.filter((b) => !b.finished);
    this.latest = running.length ? running[running.length - 1].id : null;
  },

  deviceChoices(devices) {
    const select = fb.$("#device");
    const chosen = select.value;
    const options = devices.filter((r) => !r.error).map((report) => {
      const value = fb.devices.selector(report.device);
      const {where, ids} = fb.devices.label(report.device);
      const what = report.matches.map((m) => m.profile).join(", ") || "no profile";
      return fb.el("option", {value, text: `${where} ${ids} — ${what}`});
    }).filter((option) => option.value);
    select.replaceChildren(fb.el("option", {value: "", text: "the first phone that matches"}), ...options);
    select.value = [...select.options].some((o) => o.value === chosen) ? chosen : "";
  },

  openFor(report) {
    fb.go("/boot");
    this.deviceChoices(fb.devices.list);
    fb.$("#device").value = fb.devices.selector(report.device);
    if (report.matches.length === 1) fb.$("#profile").value = report.matches[0].profile;
    fb.$("#artifact").focus();
  },

  request() {
    const form = fb.$("#boot-form");
    const request = {};
    for (const input of form.querySelectorAll("input[name], select[name]")) {
      const name = input.name;
      if (input.type === "checkbox") request[name] = input.checked;
      else if (input.hasAttribute("data-list")) {
        request[name] = input.value.split(",").map((s) => s.trim()).filter(Boolean);
      } else if (input.type === "number") {
        if (input.value !== "") request[name] = Number(input.value);
      } else if (input.value.trim() !== "") request[name] = input.value.trim();
    }
    return request;
  },

  async start() {
    fb.showError(fb.$("#boot-error"), null);
    fb.$("#boot-start").disabled = true;
    try {
      const answer = await fb.api("/api/boots", {method: "POST",
        headers: {"content-type": "application/json"}, body: JSON.stringify(this.request())});
      fb.go(`/boot/${answer.id}`);
    } catch (error) {
      fb.showError(fb.$("#boot-error"), error);
    } finally {
      fb.$("#boot-start").disabled = false;
    }
  },

  async cancel() {
    if (!this.id) return;
    fb.$("#boot-cancel").disabled = true;
    try {
      await fb.api(`/api/boots/${this.id}/cancel`, {method: "POST"});
    } catch (error) {
      fb.showError(fb.$("#boot-error"), error);
    }
  },

  /* Follow boot `id`: everything it did so far, then live. */
  watch(id) {
    if (this.id === id && this.source) return;
    this.stop();
    this.id = id;
    this.reset();
    fb.$("#session").hidden = false;
    const source = this.source = new EventSource(`/api/boots/${id}/events`);
    const on = (name, handler) => source.addEventListener(name, (m) => handler(JSON.parse(m.data)));
    on("clock", (d) => { this.clock = {sessionMs: d.now_ms, at: performance.now()}; });
    on("started", (d) => {
      this.log(0, `boot of ${d.request.artifact}`, "note");
      if (d.request.serial_console) fb.$("#console-panel").hidden = false;
    });
    on("console", (d) => this.console(d));
    on("note", (d) => this.log(this.lastMs, d.text, "note"));
    on("progress", (d) => this.unpacking(d));
    on("step", (d) => this.step(d));
    on("end", (d) => { this.end(d); source.close(); });
    source.onerror = () => { if (source.readyState === EventSource.CLOSED) this.source = null; };
    this.timer = setInterval(() => this.tick(), 250);
  },

  stop() {
    if (this.source) this.source.close();
    this.source = null;
    clearInterval(this.timer);
  },

  reset() {
    this.state = "idle";
    this.visited = new Set(["idle"]);
    this.lastMs = 0;
    this.timers = {};
    this.upload = null;
    this.serve = null;
    this.samples = [];
    this.clock = null;
    this.ended = false;
    fb.$("#session-log").replaceChildren();
    fb.$("#console").replaceChildren(fb.el("div", {class: "muted", text: "waiting for the phone's serial console…"}));
    fb.$("#console-panel").hidden = true;
    fb.$("#session-result").hidden = true;
    fb.$("#upload-progress").value = 0;
    fb.$("#upload-figures").textContent = "not started";
    fb.$("#serve-stats").textContent = "not serving yet";
    fb.$("#countdown").textContent = "";
    fb.$("#throughput-chart polyline").setAttribute("points", "");
    fb.$("#boot-cancel").disabled = false;
    for (const node of fb.$("#diagram").querySelectorAll(".visited, .current, .taken")) {
      node.classList.remove("visited", "current", "taken");
    }
    this.highlight();
  },

  /* The session's clock now, in ms since it started (the steps' t_ms). */
  nowMs() {
    if (!this.clock) return this.lastMs;
    return this.clock.sessionMs + (performance.now() - this.clock.at);
  },

  step(d) {
    const event = d.event;
    this.lastMs = d.t_ms;
    if (d.state !== this.state) {
      const edge = document.getElementById(`edge-${this.state}--${d.state}`);
      if (edge) edge.classList.add("taken");
      this.state = d.state;
      this.visited.add(d.state);
      this.highlight();
    }
    for (const effect of d.effects) {
      if (effect.type === "start_timer") {
        this.timers[effect.name] = {id: effect.timer_id, deadline: d.t_ms + effect.seconds * 1000};
      } else if (effect.type === "cancel_timer") delete this.timers[effect.name];
    }
    if (event.type === "timer_fired") delete this.timers[event.name];
    if (event.type === "transfer_progress") this.progress(d.t_ms, event);
    else if (event.type === "serve_stats") this.stats(d.t_ms, event);
    else if (event.type === "upload_accepted") this.uploaded(event);
    const line = fb.describeEvent(event);
    if (line) this.log(d.t_ms, line, event.type);
  },

  highlight() {
    fb.$("#session-state").textContent = this.state.replaceAll("_", " ");
    fb.$("#session-state").dataset.state = this.state;
    for (const state of this.visited) {
      const node = document.getElementById(`state-${state}`);
      if (node) node.classList.add("visited");
    }
    for (const node of fb.$("#diagram").querySelectorAll(".current")) node.classList.remove("current");
    const current = document.getElementById(`state-${this.state}`);
    if (current) current.classList.add("current");
  },

  unpacking(d) {
    fb.$("#upload-figures").textContent = d.total
      ? `${d.label}: ${Math.floor((100 * d.done) / d.total)}% of ${fb.size(d.total)}`
      : `${d.label}: ${fb.size(d.done)}`;
  },

  progress(tMs, event) {
    if (!this.upload || event.sent < this.upload.sent || event.total !== this.upload.total) {
      this.upload = {total: event.total, sent: 0, samples: [[tMs, 0]]};  // a retry starts over
    }
    const upload = this.upload;
    upload.sent = event.sent;
    upload.samples.push([tMs, event.sent]);
    while (upload.samples.length > 2 && tMs - upload.samples[1][0] >= 3000) upload.samples.shift();
    const [t0, v0] = upload.samples[0];
    const span = (tMs - t0) / 1000;
    const rate = span >= 0.2 ? (event.sent - v0) / span : null;
    const eta = rate ? (event.total - event.sent) / rate : null;
    const bar = fb.$("#upload-progress");
    bar.max = event.total || 1;
    bar.value = event.sent;
    const pct = event.total ? Math.floor((100 * event.sent) / event.total) : 100;
    fb.$("#upload-figures").textContent =
      `${pct}% · ${fb.size(event.sent)} of ${fb.size(event.total)} · ${fb.rate(rate)} · ETA ${eta === null ? "?" : fb.duration(eta)}`;
  },

  uploaded(event) {
    const bar = fb.$("#upload-progress");
    bar.max = event.size || 1;
    bar.value = event.size;
    fb.$("#upload-figures").textContent = `100% · ${fb.size(event.size)} uploaded to RAM`;
  },

  stats(tMs, event) {
    const total = event.bytes_read + event.bytes_written;
    const previous = this.serve;
    this.serve = {t: tMs, total, ios: event.ios};
    if (!previous || tMs <= previous.t) {
      fb.$("#serve-stats").textContent = `${fb.size(total)} served · ${event.ios} requests`;
      return;
    }
    const seconds = (tMs - previous.t) / 1000;
    const rate = Math.max(0, (total - previous.total) / seconds);
    const iops = Math.max(0, (event.ios - previous.ios) / seconds);
    this.samples.push(rate);
    if (this.samples.length > 60) this.samples.shift();
    fb.$("#serve-stats").textContent = `${fb.rate(rate)} · ${Math.round(iops)} IOPS · ` +
      `${fb.size(total)} served · ${event.ios} requests · ${event.in_flight} in flight (peak ${event.in_flight_peak})`;
    const peak = Math.max(...this.samples, 1);
    const step = 300 / 59;
    const points = this.samples.map((value, i) =>
      `${(i + 60 - this.samples.length) * step},${78 - (value / peak) * 74}`);
    fb.$("#throughput-chart polyline").setAttribute("points", points.join(" "));
  },

  tick() {
    const shown = Object.entries(this.timers).filter(([name]) => name !== "serve" || this.state === "serving");
    if (this.ended || !shown.length) { fb.$("#countdown").textContent = ""; return; }
    const now = this.nowMs();
    fb.$("#countdown").textContent = shown.map(([name, timer]) =>
      `${fb.timerNames[name] || name}: ${fb.duration((timer.deadline - now) / 1000)} left`).join(" · ");
  },

  log(tMs, text, kind) {
    const list = fb.$("#session-log");
    list.append(fb.el("li", {class: `k-${kind}`}, fb.el("span", {class: "t", text: fb.ms(tMs)}), ` ${text}`));
    if (list.children.length > 500) list.firstElementChild.remove();
  },

  /* Serial console lines: a `reset` frame is the server's whole ring (on every (re)connect),
     the others only what arrived since. Follows the newest line unless scrolled up. */
  console(d) {
    const pane = fb.$("#console");
    fb.$("#console-panel").hidden = false;
    const following = pane.scrollTop + pane.clientHeight >= pane.scrollHeight - 8;
    if (d.reset || pane.querySelector(".muted")) pane.replaceChildren();
    const partial = pane.querySelector(".partial");
    if (partial) partial.remove();
    for (const line of d.lines) pane.append(fb.el("div", {text: line || "\u00a0"}));
    if (d.partial) pane.append(fb.el("div", {class: "partial", text: d.partial}));
    while (pane.children.length > 2000) pane.firstElementChild.remove();
    if (following) pane.scrollTop = pane.scrollHeight;
  },

  end(d) {
    this.ended = true;
    this.stop();
    fb.$("#boot-cancel").disabled = true;
    fb.$("#countdown").textContent = "";
    const result = fb.$("#session-result");
    result.hidden = false;
    result.className = `result ${d.state}`;
    const text = d.outcome ? `session ${d.state}: ${d.outcome}` : `session ${d.state}`;
    result.replaceChildren(fb.el("strong", {text}));
    if (d.error && d.error.hint) result.append(fb.el("span", {class: "muted", text: ` (${d.error.hint})`}));
    if (d.journal) {
      result.append(" ", fb.el("a", {id: "journal-link", href: `/journal/${d.journal}`, "data-nav": true,
        text: "open the journal's timeline"}));
    }
    if (this.state !== d.state && ["failed", "cancelled", "done"].includes(d.state)) {
      this.state = d.state;
      this.visited.add(d.state);
      this.highlight();
    }
  },
};

/* One line for the log about an event, or null for the ones only counted. */
fb.describeEvent = (event) => {
  const where = (d) => (d ? `${d.transport} ${d.location}${d.serial ? ` (serial ${d.serial})` : ""}` : "");
  switch (event.type) {
    case "session_started": return `session started: looking on ${event.config.transports.join(", ")}`;
    case "device_arrived": return `found ${where(event.device)}`;
    case "device_left": return `device left: ${where(event.device)}`;
    case "getvar_answered": return `getvar ${event.name}: ${event.failure ? `FAIL ${event.failure}` : JSON.stringify(event.value)}`;
    case "probe_finished": return event.matched.length ? `identified as ${event.matched.join(", ")}`
      : `no profile matches: ${event.mismatches.map((m) => `${m.profile} (${m.step}: expected ${m.expected}, got ${m.actual})`).join("; ")}`;
    case "probe_failed": case "upload_failed": case "boot_failed":
      return `${event.type.replace("_", " ")}: ${event.kind}: ${event.message}`;
    case "build_finished": return `built the boot image: ${fb.size(event.image_size)}${event.summary ? `; ${event.summary}` : ""}`;
    case "build_failed": case "serve_failed": return `${event.type.replace("_", " ")}: ${event.message}`;
    case "bootloader_message": return `(bootloader) ${event.text}`;
    case "fastboot_limit_hit": return `the bootloader hit the ${event.limit} limit on ${event.command}`;
    case "upload_accepted": return `uploaded ${fb.size(event.size)} to RAM`;
    case "boot_accepted": return "booted; waiting for stage0 to come back on USB";
    case "gadget_found": return `stage0's smoo gadget connected: ${where(event.device)}; serving the rootfs`;
    case "gadget_lost": return `smoo gadget disconnected (${event.reason}); waiting for it to come back`;
    case "serve_ended": return `serving ended: ${event.reason}`;
    case "cancel_requested": return `stopping: ${event.reason}`;
    case "timer_fired": return `time is up: ${fb.timerNames[event.name] || event.name}`;
    default: return null;
  }
};
