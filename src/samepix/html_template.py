# ruff: noqa: E501  (the page's CSS and script, whose lines are not Python's)
"""The HTML report's page: markup, style and script in one string (see :mod:`samepix.html_report`).

``%TITLE%`` and ``%TOTALS%`` are replaced by escaped HTML, ``%DATA%`` by the items as JSON (with
``<``, ``>`` and ``&`` escaped). The script writes untrusted text only through ``textContent``
and attributes. The content security policy allows no request at all: pictures are ``data:`` URIs
and the page works offline from ``file://``.
"""

from __future__ import annotations

__all__ = ["PAGE"]

PAGE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy"
  content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<link rel="icon" href="data:,">
<title>%TITLE%</title>
<style>
:root { color-scheme: light dark; --bg: #fbfbfa; --fg: #1d1d1b; --muted: #5c5c58; --card: #ffffff;
  --line: #d6d6d0; --accent: #0b5cad; --best: #1f7a1f; --warn: #9a3b00; --stage: #e8e8e4; }
@media (prefers-color-scheme: dark) {
  :root:not([data-theme=light]) { --bg: #161615; --fg: #ecece8; --muted: #a8a8a0; --card: #20201e;
    --line: #3a3a36; --accent: #7db4ff; --best: #7ddc7d; --warn: #ffae70; --stage: #2b2b28; } }
:root[data-theme=dark] { --bg: #161615; --fg: #ecece8; --muted: #a8a8a0; --card: #20201e;
  --line: #3a3a36; --accent: #7db4ff; --best: #7ddc7d; --warn: #ffae70; --stage: #2b2b28; }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
html { scroll-padding-top: 10rem; }  /* what is scrolled to stays below the sticky header */
body { margin: 0; font: 14px/1.45 system-ui, sans-serif; background: var(--bg); color: var(--fg); }
header { position: sticky; top: 0; z-index: 2; background: var(--bg); border-bottom: 1px solid var(--line);
  padding: .6rem 1rem; }
h1 { font-size: 1.15rem; margin: 0 0 .3rem; overflow-wrap: anywhere; }
dl.totals { display: flex; flex-wrap: wrap; gap: .2rem 1.2rem; margin: 0 0 .4rem; }
dl.totals div { display: flex; gap: .35rem; } dl.totals dt { color: var(--muted); } dl.totals dd { margin: 0; font-weight: 600; }
.bar { display: flex; flex-wrap: wrap; gap: .4rem; align-items: center; }
button, .bar select { font: inherit; padding: .15rem .6rem; border: 1px solid var(--line); border-radius: 4px;
  background: var(--card); color: var(--fg); cursor: pointer; }
button[aria-pressed=true] { outline: 2px solid var(--accent); font-weight: 600; }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.help { color: var(--muted); font-size: .85rem; }
main { padding: .6rem 1rem 3rem; }
section.item { background: var(--card); border: 1px solid var(--line); border-radius: 6px; margin: .7rem 0;
  padding: .6rem .8rem; }
section.item h2 { font-size: 1rem; margin: 0 0 .4rem; overflow-wrap: anywhere; }
.badge { display: inline-block; border: 1px solid currentColor; border-radius: 3px; padding: 0 .35rem;
  font-size: .8rem; margin-right: .4rem; text-transform: uppercase; letter-spacing: .03em; }
.pics { display: flex; flex-wrap: wrap; gap: .8rem; }
figure { margin: 0; width: 260px; }
figure .frame { width: 256px; height: 256px; display: flex; align-items: center; justify-content: center;
  background: var(--stage); border: 2px solid transparent; }
figure.best .frame { border-color: var(--best); }
figure img { max-width: 256px; max-height: 256px; display: block; }
figcaption { font-size: .82rem; overflow-wrap: anywhere; }
figcaption .facts { color: var(--muted); }
.bestmark { color: var(--best); font-weight: 700; }
.pair { border-top: 1px dashed var(--line); margin-top: .6rem; padding-top: .5rem; display: flex; flex-wrap: wrap; gap: 1rem; }
.pair .info { flex: 1 1 320px; min-width: 280px; }
.pair ul { margin: .2rem 0; padding-left: 1.2rem; }
.pair dl { display: grid; grid-template-columns: max-content auto; gap: 0 .8rem; margin: .3rem 0; font-size: .85rem; }
.pair dt { color: var(--muted); } .pair dd { margin: 0; font-variant-numeric: tabular-nums; }
.viewer { flex: 0 0 auto; }
.stage { position: relative; width: 256px; height: 256px; background: var(--stage); overflow: hidden; }
.stage img { position: absolute; left: 0; top: 0; width: 100%; height: 100%; object-fit: contain; }
.stage .divider { position: absolute; top: 0; bottom: 0; width: 2px; background: #fff; box-shadow: 0 0 0 1px #000; display: none; }
.modes { display: flex; gap: .25rem; margin: .3rem 0; flex-wrap: wrap; }
.modes button { font-size: .8rem; padding: .05rem .4rem; }
.legend { font-size: .78rem; color: var(--muted); max-width: 256px; }
.legend .ramp { height: 10px; border: 1px solid var(--line);
  background: linear-gradient(to right, rgba(230,20,20,0), rgba(230,20,20,.9)); }
.legend .ends { display: flex; justify-content: space-between; }
code.cmd { display: block; font-size: .75rem; overflow-wrap: anywhere; background: var(--stage); padding: .2rem .3rem; margin-top: .2rem; }
.notes { margin: .2rem 0 .5rem; }
.status { min-height: 1.2em; }
</style>
</head>
<body>
<header>
<h1>%TITLE%</h1>
<dl class="totals">%TOTALS%</dl>
<div class="bar" role="toolbar" aria-label="view">
  <span id="filters" class="bar" role="group" aria-label="show"></span>
  <button id="prev" type="button" aria-label="previous page">◀ prev</button>
  <span id="pageinfo" aria-live="polite"></span>
  <button id="next" type="button" aria-label="next page">next ▶</button>
  <button id="theme" type="button">theme: auto</button>
  <span class="status" id="status" role="status" aria-live="polite"></span>
</div>
<div class="help">Keys: j / k next / previous item · n / p next / previous page · 1 heatmap · 2 difference · 3 swipe · 4 onion skin. Thumbnails are embedded; click one for the full-size file.</div>
</header>
<main id="items" aria-label="results"></main>
<script id="data" type="application/json">%DATA%</script>
<script>
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("data").textContent);
  const items = DATA.items;
  const size = DATA.pageSize;
  const list = document.getElementById("items");
  const status = document.getElementById("status");
  let filter = "all";
  let shown = items.map((_, i) => i);
  let page = 0;

  const lazy = new IntersectionObserver((entries) => {
    for (const e of entries) {
      if (!e.isIntersecting) continue;
      // a picture, or a viewer's stage whose pictures may be hidden by its mode
      const imgs = e.target.tagName === "IMG" ? [e.target] : e.target.querySelectorAll("img");
      for (const img of imgs) img.src = img.dataset.src;
      lazy.unobserve(e.target);
    }
  }, { rootMargin: "600px" });

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }
  function picture(src, alt, observe = true) {
    const img = el("img");
    img.alt = alt;
    img.decoding = "async";
    img.dataset.src = src;
    if (observe) lazy.observe(img);
    return img;
  }
  function say(text) { status.textContent = text; }

  function figure(p, k) {
    const fig = el("figure", p.best ? "best" : "");
    const frame = el("div", "frame");
    const alt = (p.best ? "best copy: " : "") + p.label + " (" + p.facts + ")";
    const inner = p.thumb !== null ? picture(DATA.thumbs[p.thumb], alt) : el("span", "facts", p.note || "no preview");
    if (p.href) {
      const a = el("a");
      a.href = p.href;
      a.title = "open " + p.label;
      a.appendChild(inner);
      frame.appendChild(a);
    } else {
      frame.appendChild(inner);
    }
    fig.appendChild(frame);
    const cap = el("figcaption");
    if (p.best) cap.appendChild(el("div", "bestmark", "★ best copy (kept)"));
    cap.appendChild(el("div", "label", (k + 1) + ". " + p.label));
    cap.appendChild(el("div", "facts", p.facts));
    if (p.note) cap.appendChild(el("div", "facts", p.note));
    fig.appendChild(cap);
    return fig;
  }

  const MODES = [["heatmap", "heatmap"], ["difference", "difference"], ["swipe", "swipe"], ["onion", "onion skin"]];

  function viewer(a, b, pair) {
    const box = el("div", "viewer");
    const modes = el("div", "modes");
    modes.setAttribute("role", "group");
    modes.setAttribute("aria-label", "compare view");
    const stage = el("div", "stage");
    const base = picture(DATA.thumbs[b.thumb], "compared copy: " + b.label, false);
    const top = picture(DATA.thumbs[a.thumb], "reference: " + a.label, false);
    top.classList.add("top");
    const heat = pair.heatmap !== null ? picture(DATA.thumbs[pair.heatmap], "heatmap: where " + b.label + " differs", false) : null;
    const divider = el("div", "divider");
    stage.append(base, top);
    if (heat) stage.appendChild(heat);
    stage.appendChild(divider);
    lazy.observe(stage);
    const range = el("input");
    range.type = "range"; range.min = "0"; range.max = "100"; range.value = "50";
    range.setAttribute("aria-label", "swipe position or opacity");
    const legend = el("div", "legend");
    const caption = el("div", "", "");
    legend.appendChild(caption);
    const ramp = el("div", "ramp");
    const ends = el("div", "ends");
    ends.append(el("span", "", "clear: no difference"), el("span", "", "solid: changed (SSIM loss ≥ 0.5)"));
    legend.append(ramp, ends);
    const buttons = {};
    function set(mode) {
      box.dataset.mode = mode;
      for (const [m] of MODES) buttons[m].setAttribute("aria-pressed", String(m === mode));
      const v = Number(range.value);
      top.style.mixBlendMode = "normal"; top.style.clipPath = "none"; top.style.opacity = "1";
      top.style.display = ""; divider.style.display = "none"; range.hidden = true;
      base.style.filter = "none";
      ramp.hidden = true; ends.hidden = true;
      if (heat) heat.style.display = "none";
      if (mode === "heatmap") {
        top.style.display = "none";
        if (heat) {  // over a grey copy, so the red reads as the heatmap, not the picture
          heat.style.display = ""; ramp.hidden = false; ends.hidden = false;
          base.style.filter = "grayscale(1)";
        }
        caption.textContent = heat ? "Heatmap over the copy (in grey): the more opaque the red, the lower the structural similarity there."
          : "No heatmap: " + (pair.verdict === "identical" ? "identical, nothing differs." : "not compared pixel by pixel.");
      } else if (mode === "difference") {
        top.style.mixBlendMode = "difference";
        caption.textContent = "Difference blend: black where the two agree, bright where they differ.";
      } else if (mode === "swipe") {
        range.hidden = false;
        top.style.clipPath = "inset(0 " + (100 - v) + "% 0 0)";
        divider.style.display = "block"; divider.style.left = v + "%";
        caption.textContent = "Swipe: reference left of the line, copy right of it.";
      } else {
        range.hidden = false;
        top.style.opacity = String(v / 100);
        caption.textContent = "Onion skin: the reference over the copy at " + v + "% opacity.";
      }
    }
    for (const [m, label] of MODES) {
      const btn = el("button", "", label);
      btn.type = "button";
      btn.dataset.mode = m;
      btn.addEventListener("click", () => set(m));
      buttons[m] = btn;
      modes.appendChild(btn);
    }
    range.addEventListener("input", () => set(box.dataset.mode));
    box.append(modes, stage, range, legend);
    box.setMode = set;
    set(heat ? "heatmap" : "swipe");
    return box;
  }

  function copyCommand(cmd, code) {
    const done = () => say("copied: " + cmd);
    const fallback = () => {
      const range = document.createRange();
      range.selectNodeContents(code);
      const sel = window.getSelection();
      sel.removeAllRanges(); sel.addRange(range);
      try { document.execCommand("copy"); done(); } catch (e) { say("select the command and copy it"); }
    };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(cmd).then(done, fallback);
    else fallback();
  }

  function pairBlock(item, pair) {
    const a = item.pictures[0], b = item.pictures[pair.other];
    const block = el("div", "pair");
    const info = el("div", "info");
    const head = el("div");
    head.append(el("span", "badge", pair.verdict), el("span", "", (pair.other + 1) + " vs 1: " + b.label));
    info.appendChild(head);
    const ul = el("ul");
    for (const r of pair.reasons) ul.appendChild(el("li", "", r));
    info.appendChild(ul);
    if (pair.metrics.length) {
      const dl = el("dl");
      for (const [k, v] of pair.metrics) dl.append(el("dt", "", k), el("dd", "", v));
      info.appendChild(dl);
    }
    if (pair.notSame) {
      const btn = el("button", "notsame", "Not the same to me: copy command");
      btn.type = "button";
      const code = el("code", "cmd", pair.notSame);
      btn.addEventListener("click", () => copyCommand(pair.notSame, code));
      info.append(btn, code);
    }
    block.appendChild(info);
    if (a.thumb !== null && b.thumb !== null) block.appendChild(viewer(a, b, pair));
    return block;
  }

  function section(item, index) {
    const s = el("section", "item");
    s.tabIndex = 0;
    s.id = "item-" + index;
    s.setAttribute("aria-label", item.title);
    const h = el("h2");
    h.append(el("span", "badge", item.verdict), el("span", "", item.title));
    s.appendChild(h);
    for (const n of item.notes) s.appendChild(el("p", "notes", n));
    const pics = el("div", "pics");
    item.pictures.forEach((p, k) => pics.appendChild(figure(p, k)));
    s.appendChild(pics);
    for (const pair of item.pairs) s.appendChild(pairBlock(item, pair));
    return s;
  }

  function pages() { return Math.max(1, Math.ceil(shown.length / size)); }

  function render(focusIndex) {
    lazy.disconnect();
    const start = page * size;
    const part = shown.slice(start, start + size);
    const frag = document.createDocumentFragment();
    for (const i of part) frag.appendChild(section(items[i], i));
    list.replaceChildren(frag);
    document.getElementById("pageinfo").textContent = shown.length
      ? "page " + (page + 1) + " of " + pages() + " (" + (start + 1) + "–" + (start + part.length) + " of " + shown.length + ")"
      : "nothing to show";
    document.getElementById("prev").disabled = page === 0;
    document.getElementById("next").disabled = page >= pages() - 1;
    if (focusIndex !== undefined) {
      const secs = list.querySelectorAll("section.item");
      const target = focusIndex < 0 ? secs[secs.length - 1] : secs[focusIndex];
      if (target) { target.focus(); target.scrollIntoView({ block: "start" }); }
    } else {
      window.scrollTo(0, 0);
    }
  }
  function go(p, focusIndex) { page = Math.min(Math.max(0, p), pages() - 1); render(focusIndex); }

  const filterBox = document.getElementById("filters");
  const filterButtons = [];
  function addFilter(name) {
    const count = name === "all" ? items.length : items.filter((it) => it.tag === name).length;
    const btn = el("button", "", name + " (" + count + ")");
    btn.type = "button";
    btn.dataset.filter = name;
    btn.setAttribute("aria-pressed", String(name === filter));
    btn.addEventListener("click", () => {
      filter = name;
      for (const b of filterButtons) b.setAttribute("aria-pressed", String(b.dataset.filter === name));
      shown = items.map((_, i) => i).filter((i) => name === "all" || items[i].tag === name);
      go(0);
    });
    filterButtons.push(btn);
    filterBox.appendChild(btn);
  }
  if (DATA.filters.length) { addFilter("all"); for (const f of DATA.filters) addFilter(f); }

  document.getElementById("prev").addEventListener("click", () => go(page - 1));
  document.getElementById("next").addEventListener("click", () => go(page + 1));
  const themes = ["auto", "light", "dark"];
  document.getElementById("theme").addEventListener("click", (e) => {
    const now = themes[(themes.indexOf(document.documentElement.dataset.theme || "auto") + 1) % 3];
    if (now === "auto") delete document.documentElement.dataset.theme; else document.documentElement.dataset.theme = now;
    e.target.textContent = "theme: " + now;
  });

  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const tag = (e.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "select" || tag === "textarea") return;
    const secs = Array.from(list.querySelectorAll("section.item"));
    const current = secs.indexOf(document.activeElement && document.activeElement.closest ? document.activeElement.closest("section.item") : null);
    if (e.key === "j" || e.key === "k") {
      const next = current + (e.key === "j" ? 1 : -1);
      if (next >= secs.length && page < pages() - 1) go(page + 1, 0);
      else if (next < 0 && current !== -1 && page > 0) go(page - 1, -1);
      else { const t = secs[Math.min(Math.max(next, 0), secs.length - 1)]; if (t) { t.focus(); t.scrollIntoView({ block: "start" }); } }
      e.preventDefault();
    } else if (e.key === "n") { go(page + 1, 0); e.preventDefault(); }
    else if (e.key === "p") { go(page - 1, 0); e.preventDefault(); }
    else if (["1", "2", "3", "4"].includes(e.key) && current >= 0) {
      for (const v of secs[current].querySelectorAll(".viewer")) v.setMode(MODES[Number(e.key) - 1][0]);
      e.preventDefault();
    }
  });

  render();
  window.samepixReport = { items: items.length, pages: pages, page: () => page };
})();
</script>
</body>
</html>
"""
