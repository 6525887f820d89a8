/* The page's router: one document, a view per path, links that never reload. */
"use strict";

fb.views = ["devices", "boot", "journals", "journal"];

fb.go = (path) => {
  if (location.pathname !== path) history.pushState({}, "", path);
  fb.route();
};

fb.route = () => {
  const parts = location.pathname.split("/").filter(Boolean);
  let view = parts[0] || "devices";
  if (!fb.views.includes(view)) view = "devices";
  for (const name of fb.views) fb.$(`#view-${name}`).hidden = name !== view;
  for (const link of document.querySelectorAll("nav a")) {
    link.classList.toggle("active", link.dataset.view === view || (view === "journal" && link.dataset.view === "journals"));
  }
  if (view === "boot") {
    const id = parts[1] || fb.boot.latest;
    if (id) fb.boot.watch(id);
  } else if (view === "journals") {
    fb.journals.load();
  } else if (view === "journal" && parts[1]) {
    fb.timeline.open(decodeURIComponent(parts[1]));
  }
};

fb.journals = {
  init() {
    fb.$("#journal-upload").addEventListener("change", (event) => this.upload(event.target.files[0]));
  },

  async load() {
    let answer;
    try {
      answer = await fb.api("/api/journals");
    } catch (error) {
      fb.showError(fb.$("#journals-error"), error);
      return;
    }
    fb.$("#journal-dir").textContent = answer.directory;
    const rows = answer.journals.map((entry) => fb.el("tr", {},
      fb.el("td", {}, fb.el("a", {href: `/journal/${encodeURIComponent(entry.id)}`, "data-nav": true,
        class: "journal", text: entry.name})),
      fb.el("td", {class: "muted", text: {state: "state directory", opened: "opened", ui: "booted here", upload: "uploaded"}[entry.origin] || entry.origin}),
      fb.el("td", {text: fb.size(entry.size)}),
      fb.el("td", {text: new Date(entry.modified * 1000).toLocaleString()})));
    fb.$("#journal-list tbody").replaceChildren(...rows);
    if (!rows.length) {
      fb.$("#journal-list tbody").append(fb.el("tr", {}, fb.el("td", {colspan: 4, class: "empty", text: "no journals yet"})));
    }
  },

  async upload(file) {
    if (!file) return;
    fb.showError(fb.$("#journals-error"), null);
    try {
      const answer = await fb.api("/api/journals", {method: "POST", body: file,
        headers: {"x-filename": file.name, "content-type": "application/octet-stream"}});
      fb.go(`/journal/${encodeURIComponent(answer.id)}`);
    } catch (error) {
      fb.showError(fb.$("#journals-error"), error);
    }
  },
};

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-nav]");
  if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
  event.preventDefault();
  fb.go(new URL(link.href).pathname);
});
window.addEventListener("popstate", fb.route);

(async () => {
  const info = await fb.api("/api/info");
  fb.$("#version").textContent = `fastboop ${info.version}`;
  fb.boot.init(info);
  fb.timeline.init();
  fb.journals.init();
  fb.devices.start();
  fb.route();
  document.body.dataset.ready = "1";
})();
