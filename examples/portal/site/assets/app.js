// The portal's page: plain JavaScript, no build step. Everything it calls is
// on this origin: /api (HTTP API), /public/prod (REST API), /live (WebSocket).
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const when = (ms) => new Date(ms).toLocaleString();
  const state = { token: sessionStorage.getItem("token"), name: sessionStorage.getItem("name"), next: null, open: null, publicKey: null };

  async function api(path, options = {}) {
    const headers = Object.assign({ "content-type": "application/json" }, options.headers || {});
    if (state.token && !headers["x-api-key"]) headers.authorization = `Bearer ${state.token}`;
    const resp = await fetch(path, Object.assign({}, options, { headers }));
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error(data.message || `${resp.status}`);
    return data;
  }

  function signedIn() {
    const on = Boolean(state.token);
    $("whoami").hidden = !on;
    $("whoami").textContent = on ? `Signed in as ${state.name}` : "";
    $("signin-form").hidden = on;
    for (const id of ["new-title", "new-body", "create"]) $(id).disabled = !on;
    $("new-hint").hidden = on;
    renderDetailForms();
  }

  $("signin-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const out = await api("/api/auth/token", { method: "POST", body: JSON.stringify({ name: $("signin-name").value }) });
      state.token = out.token;
      state.name = out.name;
      sessionStorage.setItem("token", out.token);
      sessionStorage.setItem("name", out.name);
      signedIn();
    } catch (err) {
      alert(`Sign-in failed: ${err.message}`);
    }
  });

  function ticketItem(t, fresh) {
    const li = document.createElement("li");
    li.dataset.id = t.id;
    li.className = (fresh ? "fresh " : "") + (state.open === t.id ? "active" : "");
    li.innerHTML = `<strong>${esc(t.title)}</strong> <span class="status ${esc(t.status)}">${esc(t.status)}</span><br><span class="muted small">${esc(t.author)} · ${when(t.created_at)}</span>`;
    li.addEventListener("click", () => openTicket(t.id));
    return li;
  }

  async function loadTickets(more) {
    const q = new URLSearchParams({ limit: "8" });
    if ($("search").value) q.set("q", $("search").value);
    if ($("status-filter").value) q.set("status", $("status-filter").value);
    if (more && state.next) q.set("next", state.next);
    const out = await api(`/api/tickets?${q}`);
    if (!more) $("tickets").innerHTML = "";
    for (const t of out.items) $("tickets").appendChild(ticketItem(t, false));
    state.next = out.next;
    $("more").hidden = !out.next;
  }
  $("search-form").addEventListener("submit", (e) => { e.preventDefault(); loadTickets(false); });
  $("more").addEventListener("click", () => loadTickets(true));

  $("new-ticket").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("new-error").textContent = "";
    try {
      const t = await api("/api/tickets", { method: "POST", body: JSON.stringify({ title: $("new-title").value, body: $("new-body").value }) });
      $("new-title").value = "";
      $("new-body").value = "";
      addTicket(t);
      openTicket(t.id);
    } catch (err) {
      $("new-error").textContent = err.message;
    }
  });

  function addTicket(t) {
    if (document.querySelector(`#tickets li[data-id="${CSS.escape(t.id)}"]`)) return;
    $("tickets").prepend(ticketItem(t, true));
  }

  function renderDetailForms() {
    const forms = document.querySelectorAll("#detail .needs-signin");
    forms.forEach((f) => { f.hidden = !state.token; });
  }

  const replyHtml = (r) => `<div class="reply"><span class="muted small">${esc(r.author)} · ${when(r.created_at)}</span><br>${esc(r.body)}</div>`;
  const attachmentHtml = (a) => `<li><a href="${esc(a.url)}" target="_blank" rel="noopener">${esc(a.name)}</a></li>`;

  // Opens a ticket: the page is drawn once; later updates (live ones too)
  // redraw only its replies and attachments, so what is being typed stays.
  async function openTicket(id) {
    const fresh = state.open !== id || !$("replies");
    state.open = id;
    document.querySelectorAll("#tickets li").forEach((li) => li.classList.toggle("active", li.dataset.id === id));
    let t;
    try {
      t = await api(`/api/tickets/${encodeURIComponent(id)}`);
    } catch (err) {
      $("detail").innerHTML = `<p class="error">${esc(err.message)}</p>`;
      return;
    }
    if (state.open !== id) return;
    if (fresh) drawTicket(t);
    $("replies").innerHTML = t.replies.map(replyHtml).join("") || '<p class="muted">No replies yet.</p>';
    $("attachments").innerHTML = t.attachments.map(attachmentHtml).join("") || '<li class="muted">None.</li>';
  }

  function drawTicket(t) {
    const id = t.id;
    $("detail").innerHTML = `
      <h3 id="detail-title">${esc(t.title)} <span class="status ${esc(t.status)}">${esc(t.status)}</span></h3>
      <p class="muted small">${esc(t.author)} · ${when(t.created_at)}</p>
      <p>${esc(t.body)}</p>
      <h2>Replies</h2>
      <div id="replies"></div>
      <h2>Attachments</h2>
      <ul id="attachments"></ul>
      <form id="reply-form" class="needs-signin"><textarea id="reply-body" rows="2" placeholder="reply"></textarea><button id="reply" type="submit">Reply</button></form>
      <form id="attach-form" class="needs-signin row"><input id="attach-file" type="file"><button id="attach" type="submit">Attach</button></form>
      <p class="error" id="detail-error"></p>`;
    renderDetailForms();
    $("reply-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      $("detail-error").textContent = "";
      try {
        await api(`/api/tickets/${encodeURIComponent(id)}/replies`, { method: "POST", body: JSON.stringify({ body: $("reply-body").value }) });
        $("reply-body").value = "";
        openTicket(id);
      } catch (err) {
        $("detail-error").textContent = err.message;
      }
    });
    $("attach-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      $("detail-error").textContent = "";
      const file = $("attach-file").files[0];
      if (!file) {
        $("detail-error").textContent = "Choose a file first.";
        return;
      }
      try {
        const contentType = file.type || "application/octet-stream";
        const a = await api(`/api/tickets/${encodeURIComponent(id)}/attachments`, {
          method: "POST",
          body: JSON.stringify({ name: file.name, contentType, size: file.size }),
        });
        // Straight to the bucket, through the presigned URL.
        const put = await fetch(a.uploadUrl, { method: "PUT", headers: { "content-type": contentType }, body: file });
        if (!put.ok) throw new Error(`upload: ${put.status}`);
        $("attach-file").value = "";
        openTicket(id);
      } catch (err) {
        $("detail-error").textContent = err.message;
      }
    });
  }

  async function loadNotices() {
    try {
      const out = await api("/public/prod/notices?per_page=5", { headers: { "x-api-key": state.publicKey } });
      $("notices").innerHTML = out.items.map((n) => `<li><strong>${esc(n.title)}</strong><br><span class="small">${esc(n.body)}</span></li>`).join("");
    } catch (err) {
      $("notices").innerHTML = `<li class="error">${esc(err.message)}</li>`;
    }
  }

  function live() {
    const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/live`);
    ws.onopen = () => { $("live-status").textContent = "live"; $("live-status").classList.add("on"); };
    ws.onclose = () => {
      $("live-status").textContent = "reconnecting…";
      $("live-status").classList.remove("on");
      setTimeout(live, 2000);
    };
    ws.onmessage = (m) => {
      let msg;
      try { msg = JSON.parse(m.data); } catch { return; }
      if (msg.type === "ticket") addTicket(msg.ticket);
      if ((msg.type === "reply" || msg.type === "attachment") && msg.ticketId === state.open) openTicket(state.open);
    };
  }

  async function start() {
    const config = await api("/api/config");
    state.publicKey = config.publicKey;
    $("dashboard-link").href = config.dashboard;
    signedIn();
    await Promise.all([loadTickets(false), loadNotices()]);
    live();
  }
  start();
})();
