// The Stratus dashboard: one snapshot at load (/stratus/dashboard.json),
// then one a second over server-sent events (/stratus/dashboard/stream).
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const fmt = (n) => (n == null ? "–" : Number(n).toLocaleString("en-US", { maximumFractionDigits: 2 }));
  const money = (n) => "$" + (n > 0 && n < 0.01 ? n.toFixed(8).replace(/0+$/, "") : n.toFixed(2));
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
  const rows = (id, items, cells) => {
    $(id).querySelector("tbody").innerHTML = items
      .map((it) => "<tr>" + cells(it).map(([v, cls]) => `<td${cls ? ` class="${cls}"` : ""}>${esc(v)}</td>`).join("") + "</tr>")
      .join("");
  };
  let charts = null;
  function chart(el, series) {
    const width = Math.max(300, el.clientWidth || 500);
    return new uPlot({ width, height: 180, series: [{}, ...series], axes: [{}, {}], legend: { show: true } }, [[], ...series.map(() => [])], el);
  }
  function render(d) {
    const t = d.totals;
    $("t-requests").textContent = fmt(t.requests);
    $("t-rps").textContent = fmt(t.requestsPerSecond);
    $("t-latency").textContent = `${fmt(t.p50Ms)} / ${fmt(t.p99Ms)} ms`;
    $("t-errors").textContent = `${fmt(t.errors4xx)} / ${fmt(t.errors5xx)}`;
    $("t-invocations").textContent = fmt(d.functions.reduce((a, f) => a + f.invocations, 0));
    $("t-cost").textContent = `${money(d.cost.session)} / ${money(d.cost.perMonth)}`;
    $("uptime").textContent = `up ${Math.round(d.uptimeSeconds)} s`;
    rows("routes", d.routes, (r) => [
      [r.api], [r.stage], [r.deployment], [r.route || "(no route)"], [fmt(r.count), "n"], [fmt(r.errors4xx), r.errors4xx ? "n warn" : "n"],
      [fmt(r.errors5xx), r.errors5xx ? "n bad" : "n"], [fmt(r.throttled), "n"], [fmt(r.avgMs), "n"], [fmt(r.p99Ms), "n"],
    ]);
    rows("functions", d.functions, (f) => [
      [f.name], [fmt(f.invocations), "n"], [fmt(f.errors), f.errors ? "n bad" : "n"], [fmt(f.throttles), "n"],
      [fmt(f.coldStarts), "n"], [fmt(f.avgMs), "n"], [fmt(f.p99Ms), "n"], [fmt(f.maxMemoryMb), "n"],
      [`${f.environments.busy} / ${f.environments.idle}`, "n"], [Number(f.gbSeconds).toPrecision(3), "n"], [money(f.cost), "n"],
    ]);
    rows("websockets", d.websockets, (w) => [
      [w.api], [w.stage], [fmt(w.open), "n"], [fmt(w.connects), "n"], [fmt(w.messages), "n"], [fmt(w.posts), "n"], [fmt(w.gone), "n"],
    ]);
    rows("databases", d.databases, (b) => [
      [b.name], [b.engine], [b.arn], [b.migrations.length ? b.migrations.join(", ") : "none"],
      [`${b.pool.open - b.pool.idle} / ${b.pool.open}`, "n"], [fmt(b.pool.transactions), "n"],
      [fmt(b.statements), "n"], [fmt(b.errors), b.errors ? "n warn" : "n"],
    ]);
    rows("apicost", Object.entries(d.cost.apis).concat([["Lambda", d.cost.lambda]]), ([api, c]) => [[api], [money(c), "n"]]);
    const p = d.cost.prices;
    $("prices").textContent = `Prices: Lambda $${p.lambdaRequestsPerMillion}/M requests + $${p.lambdaGbSecond}/GB-s; REST $${p.restRequestsPerMillion}/M, HTTP $${p.httpRequestsPerMillion}/M, WebSocket $${p.websocketMessagesPerMillion}/M messages + $${p.websocketConnectionMinutesPerMillion}/M connection-minutes ([pricing] in stratus.toml).`;
    rows("recent", d.recent, (r) => [
      [new Date(r.at).toLocaleTimeString()], [r.method], [r.path], [r.status, r.status >= 500 ? "n bad" : r.status >= 400 ? "n warn" : "n"], [fmt(r.latencyMs), "n"],
    ]);
    const filter = $("logfilter").value;
    $("logs").textContent = d.logs
      .filter((l) => !filter || l.line.includes(filter) || l.function.includes(filter))
      .map((l) => `${new Date(l.at).toLocaleTimeString()} ${l.function} ${l.line}`)
      .join("\n");
    rows("table", d.routeTable, (r) => [[r.api], [r.stage], [r.deployment], [r.method], [r.path], [r.integration], [r.throttle], [r.authorizer], [r.apiKey]]);
    if (typeof uPlot !== "undefined") {
      if (!charts) {
        charts = {
          requests: chart($("c-requests"), [{ label: "requests", stroke: "#2f6fde" }, { label: "4xx", stroke: "#b7791f" }, { label: "5xx", stroke: "#c8372d" }]),
          latency: chart($("c-latency"), [{ label: "p50", stroke: "#2f6fde" }, { label: "p99", stroke: "#c8372d" }]),
        };
      }
      const s = d.series;
      charts.requests.setData([s.map((x) => x.t), s.map((x) => x.requests), s.map((x) => x.errors4xx), s.map((x) => x.errors5xx)]);
      charts.latency.setData([s.map((x) => x.t), s.map((x) => x.p50Ms), s.map((x) => x.p99Ms)]);
    }
    document.title = `Stratus · ${fmt(t.requests)} requests`;
  }
  function live() {
    const es = new EventSource("/stratus/dashboard/stream");
    es.onmessage = (m) => { render(JSON.parse(m.data)); $("status").textContent = "live"; };
    es.onerror = () => {
      if (es.readyState !== EventSource.CLOSED) { $("status").textContent = "reconnecting…"; return; }
      // Refused (the server's cap on open streams): a snapshot now, the
      // stream again in 5 s.
      $("status").textContent = "too many live views open: refreshing every 5 s";
      fetch("/stratus/dashboard.json").then((r) => r.json()).then(render).catch(() => {});
      setTimeout(live, 5000);
    };
  }
  // The page arrives with its first snapshot: drawn before the page's
  // load event, then kept live.
  if (window.STRATUS_SNAPSHOT) render(window.STRATUS_SNAPSHOT);
  live();
})();
