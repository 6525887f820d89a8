/* The live device list: one server-sent event per change, the whole list each time. */
"use strict";

fb.devices = {
  list: [],
  source: null,

  start() {
    if (this.source) return;
    this.source = new EventSource("/api/devices/events");
    this.source.addEventListener("devices", (message) => {
      const document_ = JSON.parse(message.data);
      this.list = document_.devices;
      this.render(document_);
      fb.boot.deviceChoices(this.list);
    });
  },

  label(device) {
    const ids = device.vid !== null && device.pid !== null
      ? `${device.vid.toString(16).padStart(4, "0")}:${device.pid.toString(16).padStart(4, "0")}` : "";
    return {where: `${device.transport} ${device.location}`, ids};
  },

  /* What -s would name this device with. */
  selector(device) {
    if (device.transport === "tcp" || device.transport === "udp") return `${device.transport}:${device.location}`;
    if (device.serial) return device.serial;
    if (device.transport === "usb") return `usb:${device.location}`;
    return "";
  },

  render(document_) {
    fb.$("#watching").textContent = document_.watching.join(", ");
    fb.showError(fb.$("#devices-problem"), document_.problem);
    fb.$("#devices-empty").hidden = this.list.length > 0;
    const host = fb.$("#device-list");
    host.replaceChildren(...this.list.map((report) => this.card(report)));
  },

  card(report) {
    const device = report.device;
    const {where, ids} = this.label(device);
    const verdict = fb.el("p", {class: "verdict"});
    if (report.error) {
      verdict.append(fb.el("span", {class: "bad", text: `cannot probe: ${report.error}`}));
      if (report.hint) verdict.append(fb.el("span", {class: "muted", text: ` (${report.hint})`}));
    } else if (report.matches.length === 1) {
      const match = report.matches[0];
      verdict.append(fb.el("span", {class: "good", text: `matches ${match.profile}`}),
        match.name ? fb.el("span", {class: "muted", text: ` (${match.name})`}) : null);
    } else if (report.matches.length > 1) {
      verdict.append(fb.el("span", {class: "warn",
        text: `ambiguous: ${report.matches.map((m) => m.profile).join(", ")} all match; choose the profile when booting`}));
    } else {
      verdict.append(fb.el("span", {class: "bad", text: "no device profile matches"}));
    }
    const misses = fb.el("ul", {class: "misses"},
      ...report.misses.map((miss) => fb.el("li", {text: `not ${miss.profile}: probe[${miss.step}] ${miss.message}`})));
    const getvars = fb.el("table", {class: "getvars"},
      ...Object.entries(report.getvars || {}).map(([name, value]) => fb.el("tr", {},
        fb.el("th", {text: name}),
        fb.el("td", {text: value === null ? "FAIL" : JSON.stringify(value)}))));
    const boot = fb.el("button", {type: "button", class: "primary", text: "Boot this phone",
      onclick: () => fb.boot.openFor(report)});
    return fb.el("article", {class: "device", "data-location": `${device.transport}:${device.location}`},
      fb.el("h2", {}, fb.el("span", {text: where}), fb.el("span", {class: "muted", text: ` ${ids}`}),
        device.serial ? fb.el("span", {class: "muted", text: ` serial ${device.serial}`}) : null),
      verdict,
      report.misses.length ? misses : null,
      Object.keys(report.getvars || {}).length
        ? fb.el("details", {}, fb.el("summary", {text: "getvar answers"}), getvars) : null,
      report.error ? null : boot);
  },
};
