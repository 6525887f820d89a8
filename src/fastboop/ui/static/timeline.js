/* The journal timeline: records grouped by state on a time axis, replay in the page. */
"use strict";

fb.timeline = {
  id: null,
  next: null,
  group: null,
  firstSeq: 0,

  init() {
    fb.$("#replay-run").addEventListener("click", () => this.replay());
    fb.$("#records-more").addEventListener("click", () => this.load(this.next));
  },

  async open(id) {
    this.id = id;
    fb.$("#journal-title").textContent = "Journal";
    fb.$("#journal-meta").textContent = "";
    fb.$("#replay-verdict").replaceChildren();
    fb.$("#divergence").hidden = true;
    fb.showError(fb.$("#journal-error"), null);
    fb.$("#pcap-link").href = `/api/journals/${encodeURIComponent(id)}/pcap`;
    fb.$("#time-axis").replaceChildren();
    await this.load(0, true);
  },

  async load(start, overview) {
    const id = this.id;
    let document_;
    try {
      document_ = await fb.api(`/api/journals/${encodeURIComponent(id)}?from=${start}${overview ? "&overview=1" : ""}`);
    } catch (error) {
      fb.showError(fb.$("#journal-error"), error);
      return;
    }
    if (id !== this.id) return;
    if (overview) {
      const header = document_.header;
      fb.$("#journal-title").textContent = document_.name;
      const session = header.inputs.session ? ` · ${header.inputs.session} journal` : "";
      fb.$("#journal-meta").textContent = `fastboop ${header.fastboop_version} · machine v${header.machine_version} ` +
        `(${header.machine_hash.slice(0, 12)}) · written ${new Date(header.created_unix * 1000).toLocaleString()}${session}`;
      this.axis(document_.overview);
    }
    const records = fb.$("#records");
    if (start === 0 || overview || start !== this.next) {
      records.replaceChildren();
      this.group = null;
      this.firstSeq = start;
      if (start > 0) {
        records.append(fb.el("button", {type: "button", class: "link", text: `records before #${start} are not shown: show from the start`,
          onclick: () => this.load(0)}));
      }
    }
    for (const row of document_.records) this.append(row);
    this.next = document_.next;
    fb.$("#records-more").hidden = this.next === null;
    if (document_.end) records.append(fb.el("p", {class: "muted end", text: `end of journal: ${document_.end}`}));
  },

  append(row) {
    if (!this.group || this.group.dataset.state !== row.state) {
      this.group = fb.el("section", {class: "state-group", "data-state": row.state},
        fb.el("h3", {}, fb.el("span", {class: "state-badge", "data-state": row.state, text: row.state.replaceAll("_", " ")}),
          fb.el("span", {class: "muted", text: ` from ${fb.ms(row.t_ms)}`})));
      fb.$("#records").append(this.group);
    }
    const head = [fb.el("span", {class: "seq", text: `#${row.seq}`}), fb.el("span", {class: "t", text: fb.ms(row.t_ms)}),
      fb.el("span", {class: "kind", text: row.kind})];
    let node;
    if (row.wire) {
      const wire = row.wire;
      const arrow = wire.direction === "out" ? "→ phone" : "← phone";
      const dump = wire.hex !== null ? fb.hexdump(wire.hex) : `(${wire.size} bytes, journaled by digest: sha256 ${wire.sha256})`;
      node = fb.el("details", {class: "record k-wire", id: `rec-${row.seq}`, "data-seq": row.seq},
        fb.el("summary", {}, ...head, ` ${wire.channel} ${arrow} ${wire.size} bytes`),
        fb.el("pre", {class: "hex", text: dump}));
    } else if (row.smoo) {
      /* A batch of the smoo data plane: the summary, and every packet when opened. */
      node = fb.el("details", {class: "record k-smoo", id: `rec-${row.seq}`, "data-seq": row.seq},
        fb.el("summary", {}, ...head, ` ${row.text}`),
        fb.el("pre", {class: "hex", text: row.smoo.packets.map((line, i) => `[${i}] ${line}`).join("\n")}));
    } else if (row.console) {
      /* What the phone wrote to its serial console: the lines, when opened. */
      node = fb.el("details", {class: "record k-console", id: `rec-${row.seq}`, "data-seq": row.seq},
        fb.el("summary", {}, ...head, ` ${row.text}`),
        fb.el("pre", {class: "console", text: row.console.join("\n")}));
    } else {
      node = fb.el("div", {class: `record k-${row.kind}`, id: `rec-${row.seq}`, "data-seq": row.seq},
        ...head, fb.el("span", {class: "text", text: ` ${row.text}`}));
    }
    this.group.append(node);
  },

  axis(overview) {
    const svg = fb.$("#time-axis");
    const span = Math.max(overview.duration_ms, 1);
    const x = (ms) => (ms / span) * 1000;
    svg.replaceChildren();
    for (const segment of overview.segments) {
      const width = Math.max(x(segment.end_ms) - x(segment.start_ms), 1.5);
      svg.append(fb.el("rect", {class: `seg s-${segment.state}`, x: x(segment.start_ms), y: 22, width, height: 26,
        onclick: () => this.reveal(segment.first_seq)},
        fb.el("title", {text: `${segment.state}: ${fb.ms(segment.start_ms)} – ${fb.ms(segment.end_ms)}, ${segment.records} records`})));
    }
    for (const mark of overview.marks) {
      const effect = mark.kind === "effect";
      svg.append(fb.el("line", {class: `mark k-${mark.kind}`, x1: x(mark.t_ms), x2: x(mark.t_ms),
        y1: effect ? 48 : 4, y2: effect ? 66 : 22, onclick: () => this.reveal(mark.seq)},
        fb.el("title", {text: `#${mark.seq} ${mark.tag} at ${fb.ms(mark.t_ms)}`})));
    }
    svg.append(fb.el("text", {x: 2, y: 14, class: "axis-label", text: "events"}),
      fb.el("text", {x: 998, y: 14, class: "axis-label end", text: fb.ms(span)}));
  },

  /* Show record `seq` (loading its window when it is not on the page) and flash it. */
  async reveal(seq, context) {
    let node = document.getElementById(`rec-${seq}`);
    if (!node) {
      await this.load(Math.max(0, seq - (context || 20)));
      node = document.getElementById(`rec-${seq}`);
    }
    if (node) {
      node.scrollIntoView({block: "center"});
      node.classList.add("flash");
      setTimeout(() => node.classList.remove("flash"), 1500);
    }
    return node;
  },

  async replay() {
    const verdict = fb.$("#replay-verdict");
    verdict.replaceChildren(fb.el("span", {class: "muted", text: "replaying…"}));
    fb.$("#replay-run").disabled = true;
    let report;
    try {
      report = await fb.api(`/api/journals/${encodeURIComponent(this.id)}/replay`, {method: "POST"});
    } catch (error) {
      verdict.replaceChildren(fb.el("span", {class: "bad", text: String(error.message)}));
      return;
    } finally {
      fb.$("#replay-run").disabled = false;
    }
    verdict.replaceChildren(fb.el("strong", {class: report.ok ? "good" : "bad", id: "verdict-text",
      "data-verdict": report.verdict, text: report.ok && report.note ? `${report.summary}` : report.summary}));
    for (const node of document.querySelectorAll(".divergent, .preceding")) node.classList.remove("divergent", "preceding");
    const panel = fb.$("#divergence");
    panel.hidden = report.ok;
    if (report.ok) return;
    fb.$("#divergence-seq").textContent = report.seq === null ? "(no record)" : `#${report.seq}`;
    fb.$("#divergence-seq").onclick = (event) => { event.preventDefault(); this.reveal(report.seq, 40); };
    fb.$("#divergence-expected").textContent = report.expected || "";
    fb.$("#divergence-actual").textContent = report.actual || "";
    fb.$("#divergence-context").replaceChildren(...report.context.map((line) => fb.el("li", {text: line})));
    if (report.seq === null) return;
    const node = await this.reveal(report.seq, 40);
    if (node) {
      node.classList.add("divergent");
      for (const line of report.context) {
        const seq = /^#(\d+) /.exec(line);
        const before = seq && document.getElementById(`rec-${seq[1]}`);
        if (before) before.classList.add("preceding");
      }
    }
  },
};
