/// The console's stylesheet and script, served by the binary itself (no CDN, no external font):
/// the console works offline. The script only enhances: every page works without it.
enum ConsoleAssets {
    static let css = """
        :root { color-scheme: light; --ink: #1a1a1a; --muted: #4a4a4a; --line: #b8b8b8; --accent: #0b5394; --bad: #a40000;
          --conflict: #7a4a00; --paper: #ffffff; --band: #f2f2f2; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 16px/1.5 system-ui, "Noto Sans", "Noto Sans Arabic", "DejaVu Sans", sans-serif; color: var(--ink);
          background: var(--paper); }
        header { background: #10283f; color: #fff; padding: .5rem 1rem; display: flex; flex-wrap: wrap; align-items: center; gap: 1rem; }
        header .brand { font-weight: 700; margin: 0; }
        nav ul { list-style: none; display: flex; flex-wrap: wrap; gap: .25rem 1rem; margin: 0; padding: 0; }
        nav a { color: #fff; text-decoration: none; padding: .25rem .1rem; }
        nav a[aria-current="page"] { border-bottom: 3px solid #ffd24d; }
        main { padding: 1rem; max-width: 72rem; }
        header .signout { margin-inline-start: auto; }
        header .signout button { padding: .2rem .6rem; }
        a { color: var(--accent); }
        :focus-visible { outline: 3px solid #ffbf00; outline-offset: 2px; }
        .skip { position: absolute; left: -999px; }
        .skip:focus { left: 1rem; top: 1rem; background: #fff; color: var(--accent); padding: .5rem; z-index: 10; }
        table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
        th, td { border: 1px solid var(--line); padding: .35rem .5rem; text-align: start; vertical-align: top; }
        th { background: var(--band); }
        fieldset { border: 1px solid var(--line); margin: 0 0 1rem; padding: .75rem; }
        legend { font-weight: 700; padding: 0 .25rem; }
        label { display: block; font-weight: 600; margin-top: .5rem; }
        input[type=text], input[type=search], input[type=number], input[type=date], input[type=password], select, textarea {
          font: inherit; padding: .35rem; border: 1px solid #6b6b6b; border-radius: 3px; width: 100%; max-width: 40rem; background: #fff;
          color: var(--ink); }
        textarea { min-height: 8rem; }
        .checks label, .choice label { display: inline-flex; gap: .35rem; font-weight: 400; margin: .15rem 1rem .15rem 0; }
        .hint { color: var(--muted); font-size: .9rem; margin: .15rem 0; }
        .error { color: var(--bad); font-weight: 600; }
        .field-error { color: var(--bad); margin: .15rem 0; }
        .notice { background: #e7f1fb; border-left: 4px solid var(--accent); padding: .5rem .75rem; }
        .conflict { color: var(--conflict); font-weight: 600; }
        button, .button { font: inherit; padding: .4rem .9rem; border: 1px solid #0a3f70; background: var(--accent); color: #fff;
          border-radius: 3px; cursor: pointer; text-decoration: none; display: inline-block; }
        button.secondary { background: #fff; color: var(--accent); }
        .filters { display: grid; grid-template-columns: repeat(auto-fit, minmax(12rem, 1fr)); gap: .5rem 1rem; align-items: end; }
        .filters label { margin: 0; }
        .counts { color: var(--muted); }
        .candidate { border: 1px solid var(--line); padding: .5rem; margin: .35rem 0; }
        .timeline { list-style: none; padding: 0; border-inline-start: 3px solid var(--line); }
        .timeline li { margin: 0 0 1rem; padding-inline-start: 1rem; }
        .sig-verified { color: #1b5e20; font-weight: 600; }
        .sig-invalid, .sig-unknown-key, .sig-unsigned { color: var(--bad); font-weight: 600; }
        .sig-unverified { color: var(--conflict); font-weight: 600; }
        dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; }
        dl.facts dt { font-weight: 600; }
        dl.facts dd { margin: 0; }
        progress { width: 100%; max-width: 40rem; height: 1.5rem; }
        figure { margin: 0 0 1rem; }
        img.attachment { max-width: 100%; max-height: 24rem; border: 1px solid var(--line); }
        svg text { font: 12px system-ui, sans-serif; fill: #1a1a1a; }
        .legend { list-style: none; display: flex; flex-wrap: wrap; gap: .25rem 1.25rem; padding: 0; }
        td label { display: inline; margin: 0 0 0 .35rem; }
        """

    static let javascript = """
        "use strict";
        // Progressive enhancement only: the pages work without this script.
        document.addEventListener("DOMContentLoaded", function () {
          // "Add another" for collection entries: clone the blank row the page rendered.
          document.querySelectorAll("button[data-add-entry]").forEach(function (button) {
            button.hidden = false;
            button.addEventListener("click", function () {
              var collection = button.getAttribute("data-add-entry");
              var template = document.querySelector("fieldset[data-blank-entry='" + collection + "']");
              if (!template) { return; }
              var count = document.querySelectorAll("fieldset[data-new-entry='" + collection + "']").length;
              var copy = template.cloneNode(true);
              copy.removeAttribute("data-blank-entry");
              copy.setAttribute("data-new-entry", collection);
              var k = String(count + 1);
              copy.querySelectorAll("[name], [id], [for], [aria-describedby]").forEach(function (el) {
                ["name", "id", "for", "aria-describedby"].forEach(function (attr) {
                  var value = el.getAttribute(attr);
                  if (!value) { return; }
                  el.setAttribute(attr, value.replace(/^n\\.([a-z]+)\\.\\d+\\./, "n.$1." + k + ".").replace(/^f-n-([a-z]+)-\\d+-/, "f-n-$1-" + k + "-"));
                });
                if (el.tagName === "INPUT" || el.tagName === "TEXTAREA") { el.value = ""; }
                if (el.tagName === "SELECT") { el.selectedIndex = 0; }
              });
              var legend = copy.querySelector("legend");
              var first = template.querySelector("legend");
              var number = first ? parseInt((first.textContent.match(/\\d+$/) || ["1"])[0], 10) : 1;
              if (legend) { legend.textContent = legend.textContent.replace(/\\d+$/, String(number + count + 1)); }
              copy.querySelectorAll(".field-error").forEach(function (el) { el.remove(); });
              copy.querySelectorAll("[aria-invalid]").forEach(function (el) { el.removeAttribute("aria-invalid"); });
              template.parentNode.insertBefore(copy, button);
              var first = copy.querySelector("input, select, textarea");
              if (first) { first.focus(); }
            });
          });
          // Live sync progress: poll the progress document while a sync runs.
          var panel = document.getElementById("sync-progress");
          if (panel && panel.getAttribute("data-running") === "true") {
            var bar = panel.querySelector("progress");
            var text = panel.querySelector("[data-progress-text]");
            var poll = function () {
              fetch(panel.getAttribute("data-href"), { credentials: "same-origin", cache: "no-store" }).then(function (r) { return r.json(); }).then(function (p) {
                if (text) { text.textContent = p.text; }
                if (bar) {
                  if (p.total > 0) { bar.max = p.total; bar.value = p.done; } else { bar.removeAttribute("value"); }
                }
                if (p.running) { setTimeout(poll, 400); } else { window.location.reload(); }
              }).catch(function () { setTimeout(poll, 1000); });
            };
            poll();
          }
        });
        """
}
