// trainsim explorer: plain JavaScript, no build step, no network beyond this server.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  set: {},          // form overrides by dotted path (null: remove the field)
  current: null,    // last run shown
  pinned: null,     // run kept as A for comparison
  controller: null, // aborts a superseded request
  timer: null,
  seq: 0,
};

function fmt(x, d) { return Number(x).toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d }); }
function svgUrl(svg) { return URL.createObjectURL(new Blob([svg], { type: "image/svg+xml" })); }
function status(text) { $("status").textContent = text; }

function option(sel, value, label) {
  const o = document.createElement("option");
  o.value = String(value);
  o.textContent = label === undefined ? String(value) : label;
  sel.appendChild(o);
}

function fill(sel, values, current, labels) {
  sel.innerHTML = "";
  const vals = values.map(String);
  if (current !== undefined && current !== null && !vals.includes(String(current))) vals.push(String(current));
  for (const v of vals) option(sel, v, labels ? labels(v) : undefined);
  if (current !== undefined && current !== null) sel.value = String(current);
}

function divisors(n, cap) {
  const out = [];
  for (let d = 1; d <= Math.min(n, cap); d++) if (n % d === 0) out.push(d);
  return out;
}

// Controls follow the resolved plan of the last run.
// a split control: "even", "balanced" (a rule), and the resolved list when uneven (which
// "balanced" also resolves to: the rule stays selected while it is the one set)
function splitControl(id, list) {
  const sel = $(id);
  sel.innerHTML = "";
  option(sel, "even");
  option(sel, "balanced");
  const custom = list ? "list:" + list.join(",") : null;
  if (custom) option(sel, custom, list.join("+"));
  const set = state.set[sel.dataset.path];
  sel.value = set === "balanced" ? "balanced" : custom || "even";
}

function syncForm(f) {
  fill($("tp"), divisors(f.num_heads, 64).filter((d) => d <= f.num_gpus), f.tp);
  fill($("pp"), divisors(f.num_layers, 128).filter((d) => d <= f.num_gpus && d <= 64), f.pp);
  const dp = $("dp");
  dp.innerHTML = "";
  option(dp, "auto", `auto (${f.dp})`);
  for (const d of [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048]) if (d <= f.num_gpus) option(dp, d);
  dp.value = state.set["parallel.dp"] != null ? String(state.set["parallel.dp"]) : "auto";
  const ep = $("ep");
  const etp = $("expert_tp");
  const cp = $("cp");
  if (f.num_experts) {
    ep.disabled = false; fill(ep, divisors(f.num_experts, 1024), f.ep);
    etp.disabled = false; fill(etp, divisors(f.expert_ffn_hidden_size, 8), f.expert_tp);
    cp.disabled = true; fill(cp, [1], 1, () => "1 (dense models only)");
  } else {
    ep.disabled = true; fill(ep, [1], 1, () => "1 (dense model)");
    etp.disabled = true; fill(etp, [1], 1, () => "1 (dense model)");
    cp.disabled = false; fill(cp, [1, 2, 4, 8, 16, 32].filter((d) => d <= f.num_gpus), f.cp);
  }
  fill($("virtual_stages"), [1, 2, 3, 4, 6, 8], f.virtual_stages);
  fill($("micro_batch_size"), [1, 2, 4, 8, 16], f.micro_batch_size);
  fill($("recompute"), ["none", "selective", "full"], f.recompute);
  fill($("zero_stage"), [0, 1, 2, 3], f.zero_stage);
  fill($("schedule"), f.schedules, f.schedule);
  fill($("ranks"), f.rank_modes, f.ranks);
  for (const id of ["stage_layers", "replica_micro_batches"]) splitControl(id, f[id]);
  $("num_gpus").value = f.num_gpus;
  fill($("gpus_per_node"), [1, 2, 4, 8, 16, 72], f.gpus_per_node);
  const gpu = $("gpu");
  // a cluster of GPU groups has no one GPU to pick: its groups are edited in the TOML
  gpu.disabled = Boolean(f.gpu_groups);
  if (f.gpu_groups) {
    if (!gpu.dataset.presets) gpu.dataset.presets = gpu.innerHTML;
    gpu.innerHTML = "";
    option(gpu, f.gpu, f.gpu_groups);
  } else if (gpu.dataset.presets) {
    gpu.innerHTML = gpu.dataset.presets;
    delete gpu.dataset.presets;
  }
  gpu.value = f.gpu;
  if (gpu.value !== f.gpu) { option(gpu, f.gpu); gpu.value = f.gpu; }
  $("global_batch_size").value = f.global_batch_size;
  $("seq_length").value = f.seq_length;
}

function showError(body) {
  const box = $("error");
  box.textContent = "error: " + body.error;
  box.hidden = false;
  markLine(body.line || null);
  for (const c of document.querySelectorAll("#headline .card")) c.classList.add("stale");
  if (body.line) {
    const ta = $("editor");
    const lines = ta.value.split("\n");
    let start = 0;
    for (let i = 0; i < body.line - 1 && i < lines.length; i++) start += lines[i].length + 1;
    const end = start + (lines[body.line - 1] || "").length;
    ta.setSelectionRange(start, end);
    ta.scrollTop = Math.max(0, (body.line - 4) * 17.4);
    syncGutter();
  }
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
  markLine(null);
  for (const c of document.querySelectorAll("#headline .card")) c.classList.remove("stale");
}

function markLine(line) {
  const n = $("editor").value.split("\n").length;
  const g = $("gutter");
  g.innerHTML = "";
  for (let i = 1; i <= n; i++) {
    const s = document.createElement("span");
    s.textContent = String(i);
    if (i === line) { s.className = "err"; s.title = "the error is on this line"; }
    g.appendChild(s);
    g.appendChild(document.createTextNode("\n"));
  }
  syncGutter();
}
function syncGutter() { $("gutter").scrollTop = $("editor").scrollTop; }

function render(r) {
  state.current = r;
  clearError();
  $("step-time").textContent = fmt(r.step_time_s, 3) + " s";
  $("step-spread").textContent = r.step_spread;
  $("throughput").textContent = fmt(r.tokens_per_s, 0) + " tok/s";
  $("throughput-gpu").textContent = fmt(r.tokens_per_s_per_gpu, 1) + " tokens/s per GPU";
  $("mfu").textContent = fmt(r.mfu_pct, 1) + "% / " + fmt(r.hfu_pct, 1) + "%";
  $("bubble").textContent = "pipeline bubble " + fmt(r.bubble_pct, 1) + "%";
  $("memory").textContent = fmt(r.memory.total_gib, 1) + " of " + fmt(r.memory.capacity_gib, 1) + " GiB";
  $("memory-verdict").textContent = r.memory.verdict.replace(/^.*? — /, "");
  const card = $("memory").parentElement;
  card.classList.toggle("oom", !r.memory.fits);
  card.classList.toggle("tight", r.memory.fits && / at risk/.test(r.memory.verdict));
  $("plan-label").textContent = `${r.name}: ${r.model} on ${r.num_gpus} x ${r.gpu} — ${r.plan} (simulated in ${fmt(r.wall_s, 2)} s)`;
  const bt = $("breakdown");
  bt.innerHTML = "<tr><th>category</th><th>s per step</th><th>share</th><th></th></tr>";
  for (const [label, s] of r.breakdown) {
    const share = 100 * s / r.step_time_s;
    const tr = document.createElement("tr");
    tr.innerHTML = `<td></td><td>${fmt(s, 3)}</td><td>${fmt(share, 1)}%</td><td><span class="bar" style="width:${Math.max(1, share * 2.4)}px"></span></td>`;
    tr.firstChild.textContent = label;
    bt.appendChild(tr);
  }
  const charts = $("charts");
  for (const img of charts.querySelectorAll("img")) URL.revokeObjectURL(img.src);
  charts.innerHTML = "";
  for (const [name, svg] of Object.entries(r.charts)) {
    const img = document.createElement("img");
    img.alt = name + " chart";
    img.id = "chart-" + name;
    img.src = svgUrl(svg);
    charts.appendChild(img);
  }
  $("summary").textContent = r.summary;
  $("dl-json").href = `/api/runs/${r.id}/results.json`;
  $("dl-csv").href = `/api/runs/${r.id}/summary.csv`;
  $("dl-html").href = `/api/runs/${r.id}/report.html`;
  if (r.form) syncForm(r.form);
  if (state.pinned) compare();
}

async function run(fromEditor) {
  if (fromEditor) state.set = {};
  if (state.controller) state.controller.abort();
  const controller = new AbortController();
  state.controller = controller;
  const seq = ++state.seq;
  status("simulating…");
  const t0 = performance.now();
  try {
    const res = await fetch("/api/run", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ scenario: $("editor").value, set: state.set }),
      signal: controller.signal,
    });
    const body = await res.json();
    if (seq !== state.seq) return;
    if (!res.ok) { showError(body); status("error"); return; }
    render(body);
    status(`done in ${fmt((performance.now() - t0) / 1000, 2)} s`);
  } catch (e) {
    if (e.name !== "AbortError") { showError({ error: String(e) }); status("error"); }
  }
}

function schedule() {
  clearTimeout(state.timer);
  state.timer = setTimeout(() => run(false), 120);
}

function onControl(ev) {
  const el = ev.target;
  const path = el.dataset.path;
  if (!path) return;
  let v = el.value;
  if (el.id === "dp" && v === "auto") v = null;
  else if (v.startsWith("list:")) v = v.slice(5).split(",").map(Number);
  else if (["stage_layers", "replica_micro_batches"].includes(el.id) && v === "even") v = null;
  else if (/^-?\d+$/.test(v)) v = parseInt(v, 10);
  state.set[path] = v;
  // derived fields follow unless chosen: dp from GPUs / (tp x pp), the schedule from virtual stages
  if (["tp", "pp", "num_gpus"].includes(el.id) && $("dp").value === "auto") state.set["parallel.dp"] = null;
  if (el.id === "virtual_stages" && !("parallel.schedule" in state.set)) state.set["parallel.schedule"] = null;
  schedule();
}

async function loadPreset(name) {
  const res = await fetch("/api/presets/" + encodeURIComponent(name));
  const body = await res.json();
  $("editor").value = body.scenario;
  markLine(null);
  await run(true);
}

function compareRow(label, a, b, unit, digits, lowerBetter) {
  const d = b - a;
  const better = lowerBetter ? d < 0 : d > 0;
  const cls = Math.abs(d) < 1e-9 ? "" : better ? "good" : "bad";
  return `<tr><td>${label}</td><td>${fmt(a, digits)} ${unit}</td><td>${fmt(b, digits)} ${unit}</td><td class="${cls}">${d >= 0 ? "+" : ""}${fmt(d, digits)} ${unit}</td></tr>`;
}

async function compare() {
  const a = state.pinned, b = state.current;
  if (!a || !b) return;
  $("compare").hidden = false;
  $("compare-table").innerHTML = "<tr><th></th><th>A (pinned)</th><th>B (current)</th><th>B − A</th></tr>" +
    compareRow("step time", a.step_time_s, b.step_time_s, "s", 3, true) +
    compareRow("throughput", a.tokens_per_s, b.tokens_per_s, "tok/s", 0, false) +
    compareRow("MFU", a.mfu_pct, b.mfu_pct, "%", 1, false) +
    compareRow("bubble", a.bubble_pct, b.bubble_pct, "%", 1, true) +
    compareRow("memory", a.memory.total_gib, b.memory.total_gib, "GiB", 1, true);
  for (const [slot, r] of [["compare-a", a], ["compare-b", b]]) {
    const box = $(slot);
    box.innerHTML = "";
    const img = document.createElement("img");
    img.src = svgUrl(r.charts.breakdown);
    img.alt = "breakdown";
    box.appendChild(img);
  }
  try {
    const res = await fetch(`/api/compare?a=${a.id}&b=${b.id}`);
    const body = await res.json();
    $("compare-text").textContent = res.ok ? body.text : body.error;
  } catch (e) { $("compare-text").textContent = String(e); }
}

function values(text) {
  return text.split(",").map((s) => s.trim()).filter((s) => s.length).map((s) => (/^-?\d+(\.\d+)?$/.test(s) ? Number(s) : s));
}

async function startJob(kind) {
  const body = { scenario: $("editor").value, set: state.set };
  if (kind === "sweep") {
    body.axes = [{ field: $("ax1-field").value.trim(), values: values($("ax1-values").value) }];
    if ($("ax2-field").value.trim()) body.axes.push({ field: $("ax2-field").value.trim(), values: values($("ax2-values").value) });
  } else {
    body.zero = values($("search-zero").value).map(Number);
    body.objective = $("search-objective").value;
    body.top = Number($("search-top").value);
  }
  $("job-result").innerHTML = "";
  const res = await fetch("/api/" + kind, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const out = await res.json();
  if (!res.ok) { $("job-result").innerHTML = `<div class="error"></div>`; $("job-result").firstChild.textContent = "error: " + out.error; return; }
  $("job-progress").hidden = false;
  $("job-text").textContent = kind + " queued";
  const es = new EventSource(`/api/jobs/${out.job}/events`);
  es.addEventListener("progress", (e) => {
    const p = JSON.parse(e.data);
    if (p.total) { $("job-bar").max = p.total; $("job-bar").value = p.done; $("job-text").textContent = `${kind}: ${p.done} / ${p.total}`; }
  });
  es.addEventListener("done", (e) => { es.close(); $("job-bar").value = $("job-bar").max; $("job-text").textContent = kind + " done"; showJob(out.job, JSON.parse(e.data)); });
  es.addEventListener("failed", (e) => { es.close(); $("job-text").textContent = kind + " failed: " + JSON.parse(e.data).error; });
}

function showJob(id, r) {
  const box = $("job-result");
  box.innerHTML = "";
  const links = document.createElement("div");
  links.className = "row";
  for (const f of r.files) { const a = document.createElement("a"); a.className = "button"; a.href = `/api/jobs/${id}/files/${f}`; a.textContent = f; a.download = f; links.appendChild(a); }
  box.appendChild(links);
  const t = document.createElement("table");
  if (r.kind === "sweep") {
    const p = document.createElement("p");
    p.textContent = `${r.points} points, ${r.feasible} feasible; fastest first:`;
    box.appendChild(p);
    t.innerHTML = `<tr>${r.axes.map((a) => `<th>${a}</th>`).join("")}<th>step time (s)</th><th>MFU</th><th>memory (GiB)</th><th>note</th></tr>`;
    for (const row of r.rows.slice(0, 12)) {
      const tr = document.createElement("tr");
      tr.innerHTML = row.axes.map(() => "<td></td>").join("") + "<td></td><td></td><td></td><td></td>";
      row.axes.forEach((v, i) => (tr.children[i].textContent = v));
      const k = row.axes.length;
      tr.children[k].textContent = row.feasible ? fmt(row.step_time_s, 3) : "–";
      tr.children[k + 1].textContent = row.mfu_pct !== undefined ? fmt(row.mfu_pct, 1) + "%" : "";
      tr.children[k + 2].textContent = row.memory_gib !== undefined ? fmt(row.memory_gib, 1) : "";
      tr.children[k + 3].textContent = row.reason || "";
      t.appendChild(tr);
    }
  } else {
    const p = document.createElement("p");
    p.textContent = `${r.enumerated} plans, ${r.feasible} valid and fitting, ${r.simulated} simulated in ${fmt(r.wall_s, 2)} s; objective ${r.objective}:`;
    box.appendChild(p);
    t.innerHTML = "<tr><th>#</th><th>plan</th><th>step time (s)</th><th>MFU</th><th>memory (GiB)</th><th></th></tr>";
    for (const row of r.top) {
      const tr = document.createElement("tr");
      tr.innerHTML = `<td>${row.rank}</td><td></td><td>${fmt(row.step_time_s, 3)}</td><td>${fmt(row.mfu_pct, 1)}%</td><td>${fmt(row.memory_gib, 1)}</td><td><button type="button">use this plan</button></td>`;
      tr.children[1].textContent = row.plan;
      tr.children[1].title = row.why;
      tr.querySelector("button").addEventListener("click", () => { Object.assign(state.set, row.set); run(false); window.scrollTo(0, 0); });
      t.appendChild(tr);
    }
  }
  box.appendChild(t);
  for (const c of r.charts) { const img = document.createElement("img"); img.src = `/api/jobs/${id}/files/${c}?t=${Date.now()}`; img.alt = c; box.appendChild(img); }
}

async function init() {
  const res = await fetch("/api/presets");
  const p = await res.json();
  $("version").textContent = "trainsim " + p.version;
  for (const s of p.scenarios) option($("preset"), s.name);
  for (const g of p.gpus) option($("gpu"), g);
  $("preset").addEventListener("change", () => loadPreset($("preset").value));
  for (const el of document.querySelectorAll("[data-path]")) el.addEventListener("change", onControl);
  $("run-editor").addEventListener("click", () => run(true));
  $("editor").addEventListener("input", () => markLine(null));
  $("editor").addEventListener("scroll", syncGutter);
  $("editor").addEventListener("keydown", (e) => { if ((e.ctrlKey || e.metaKey) && e.key === "Enter") run(true); });
  $("upload").addEventListener("change", async () => {
    const f = $("upload").files[0];
    if (!f) return;
    $("editor").value = await f.text();
    run(true);
  });
  $("pin").addEventListener("click", () => { state.pinned = state.current; $("unpin").hidden = false; compare(); });
  $("unpin").addEventListener("click", () => { state.pinned = null; $("unpin").hidden = true; $("compare").hidden = true; });
  $("sweep").addEventListener("click", () => startJob("sweep"));
  $("search").addEventListener("click", () => startJob("search"));
  if (p.scenarios.length) await loadPreset(p.scenarios[0].name);
}

init();
