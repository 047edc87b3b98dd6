"use strict";
// The inspector: the journal API of this sandbox (GET requests, state,
// deliveries), its live feed (EventSource on events), and its two changes
// (resend a delivery, reset). Data goes into the page as text only.
(() => {
  const base = location.pathname.replace(/\/?$/, "/");
  const MAX_ROWS = 1000;
  const $ = (id) => document.getElementById(id);
  const el = (tag, text, cls) => {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  };
  const api = async (path, init) => {
    const response = await fetch(base + path, init);
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error((body.error && body.error.message) || response.status);
    return body.data;
  };
  // A fault of this page is shown, not swallowed.
  const fault = (message) => { $("live").textContent = "page error: " + message; $("live").className = "live"; };
  window.addEventListener("error", (ev) => fault(ev.message));
  window.addEventListener("unhandledrejection", (ev) => fault(String(ev.reason)));
  const statusClass = (s) => "s" + (s ? String(s)[0] : "0");

  let entries = [];
  let selected = null;
  const operations = new Set();

  // ---- the request log -------------------------------------------------
  const wanted = (e) => {
    const op = $("filter-operation").value;
    const status = $("filter-status").value;
    if (op && e.operation !== op) return false;
    if (!status) return true;
    if (status === "closed") return e.status === null;
    return e.status !== null && String(e.status)[0] === status[0];
  };

  function addOperation(op) {
    if (!op || operations.has(op)) return;
    operations.add(op);
    const select = $("filter-operation");
    const names = [...operations].sort();
    const option = el("option", op);
    option.value = op;
    const at = names.indexOf(op);
    select.insertBefore(option, select.options[at + 1] || null);
  }

  function row(e) {
    const tr = el("tr");
    tr.dataset.id = e.id;
    if (selected === e.id) tr.className = "selected";
    tr.append(el("td", e.time.slice(11, 23)));
    const cell = el("td", null, "path");
    const open = el("button", e.method + " " + e.path, "link");
    open.type = "button";
    open.setAttribute("aria-label", "Show request " + e.id + ": " + e.method + " " + e.path + ", status " + (e.status === null ? "no answer" : e.status));
    open.addEventListener("click", () => show(e.id));
    cell.append(open);
    tr.append(cell);
    tr.append(el("td", e.operation || "—"));
    const flags = [e.replayed ? "replayed" : "", e.dry_run ? "dry run" : "", e.fault ? "fault " + e.fault : ""].filter(Boolean);
    tr.append(el("td", (e.status === null ? "no answer" : e.status) + (flags.length ? " (" + flags.join(", ") + ")" : ""), statusClass(e.status)));
    tr.append(el("td", e.duration_ms));
    tr.append(el("td", e.key || "—"));
    return tr;
  }

  function render() {
    const body = $("requests").tBodies[0];
    const shown = entries.filter(wanted);
    body.replaceChildren(...shown.map(row));
    $("count").textContent = "(" + shown.length + (shown.length === entries.length ? "" : " of " + entries.length) + ")";
  }

  function arrive(e) {
    if (entries.some((x) => x.id === e.id)) return;
    entries.unshift(e);
    if (entries.length > MAX_ROWS) entries.length = MAX_ROWS;
    addOperation(e.operation);
    if (wanted(e)) {
      const body = $("requests").tBodies[0];
      body.insertBefore(row(e), body.firstChild);
      while (body.rows.length > MAX_ROWS) body.deleteRow(-1);
    }
    $("count").textContent = "(" + $("requests").tBodies[0].rows.length + (entries.every(wanted) ? "" : " of " + entries.length) + ")";
  }

  async function loadLog() {
    const list = await api("requests?view=summary&limit=" + MAX_ROWS);
    // Keep what the feed brought after the journal answered.
    const newest = list.length ? list[0].id : 0;
    entries = entries.filter((e) => e.id > newest).concat(list).slice(0, MAX_ROWS);
    list.forEach((e) => addOperation(e.operation));
    render();
  }

  // ---- one request's detail ---------------------------------------------
  const pretty = (text) => {
    if (text === null || text === undefined) return "";
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch (_) { return text; }
  };
  const headerText = (headers) => headers.map(([n, v]) => n + ": " + v).join("\n");
  const quote = (s) => "'" + String(s).replace(/'/g, "'\\''") + "'";
  const SKIPPED = new Set(["host", "content-length", "connection", "accept-encoding", "user-agent", "x-api-key", "accept", "traceparent", "tracestate"]);

  function curl(e) {
    const parts = ["curl", "-X", e.method, quote(location.origin + e.path)];
    if (e.key) parts.push("-H", '"X-API-Key: $TOKPORTAL_API_KEY"');
    let multipart = false;
    for (const [name, value] of e.request.headers) {
      if (SKIPPED.has(name)) continue;
      if (name === "content-type" && value.startsWith("multipart/")) { multipart = true; continue; }
      parts.push("-H", quote(name + ": " + value));
    }
    if (e.request.body && !multipart) parts.push("--data-raw", quote(e.request.body));
    let text = parts.join(" ");
    if (multipart) text += "  # the multipart body is not reproduced: add --form fields and --form file=@PATH";
    else if (e.request.truncated) text += "  # the body was cut at 64 KiB in the journal";
    return text;
  }

  async function show(id) {
    selected = id;
    for (const tr of $("requests").tBodies[0].rows) tr.className = Number(tr.dataset.id) === id ? "selected" : "";
    let e;
    try { e = await api("requests/" + id); } catch (err) {
      $("detail-empty").textContent = "Request " + id + " is no longer in the journal (" + err.message + ").";
      $("detail-empty").hidden = false; $("detail-body").hidden = true; return;
    }
    if (selected !== id) return;
    const facts = [
      ["Request", e.method + " " + e.path], ["Operation", e.operation || "—"],
      ["Status", e.status === null ? "no answer (connection closed)" : e.status], ["Duration", e.duration_ms + " ms"],
      ["Time", e.time], ["Request id", e.request_id], ["Key", e.key || "—"],
      ["Idempotency key", e.idempotency_key || "—"], ["Replayed", e.replayed ? "yes" : "no"],
      ["Dry run", e.dry_run ? "yes" : "no"], ["Fault", e.fault || "—"],
    ];
    $("facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", k), el("dd", v)]));
    const violations = e.violations.map((v) => el("li", (v.field || "?") + " (" + (v.in || "?") + "): " + (v.message || "")));
    $("violations").replaceChildren(...(violations.length ? violations : [el("li", "none", "muted")]));
    const warnings = e.warnings.map((w) => el("li", w));
    $("warnings").replaceChildren(...(warnings.length ? warnings : [el("li", "none", "muted")]));
    $("curl").textContent = curl(e);
    $("copied").textContent = "";
    $("request-headers").textContent = headerText(e.request.headers);
    $("request-body").textContent = e.request.body ? pretty(e.request.body) + (e.request.truncated ? "\n… (" + e.request.body_bytes + " bytes in all)" : "") : "(empty)";
    const r = e.response;
    $("response-headers").textContent = r ? headerText(r.headers) : "(no answer)";
    $("response-body").textContent = !r ? "(no answer)" : r.withheld ? "(withheld: " + r.withheld + ")" : r.body ? pretty(r.body) + (r.truncated ? "\n… (" + r.body_bytes + " bytes in all)" : "") : "(empty)";
    $("detail-empty").hidden = true;
    $("detail-body").hidden = false;
  }

  $("copy-curl").addEventListener("click", async () => {
    const text = $("curl").textContent;
    try { await navigator.clipboard.writeText(text); $("copied").textContent = "Copied."; }
    catch (_) {
      const range = document.createRange(); range.selectNodeContents($("curl"));
      const sel = getSelection(); sel.removeAllRanges(); sel.addRange(range);
      $("copied").textContent = "Selected: press Ctrl+C to copy.";
    }
  });

  // ---- state per key ------------------------------------------------------
  async function loadState() {
    const keys = await api("state");
    if (!keys.length) { $("keys").replaceChildren(el("p", "No key has called yet.", "muted")); return; }
    $("keys").replaceChildren(...keys.map((k) => {
      const box = el("div", null, "key");
      box.append(el("h3", "key " + k.key));
      const list = el("ul");
      list.append(el("li", "Credits: " + k.credits.balance));
      const items = [["bundles", k.bundles], ["accounts", k.accounts], ["uploads", k.uploads], ["webhook endpoints", k.webhook_endpoints], ["comment tasks", k.comment_tasks], ["transactions", k.transactions]];
      for (const [name, arr] of items) list.append(el("li", arr.length + " " + name));
      box.append(list);
      box.append(clockOf(k));
      if (k.bundles.length) {
        const bundles = el("ul");
        for (const b of k.bundles.slice(-20).reverse()) {
          const videos = (b.videos || []).map((v) => v.status).join(", ");
          bundles.append(el("li", "bundle " + b.id + ": " + b.status + (b.account ? "; account " + b.account.status : "") + (videos ? "; videos " + videos : "")));
        }
        box.append(el("p", "Newest bundles:", "muted"), bundles);
      }
      return box;
    }));
  }

  // A key's clock: real time, or simulated with the manager's steps waiting
  // and a control that advances to the next one.
  function clockOf(k) {
    const c = k.clock;
    const box = el("div", null, "clock");
    box.dataset.key = k.key;
    if (!c || !c.simulated) {
      box.append(el("p", "Clock: real time (the manager works at once)", "muted"));
      return box;
    }
    box.append(el("p", "Clock: " + c.now + " (simulated)", "clock-now"));
    if (c.pending.length) {
      const steps = el("ol", null, "pending");
      for (const p of c.pending.slice(0, 10)) {
        steps.append(el("li", p.at + " " + p.step + " (bundle " + p.bundle_id + (p.position ? ", video " + p.position : "") + ")"));
      }
      if (c.pending.length > 10) steps.append(el("li", "… and " + (c.pending.length - 10) + " more", "muted"));
      box.append(el("p", "Waiting on the clock:", "muted"), steps);
      const next = el("button", "Advance to next step (" + c.next_at + ")");
      next.type = "button";
      next.className = "advance";
      next.setAttribute("aria-label", "Advance key " + k.key + "'s clock to its next step, at " + c.next_at);
      next.addEventListener("click", async () => {
        next.disabled = true;
        try {
          await api("clock/advance?key=" + encodeURIComponent(k.key), {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ to: c.next_at }),
          });
        } catch (err) { next.title = err.message; fault(err.message); }
        await loadState();
      });
      box.append(next);
    } else {
      box.append(el("p", "Nothing waits on the clock.", "muted"));
    }
    for (const h of c.held || []) {
      box.append(el("p", "Held: bundle " + h.bundle_id + " video " + h.position + " (" + h.step + ") waits for fixBundleVideoDownload", "s4"));
    }
    return box;
  }

  // ---- deliveries -----------------------------------------------------------
  async function loadDeliveries() {
    const list = await api("deliveries?limit=200");
    $("deliveries-empty").hidden = list.length > 0;
    $("deliveries").tBodies[0].replaceChildren(...list.map((d) => {
      const tr = el("tr");
      tr.dataset.id = d.id;
      tr.append(el("td", (d.created_at || "").slice(11, 19)));
      tr.append(el("td", d.event_type));
      tr.append(el("td", d.endpoint_url || "(endpoint deleted)", "path"));
      const last = d.tries.length ? d.tries[d.tries.length - 1] : null;
      const status = d.status + (last ? " (" + (last.response_status || last.error || "no answer") + ")" : "");
      tr.append(el("td", status, d.success ? "s2" : d.success === false ? "s5" : ""));
      const tries = el("td", String(d.attempts));
      tries.title = d.tries.map((t) => "#" + t.attempt + " " + t.at + ": " + (t.response_status || t.error)).join("\n");
      tr.append(tries);
      const cell = el("td");
      const resend = el("button", "Resend");
      resend.type = "button";
      resend.setAttribute("aria-label", "Resend delivery " + d.id + " (" + d.event_type + ")");
      resend.disabled = !d.endpoint_url;
      resend.addEventListener("click", async () => {
        resend.disabled = true;
        try { await api("deliveries/" + d.id + "/resend", { method: "POST" }); } catch (err) { resend.title = err.message; }
        await loadDeliveries();
      });
      cell.append(resend);
      tr.append(cell);
      return tr;
    }));
  }

  // What the live API's answers (--proxy) had that the contract does not say.
  async function loadDrift() {
    const d = await api("drift");
    $("drift").hidden = !d.proxy && !d.findings;
    $("drift-summary").textContent = "(" + d.findings + " in " + d.exchanges + " live answers" + (d.proxy ? " from " + d.proxy : "") + ")";
    $("drift-counts").tBodies[0].replaceChildren(...d.counts.map((c) => {
      const tr = el("tr");
      tr.append(el("td", c.kind), el("td", c.operation, "path"), el("td", c.count));
      return tr;
    }));
    $("drift-examples").replaceChildren(...d.examples.map((f) => el("li", f.kind + " " + f.operation + (f.at ? " " + f.at : "") + ": " + f.detail)));
  }

  // Refreshes after a burst, at most every 300 ms.
  let pending = null;
  const refresh = () => {
    if (pending) return;
    pending = setTimeout(() => { pending = null; loadState().catch(() => {}); loadDeliveries().catch(() => {}); loadDrift().catch(() => {}); }, 300);
  };

  // ---- the changes ------------------------------------------------------------
  $("reset").addEventListener("click", async () => {
    await api("reset", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ all: true }) });
    emptied();
  });
  $("clear-journal").addEventListener("click", async () => {
    await api("requests", { method: "DELETE" });
    emptied();
  });
  function emptied() {
    entries = []; selected = null;
    render();
    $("detail-body").hidden = true;
    $("detail-empty").textContent = "Select a request in the log.";
    $("detail-empty").hidden = false;
    refresh();
  }

  $("filter-operation").addEventListener("change", render);
  $("filter-status").addEventListener("change", render);
  document.querySelector("form.filters").addEventListener("submit", (ev) => ev.preventDefault());

  // ---- the live feed ----------------------------------------------------------
  function follow() {
    const feed = new EventSource(base + "events");
    feed.addEventListener("ready", () => {
      $("live").textContent = "live";
      $("live").className = "live on";
      // Whatever happened while away.
      loadLog().catch(() => {});
      refresh();
    });
    feed.addEventListener("request", (m) => { arrive(JSON.parse(m.data)); refresh(); });
    feed.addEventListener("delivery", () => refresh());
    feed.addEventListener("cleared", () => emptied());
    feed.addEventListener("lagged", () => loadLog().catch(() => {}));
    feed.onerror = () => { $("live").textContent = "reconnecting…"; $("live").className = "live"; };
  }

  follow();
})();
