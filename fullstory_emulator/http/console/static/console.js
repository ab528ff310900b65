// The emulator's console. Plain JavaScript, no build step: it reads and changes the emulator only
// through the control API (/__emulator/*), polling once a second, so a script can do all it does.
"use strict";

(() => {
  const API = "/__emulator";
  const POLL_MS = 1000;
  const JOURNAL_LIMIT = 300;
  const TENANTS_EVERY = 5; // polls between refreshes of the tenant list
  const $ = (id) => document.getElementById(id);

  const session = {
    token: sessionStorage.getItem("fse.token") || "",
    tenant: sessionStorage.getItem("fse.tenant") || "",
    unlocked: false,
    view: "operations",
    polls: 0,
    timer: 0,
    frozen: false,
    segments: null,
    fallback: null, // {tenant, label}: the demo key's tenant, where exports start if none is chosen
    labels: {}, // tenant -> the label a person knows it by
    seenSteering: "",
    busy: false, // a poll is running
    again: false, // poll again as soon as it ends
  };

  class Locked extends Error {}
  class Failure extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  // -- the control API ---------------------------------------------------------------------
  async function call(method, path, body, extra = {}) {
    const headers = { Accept: "application/json" };
    if (session.token) headers["X-Emulator-Token"] = session.token;
    if (session.tenant) headers["X-Emulator-Tenant"] = session.tenant;
    Object.assign(headers, extra);
    const init = { method, headers, cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(API + path, init);
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (_) {
      data = null;
    }
    if (response.status === 401) {
      lock(session.token ? "That token was not accepted." : "");
      throw new Locked();
    }
    if (!response.ok) {
      throw new Failure(response.status, (data && data.message) || `HTTP ${response.status}`);
    }
    return data;
  }

  // Run a change the person asked for; say what happened in the status line.
  async function act(what, change) {
    try {
      const result = await change();
      say(what);
      await poll(true);
      return result;
    } catch (error) {
      if (!(error instanceof Locked)) say(`${error.message}`, true);
      return undefined;
    }
  }

  function say(message, bad = false) {
    const status = $("status");
    status.textContent = message;
    status.title = message; // one line, so nothing below moves; the whole text on hover
    status.classList.toggle("bad", bad);
  }

  // -- small DOM helpers -------------------------------------------------------------------
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value);
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  function setText(node, text) {
    const value = text === null || text === undefined ? "" : String(text);
    if (node.textContent !== value) node.textContent = value;
  }

  // Keep `container`'s children in the order of `items`, reusing each item's element (by key),
  // so rows that did not change are not touched and open rows stay open.
  function reconcile(container, items, keyOf, create, update) {
    const existing = new Map();
    for (const child of Array.from(container.children)) existing.set(child.dataset.key, child);
    let previous = null;
    for (const item of items) {
      const key = keyOf(item);
      let node = existing.get(key);
      if (node) existing.delete(key);
      else {
        node = create(item);
        node.dataset.key = key;
      }
      update(node, item);
      const wanted = previous ? previous.nextSibling : container.firstChild;
      if (node !== wanted) container.insertBefore(node, wanted);
      previous = node;
    }
    for (const node of existing.values()) node.remove();
  }

  function shortTime(ts) {
    if (!ts) return "";
    return ts.replace("T", " ").replace(/\.\d+Z$/, "").replace(/Z$/, "");
  }

  function timeNode(ts) {
    return el("time", { datetime: ts || "", title: ts || "", text: shortTime(ts) });
  }

  // -- token gate ---------------------------------------------------------------------------
  function lock(message) {
    session.unlocked = false;
    clearTimeout(session.timer);
    $("connecting").hidden = true;
    $("app").hidden = true;
    $("controls").hidden = true;
    $("gate").hidden = false;
    setText($("gate-error"), message);
    say("");
    $("gate-token").focus();
  }

  function unlock() {
    session.unlocked = true;
    $("connecting").hidden = true;
    $("gate").hidden = true;
    $("app").hidden = false;
    $("controls").hidden = false;
    showView();
  }

  $("gate-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    session.token = $("gate-token").value;
    sessionStorage.setItem("fse.token", session.token);
    $("gate-token").value = "";
    await start();
  });

  // -- clock ----------------------------------------------------------------------------------
  function showClock(clock) {
    session.frozen = clock.frozen;
    const now = $("clock-now");
    now.setAttribute("datetime", clock.now);
    setText(now, `${shortTime(clock.now)} UTC`);
    const state = $("clock-state");
    setText(state, clock.frozen ? "frozen" : "running");
    state.classList.toggle("frozen", clock.frozen);
    const freeze = $("freeze");
    freeze.setAttribute("aria-pressed", String(clock.frozen));
    setText(freeze, clock.frozen ? "Unfreeze" : "Freeze");
  }

  for (const button of document.querySelectorAll("[data-advance]")) {
    button.addEventListener("click", () => {
      const seconds = Number(button.dataset.advance);
      act(`Clock advanced by ${button.textContent.replace("+", "")}`, () =>
        call("POST", "/clock", { advance: seconds }).then(showClock),
      );
    });
  }
  $("freeze").addEventListener("click", () => {
    const freeze = !session.frozen;
    act(freeze ? "Clock frozen" : "Clock running", () =>
      call("POST", "/clock", { freeze }).then(showClock),
    );
  });
  $("clock-set").addEventListener("submit", (event) => {
    event.preventDefault();
    // YYYY-MM-DDTHH:MM[:SS[.fff]][Z], always UTC, whatever the browser's locale
    let value = $("clock-set-value").value.trim().replace(" ", "T").replace(/Z$/i, "");
    if (value.length === 16) value += ":00";
    act(`Clock set to ${value.replace("T", " ")} UTC`, () =>
      call("POST", "/clock", { set: `${value}Z` }).then(showClock),
    );
  });

  // -- tenants ----------------------------------------------------------------------------
  // A tenant as a person knows it: a keys file's name, or the key's region and first
  // characters (`na1.emul…`), with the start of its id to tell two alike apart.
  function tenantName(tenant) {
    const label = session.labels[tenant];
    if (!label || label === tenant) return tenant;
    const demo = session.fallback && session.fallback.tenant === tenant ? " (demo key)" : "";
    return `${label}${demo} · ${tenant.slice(0, 6)}`;
  }

  function showTenants(data) {
    session.fallback = data.default || null;
    Object.assign(session.labels, data.labels || {});
    if (session.fallback) session.labels[session.fallback.tenant] = session.fallback.label;
    const select = $("tenant");
    const wanted = ["", ...data.tenants];
    for (const extra of [session.tenant, session.fallback && session.fallback.tenant]) {
      if (extra && !wanted.includes(extra)) wanted.push(extra);
    }
    reconcile(
      select,
      wanted,
      (t) => `t:${t}`,
      (t) => el("option", { value: t, text: t ? tenantName(t) : "All tenants" }),
      (option, t) => setText(option, t ? tenantName(t) : "All tenants"),
    );
    select.value = session.tenant;
    if (session.view === "segments") refreshSegmentButtons();
  }

  function chooseTenant(tenant) {
    session.tenant = tenant;
    sessionStorage.setItem("fse.tenant", tenant);
    session.seenSteering = "";
    poll(true);
  }

  // A key pasted here is sent once, to learn its tenant; only the tenant is kept.
  $("use-key").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("use-key-value").value.trim();
    $("use-key-value").value = "";
    act("Tenant of that key chosen", async () => {
      const data = await fetch(`${API}/tenants`, {
        headers: { Accept: "application/json", Authorization: `Basic ${key}`, ...(session.token ? { "X-Emulator-Token": session.token } : {}) },
        cache: "no-store",
      }).then(async (response) => {
        const body = await response.json().catch(() => null);
        if (!response.ok) throw new Failure(response.status, (body && body.message) || `HTTP ${response.status}`);
        return body;
      });
      Object.assign(session.labels, data.labels || {});
      chooseTenant(data.tenants[0]);
    });
  });

  $("tenant").addEventListener("change", () => chooseTenant($("tenant").value));

  // -- operations ----------------------------------------------------------------------------
  function createOperationRow(op) {
    const row = el("tr", { class: "op" });
    const cell = (label, className) => el("td", { "data-label": label, class: className });
    const name = el("span", { class: "op-name" });
    const id = el("span", { class: "op-id mono", text: op.id });
    const progress = el(
      "div",
      { class: "progress" },
      el(
        "div",
        { class: "bar-track", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-label": `Progress of ${op.id}` },
        el("div", { class: "bar-fill" }),
      ),
      el("span", { class: "pct" }),
    );
    const state = el("span", { class: "badge op-state" });
    const error = el("span", { class: "op-error" });
    row.append(
      cell("Operation", "c-op").appendChild(el("div", {}, name, id)).parentNode,
      cell("Tenant", "c-tenant mono"),
      cell("State").appendChild(el("div", {}, state, error)).parentNode,
      cell("Progress").appendChild(progress).parentNode,
      cell("Step"),
      cell("Created"),
      cell("Finished"),
      cell("Results").appendChild(el("div", { class: "actions" })).parentNode,
    );
    return row;
  }

  function updateOperationRow(row, op) {
    const cells = row.children;
    setText(row.querySelector(".op-name"), `${op.segmentName} · ${op.format.replace("FORMAT_", "")}`);
    setText(cells[1], tenantName(op.tenant));
    const state = row.querySelector(".op-state");
    setText(state, op.state);
    state.className = `badge op-state state-${op.state}`;
    setText(row.querySelector(".op-error"), op.errorDetails);
    const track = row.querySelector(".bar-track");
    const pct = op.estimatePctComplete;
    track.setAttribute("aria-valuenow", String(pct));
    const fill = row.querySelector(".bar-fill");
    fill.style.width = `${pct}%`;
    fill.className = `bar-fill${op.state === "COMPLETED" ? " done" : op.state === "PENDING" ? "" : " failed"}`;
    setText(row.querySelector(".pct"), `${pct}%`);
    setText(cells[4], op.step);
    for (const [index, ts] of [[5, op.createdAt], [6, op.finishedAt]]) {
      if (cells[index].dataset.ts !== (ts || "")) {
        cells[index].dataset.ts = ts || "";
        cells[index].replaceChildren(ts ? timeNode(ts) : "");
      }
    }
    const actions = row.querySelector(".actions");
    if (actions.dataset.state !== op.state) {
      actions.dataset.state = op.state;
      actions.replaceChildren(...operationActions(op));
    }
  }

  function operationActions(op) {
    if (op.state === "COMPLETED") {
      return [
        el("button", { type: "button", class: "small", text: "Download", onclick: () => download(op) }),
        el("button", { type: "button", class: "small quiet", text: "Preview", onclick: () => preview(op) }),
      ];
    }
    if (op.state === "PENDING") {
      const id = encodeURIComponent(op.id);
      return [
        el("button", {
          type: "button", class: "small quiet", text: "Complete",
          onclick: () => act(`Completed ${op.id}`, () => call("POST", `/operations/${id}/complete`, {})),
        }),
        el("button", {
          type: "button", class: "small quiet", text: "Fail",
          onclick: () => act(`Failed ${op.id}`, () => call("POST", `/operations/${id}/fail`, {})),
        }),
      ];
    }
    return [];
  }

  async function download(op) {
    const results = await act("Download started", () =>
      call("GET", `/operations/${encodeURIComponent(op.id)}/results`),
    );
    if (!results) return;
    const url = new URL(results.location, location.href);
    // The signed URL names the emulator's configured address; this page's origin is the same
    // server as the browser reaches it.
    const link = el("a", { href: url.pathname + url.search, download: "" });
    document.body.append(link);
    link.click();
    link.remove();
  }

  async function preview(op) {
    let data;
    try {
      data = await call("GET", `/operations/${encodeURIComponent(op.id)}/preview?rows=20`);
    } catch (error) {
      if (!(error instanceof Locked)) say(error.message, true);
      return;
    }
    setText($("preview-title"), `Preview: ${op.segmentName}`);
    const more = data.more ? "; the file has more rows" : "";
    setText(
      $("preview-about"),
      `First ${data.rows.length} rows of ${op.id} (${data.format.replace("FORMAT_", "")}), decoded from the export file${more}.`,
    );
    $("preview-head").replaceChildren(...data.columns.map((c) => el("th", { scope: "col", text: c })));
    $("preview-body").replaceChildren(
      ...data.rows.map((row) => el("tr", {}, ...row.map((cell) => el("td", { title: cell, text: cell })))),
    );
    const dialog = $("preview");
    if (!dialog.open) dialog.showModal();
    $("preview-close").focus();
  }
  $("preview-close").addEventListener("click", () => $("preview").close());

  async function refreshOperations() {
    const state = $("ops-state").value;
    const query = new URLSearchParams(state ? { state } : {});
    const data = await call("GET", `/operations?${query}`);
    reconcile($("ops-body"), data.operations, (op) => `${op.tenant}/${op.id}`, createOperationRow, updateOperationRow);
    $("ops-empty").hidden = data.operations.length > 0;
  }
  $("ops-state").addEventListener("change", () => poll(true));

  // -- requests (the journal) ------------------------------------------------------------------
  function journalQuery() {
    const params = new URLSearchParams({ last: String(JOURNAL_LIMIT) });
    const method = $("req-method").value;
    const path = $("req-path").value.trim();
    const status = $("req-status").value.trim();
    if (method) params.set("method", method);
    if (path) params.set("path", path.includes("*") || path.includes("?") ? path : `${path}*`);
    if (status) params.set("status", status);
    return params.toString();
  }

  function createRequest(entry) {
    const summary = el(
      "summary",
      {},
      el("span", { class: "when" }, timeNode(entry.at)),
      el("span", { class: "method mono", text: entry.method }),
      el("span", { class: "path", title: entry.path + (entry.query ? `?${entry.query}` : ""), text: entry.path }),
      el("span", { class: `code status-${String(entry.status || 0)[0]}` }, String(entry.status ?? "—")),
      el("span", { class: "ms num", text: entry.durationMs.toFixed(1) }),
    );
    if (entry.fault) summary.children[3].append(el("span", { class: "fault-mark", title: entry.fault, text: "fault" }));
    const pairs = (object) => {
      const keys = Object.keys(object);
      if (!keys.length) return el("p", { class: "note", text: "none" });
      return el("dl", { class: "kv" }, ...keys.flatMap((k) => [el("dt", { text: k }), el("dd", { text: object[k] })]));
    };
    const query = Object.fromEntries(new URLSearchParams(entry.query || ""));
    const about = { tenant: entry.tenant || "(none)" };
    if (entry.fault) about.fault = entry.fault;
    const body = el(
      "div",
      { class: "req-body" },
      el("div", {}, el("h4", { text: "Query" }), pairs(query), el("h4", { text: "Request" }), pairs(about)),
      el("div", {}, el("h4", { text: "Headers" }), pairs(entry.headers || {})),
    );
    return el("details", { class: `req${entry.fault ? " fault" : ""}` }, summary, body);
  }

  async function refreshRequests() {
    let data;
    try {
      data = await call("GET", `/journal?${journalQuery()}`);
      setText($("req-error"), "");
    } catch (error) {
      if (error instanceof Failure && error.status === 400) {
        setText($("req-error"), error.message);
        return;
      }
      throw error;
    }
    const entries = data.requests.slice().reverse(); // newest first
    const seen = new Map();
    const keyOf = (e) => {
      const base = `${e.at}|${e.method}|${e.path}|${e.query}|${e.status}|${e.durationMs}|${e.tenant}`;
      const n = (seen.get(base) || 0) + 1;
      seen.set(base, n);
      return `${base}#${n}`;
    };
    reconcile($("req-list"), entries, keyOf, createRequest, () => {});
    $("req-empty").hidden = entries.length > 0;
  }
  for (const id of ["req-method", "req-path", "req-status"]) {
    $(id).addEventListener(id === "req-method" ? "change" : "input", () => poll(true));
  }
  $("req-filter").addEventListener("submit", (event) => event.preventDefault());
  $("req-clear").addEventListener("click", () =>
    act("Journal forgotten", () => call("DELETE", "/journal")),
  );

  // -- steering ------------------------------------------------------------------------------
  function formBody(form, names) {
    const body = {};
    for (const name of names) {
      const field = form.elements[name];
      if (field.type === "checkbox") {
        if (field.checked) body[name] = true;
      } else if (field.value.trim() !== "") {
        body[name] = field.type === "number" ? Number(field.value) : field.value.trim();
      }
    }
    return body;
  }

  $("fault-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.target;
    const body = formBody(form, ["method", "path", "status", "retryAfter", "latencyMs", "times", "probability", "drop"]);
    act("Fault rule added", async () => {
      const { id } = await call("POST", "/faults", body);
      form.reset();
      return id;
    });
  });

  $("life-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.target;
    const body = formBody(form, ["segmentId", "fail", "times"]);
    const mode = form.elements.mode.value;
    const value = form.elements.value.value.trim();
    if (mode === "immediately") body.immediately = true;
    else if (mode === "pctSequence") body.pctSequence = value.split(/[\s,]+/).filter(Boolean).map(Number);
    else if (value !== "") body[mode] = Number(value);
    act("Lifecycle rule added", async () => {
      await call("POST", "/lifecycle", body);
      form.reset();
    });
  });

  $("config-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const body = formBody(event.target, ["urlTtl", "exportDuration"]);
    if (!Object.keys(body).length) return say("Enter a URL TTL or an export duration first", true);
    act("Settings saved", async () => {
      await call("POST", "/config", body);
      event.target.reset();
    });
  });
  $("config-restore").addEventListener("click", () =>
    act("Settings restored", () => call("POST", "/config", { urlTtl: null, exportDuration: null })),
  );
  // A choice not yet applied is the user's: the refresh below leaves it alone until Apply.
  $("failure-state").addEventListener("change", () => {
    $("failure-state").dataset.chosen = "1";
  });
  $("failure-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const failureState = $("failure-state").value;
    delete $("failure-state").dataset.chosen;
    act(`Failed exports now end in ${failureState}`, () => call("POST", "/config", { failureState }));
  });

  $("scenario-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const name = $("scenario").value;
    act(`Scenario ${name} applied`, () => call("POST", `/scenarios/${encodeURIComponent(name)}`, {}));
  });
  $("scenario").addEventListener("change", showScenarioAbout);

  function showScenarioAbout() {
    const option = $("scenario").selectedOptions[0];
    setText($("scenario-about"), option ? option.title : "");
  }

  $("reset").addEventListener("click", () => {
    setText($("reset-question"), session.tenant ? `Reset tenant ${tenantName(session.tenant)}?` : "Reset the whole emulator?");
    $("reset-confirm").hidden = false;
    $("reset-yes").focus();
  });
  $("reset-no").addEventListener("click", () => {
    $("reset-confirm").hidden = true;
    $("reset").focus();
  });
  $("reset-yes").addEventListener("click", () => {
    $("reset-confirm").hidden = true;
    act(session.tenant ? `Tenant ${tenantName(session.tenant)} reset` : "Emulator reset", () => call("POST", "/reset", {}));
  });

  function describeFault(rule) {
    const does = [];
    if (rule.status) does.push(`status ${rule.status}${rule.retryAfter != null ? ` (Retry-After ${rule.retryAfter})` : ""}`);
    if (rule.latencyMs) does.push(`wait ${rule.latencyMs} ms`);
    if (rule.drop) does.push("drop");
    if (rule.truncateAfterBytes != null) does.push(`cut after ${rule.truncateAfterBytes} B`);
    if (rule.bytesPerSecond != null) does.push(`${rule.bytesPerSecond} B/s`);
    if (rule.probability != null) does.push(`p=${rule.probability}`);
    const headers = Object.entries(rule.header || {}).map(([k, v]) => `${k}: ${v}`);
    return [`${rule.method || "any"} ${rule.path || "*"}${headers.length ? ` [${headers.join(", ")}]` : ""}`, does.join(", ") || "nothing"];
  }

  function describeLifecycle(rule) {
    let plays = "the configured duration";
    if (rule.finishAfterSeconds != null) plays = rule.finishAfterSeconds === 0 ? "at once" : `${rule.finishAfterSeconds} s`;
    if (rule.finishAfterPolls != null) plays = `after ${rule.finishAfterPolls} polls`;
    if (rule.pctSequence) plays = `${rule.pctSequence.join("%, ")}%, done`;
    return plays + (rule.fail ? `, then fails: ${rule.fail}` : ", then succeeds");
  }

  function ruleRows(body, rules, describe, remove) {
    reconcile(
      body,
      rules,
      (rule) => `${rule.id}|${JSON.stringify(rule)}`,
      (rule) => {
        const [first, second] = describe(rule);
        return el(
          "tr",
          {},
          el("td", { class: "mono", text: rule.id }),
          el("td", { text: first }),
          el("td", { text: second }),
          el("td", { class: "num", text: rule.remaining == null ? "∞" : String(rule.remaining) }),
          el("td", {}, el("button", { type: "button", class: "small quiet", "aria-label": `Remove ${rule.id}`, text: "Remove", onclick: () => remove(rule) })),
        );
      },
      () => {},
    );
  }

  async function refreshSteering() {
    const [faults, lifecycle, config] = await Promise.all([
      call("GET", "/faults"),
      call("GET", "/lifecycle"),
      call("GET", "/config"),
    ]);
    ruleRows($("faults-body"), faults.faults, describeFault, (rule) =>
      act(`Fault rule ${rule.id} removed`, () => call("DELETE", `/faults/${encodeURIComponent(rule.id)}`)),
    );
    $("faults-empty").hidden = faults.faults.length > 0;
    ruleRows($("life-body"), lifecycle.lifecycle, (rule) => [rule.segmentId || "any", describeLifecycle(rule)], (rule) =>
      act(`Lifecycle rule ${rule.id} removed`, () => call("DELETE", `/lifecycle/${encodeURIComponent(rule.id)}`)),
    );
    $("life-empty").hidden = lifecycle.lifecycle.length > 0;
    const form = $("config-form");
    form.elements.urlTtl.placeholder = String(config.urlTtl);
    form.elements.exportDuration.placeholder = String(config.exportDuration);
    const overridden = Object.entries(config.overrides).filter(([, v]) => v !== null).map(([k]) => k);
    setText(
      $("config-effective"),
      `In force: URL TTL ${config.urlTtl} s, export duration ${config.exportDuration} s, failed exports end in ${config.failureState}` +
        (overridden.length ? ` (overridden here: ${overridden.join(", ")})` : ""),
    );
    const chooser = $("failure-state");
    if (document.activeElement !== chooser && !chooser.dataset.chosen) chooser.value = config.failureState;
    setText($("steer-scope"), session.tenant ? `Rules and settings of tenant ${tenantName(session.tenant)}.` : "Rules and settings of the whole instance: they apply under every tenant.");
    if (session.seenSteering !== "scenarios") {
      const data = await call("GET", "/scenarios");
      $("scenario").replaceChildren(...data.scenarios.map((s) => el("option", { value: s.name, title: s.description, text: s.name })));
      showScenarioAbout();
      session.seenSteering = "scenarios";
    }
    await loadSegments();
  }

  // -- segments ------------------------------------------------------------------------------
  async function loadSegments() {
    if (session.segments) return;
    const data = await call("GET", "/segments");
    session.segments = data.segments;
    $("life-segment").replaceChildren(
      el("option", { value: "", text: "Any" }),
      ...data.segments.map((s) => el("option", { value: s.id, text: s.name })),
    );
    $("seg-list").replaceChildren(...data.segments.map(segmentCard));
  }

  function segmentCard(segment) {
    const title = `seg-${segment.id}`;
    const start = el("button", { type: "button", class: "start", text: "Start export", "aria-describedby": title });
    start.addEventListener("click", () => {
      const body = { segmentId: segment.id, type: $("seg-type").value, format: $("seg-format").value };
      const tenant = session.tenant || (session.fallback && session.fallback.tenant);
      act(`Export of ${segment.name} started for ${tenantName(tenant)}`, async () => {
        const { operationId } = await call("POST", "/exports", body, { "X-Emulator-Tenant": tenant });
        location.hash = "#operations";
        return operationId;
      });
    });
    const definition = Object.fromEntries(Object.entries(segment.definition).filter(([k]) => !["id", "name", "creator", "created"].includes(k)));
    return el(
      "article",
      { class: "seg", "data-segment": segment.id },
      el("h3", { id: title, text: segment.name }),
      el("p", { class: "meta" }, el("span", { class: "mono", text: segment.id }), ` · ${segment.creator || "built in"} · ${segment.windowDays}-day window`),
      el("pre", { "aria-label": `Definition of ${segment.name}`, text: JSON.stringify(definition, null, 2) }),
      el("div", { class: "go" }, start),
    );
  }

  function refreshSegmentButtons() {
    const fallback = session.fallback;
    const disabled = !session.tenant && !fallback;
    for (const button of document.querySelectorAll("#seg-list .start")) button.disabled = disabled;
    let note = `Exports start for tenant ${tenantName(session.tenant)}.`;
    if (!session.tenant) {
      note = fallback
        ? `Exports start for the demo key's tenant, ${tenantName(fallback.tenant)}: choose another tenant above, or use a key.`
        : "Choose a tenant above, or use a key, to start an export: an export belongs to a tenant.";
    }
    setText($("seg-note"), note);
  }

  // -- views and polling ----------------------------------------------------------------------
  const VIEWS = {
    operations: refreshOperations,
    requests: refreshRequests,
    steering: refreshSteering,
    segments: async () => {
      await loadSegments();
      refreshSegmentButtons();
    },
  };

  function showView() {
    const name = location.hash.slice(1);
    session.view = name in VIEWS ? name : "operations";
    for (const view of Object.keys(VIEWS)) $(`view-${view}`).hidden = view !== session.view;
    for (const link of document.querySelectorAll(".tabs a")) {
      if (link.dataset.view === session.view) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
  }
  window.addEventListener("hashchange", () => {
    showView();
    poll(true);
  });

  // One poll at a time: a change asked for while one runs makes the next start at once.
  async function poll(now = false) {
    if (!session.unlocked) return;
    if (session.busy) {
      session.again = true;
      return;
    }
    session.busy = true;
    clearTimeout(session.timer);
    try {
      const tasks = [call("GET", "/clock").then(showClock), VIEWS[session.view]()];
      if (now || session.polls % TENANTS_EVERY === 0) tasks.push(call("GET", "/tenants").then(showTenants));
      session.polls += 1;
      await Promise.all(tasks);
      if ($("status").classList.contains("bad") && $("status").dataset.offline) say("");
      delete $("status").dataset.offline;
    } catch (error) {
      if (error instanceof Locked) return;
      if (error instanceof Failure && error.status === 400 && session.tenant) {
        say(error.message, true);
      } else {
        say(`Cannot reach the emulator: ${error.message}`, true);
        $("status").dataset.offline = "1";
      }
    } finally {
      session.busy = false;
    }
    if (session.again) {
      session.again = false;
      await poll(true);
    } else if (session.unlocked && !document.hidden) {
      session.timer = setTimeout(poll, POLL_MS);
    }
  }
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) poll(true);
  });

  async function start() {
    try {
      const clock = await call("GET", "/clock");
      unlock();
      showClock(clock);
      await poll(true);
    } catch (error) {
      if (!(error instanceof Locked)) {
        $("connecting").textContent = `Cannot reach the emulator's control API: ${error.message}`;
      }
    }
  }

  start();
})();
