// The system panel (connection state and the time of the last message; upstream weight, order
// count, stream relay and worker health from GET /api/v1/status) and, for admins, the risk limits
// and the kill switch (engaging it asks for confirmation first).

import { $, ago, clockTime, setText } from "./dom.js";
import { STATES } from "./socket.js";

const STATUS_EVERY_MS = 5000;
const STATE_WORDS = {
  [STATES.CONNECTING]: "connecting", [STATES.LIVE]: "live", [STATES.RECONNECTING]: "reconnecting",
  [STATES.RESTORED]: "restored",
};

export class SystemPanel {
  constructor({ api, socket, log }) {
    this.api = api;
    this.socket = socket;
    this.log = log;
    this.status = null;
    socket.addEventListener("state", (e) => this.onState(e.detail));
  }

  start() {
    this.poll();
    this.pollTimer = setInterval(() => this.poll(), STATUS_EVERY_MS);
    this.clockTimer = setInterval(() => this.drawConnection(), 1000);
    this.drawConnection();
  }

  stop() {
    clearInterval(this.pollTimer);
    clearInterval(this.clockTimer);
  }

  onState({ state }) {
    const badge = $("conn-state");
    badge.dataset.state = state;
    setText(badge, STATE_WORDS[state]);
    if (state !== STATES.CONNECTING) {
      const why = state === STATES.RECONNECTING ? `: ${this.socket.reasons().join(", ")}` : "";
      this.log.add("connection", `${STATE_WORDS[state]}${why}`, { tone: state === STATES.RECONNECTING ? "bad" : "" });
    }
    this.drawConnection();
  }

  drawConnection() {
    const s = this.socket;
    const reasons = s.state === STATES.RECONNECTING || s.state === STATES.CONNECTING ? s.reasons() : [];
    const reconnects = s.reconnects ? ` · ${s.reconnects} reconnect${s.reconnects === 1 ? "" : "s"}` : "";
    setText($("sys-connection"), `${STATE_WORDS[s.state]}${reasons.length ? ` (${reasons.join(", ")})` : ""}${reconnects}`);
    setText($("sys-last-message"), s.lastMessageAt ? `${clockTime(s.lastMessageAt)} (${ago(s.lastMessageAt)})` : "none yet");
  }

  async poll() {
    try {
      this.status = await this.api.get("/api/v1/status");
    } catch (exc) {
      setText($("sys-upstream"), `status unavailable: ${exc.message}`);
      return;
    }
    const st = this.status;
    this.socket.setRelayRunning(st.streams?.running ?? null);
    const w = st.weight;
    const remaining = Math.max(0, w.budget - w.usedThisMinute);
    setText($("sys-weight"), `${w.usedThisMinute} used / ${w.budget} a minute · ${remaining} left`);
    const o = st.orders;
    setText($("sys-orders"), o ? `${o.last10s} / ${o.limit10s} · ${o.today} / ${o.limitDay}` : "–");
    const r = st.streams;
    let relay = "–";
    if (r) {
      relay = r.running
        ? `running · ${r.connections} connection${r.connections === 1 ? "" : "s"}, ${r.channels} channels`
          + (r.userStream ? ` · user stream ${r.userStream.subscribed ? "subscribed" : "not subscribed"} (${r.userStream.mode})` : "")
        : `not running${r.reportAgeMs !== null ? ` (last report ${Math.round(r.reportAgeMs / 1000)} s ago)` : ""}`;
    }
    const relayNode = $("sys-relay");
    setText(relayNode, relay);
    relayNode.dataset.ok = String(Boolean(r?.running));
    const k = st.workers;
    const workersNode = $("sys-workers");
    setText(workersNode, k
      ? `${k.answering ? `answering (${k.latencyMs} ms)` : "not answering"} · queued ${Object.entries(k.queued).map(([q, n]) => `${q} ${n}`).join(", ")}`
      : "–");
    workersNode.dataset.ok = String(Boolean(k?.answering));
    const u = st.upstream;
    setText($("sys-upstream"), u.reachable ? `reachable · ${u.latencyMs} ms · clock offset ${Math.round(st.serverTimeOffsetMs)} ms` : "unreachable");
    $("sys-upstream").dataset.ok = String(Boolean(u.reachable));
  }
}

export class AdminPanel {
  constructor({ api, log, confirm }) {
    this.api = api;
    this.log = log;
    this.confirm = confirm;
    this.kill = null;
    this.form = $("limits-form");
    this.form.addEventListener("submit", (event) => { event.preventDefault(); this.save(); });
    this.form.addEventListener("input", (event) => setText($(`error-${event.target.name}`) || $("error-limits"), ""));
    $("kill-toggle").addEventListener("click", () => this.toggle());
  }

  async load() {
    const [limits, kill] = await Promise.all([this.api.get("/api/v1/risk/limits"), this.api.get("/api/v1/admin/kill-switch")]);
    const f = this.form.elements;
    f.maxOrderNotional.value = limits.maxOrderNotional ?? "";
    f.maxOpenOrders.value = limits.maxOpenOrders ?? "";
    f.maxOrdersPerMinute.value = limits.maxOrdersPerMinute ?? "";
    f.allowedSymbols.value = (limits.allowedSymbols || []).join(", ");
    this.drawKill(kill);
  }

  drawKill(kill) {
    this.kill = kill;
    const state = $("kill-state");
    state.dataset.engaged = String(kill.engaged);
    setText(state, kill.engaged
      ? `Trading halted since ${clockTime(kill.at)} by ${kill.by}${kill.reason ? ` — ${kill.reason}` : ""}`
      : "Trading allowed");
    setText($("kill-toggle"), kill.engaged ? "Release kill switch" : "Engage kill switch");
    $("kill-toggle").classList.toggle("danger", !kill.engaged);
  }

  async toggle() {
    const engage = !this.kill?.engaged;
    const answer = await this.confirm(engage
      ? { title: "Engage the kill switch?", text: "New orders are refused at once and every open order on every symbol is canceled.", action: "Engage", reason: true }
      : { title: "Release the kill switch?", text: "Orders are accepted again.", action: "Release", reason: false });
    if (!answer.ok) return;
    const body = { engaged: engage };
    if (engage && answer.reason) body.reason = answer.reason;
    $("kill-toggle").disabled = true;
    try {
      const state = await this.api.post("/api/v1/admin/kill-switch", body);
      this.drawKill(state);
      this.log.add("kill switch", engage ? `engaged · ${state.canceled.length} orders canceled` : "released", { tone: engage ? "bad" : "" });
    } catch (exc) {
      this.log.add("kill switch", `${exc.code}: ${exc.message}`, { tone: "bad" });
      if (exc.details?.killSwitch) this.drawKill(exc.details.killSwitch);
    } finally {
      $("kill-toggle").disabled = false;
    }
  }

  async save() {
    const f = this.form.elements;
    const text = (name) => f[name].value.trim() || null;
    const integer = (name) => (text(name) === null ? null : /^\d+$/.test(text(name)) ? Number(text(name)) : text(name));
    const symbols = text("allowedSymbols");
    const body = {
      maxOrderNotional: text("maxOrderNotional"), maxOpenOrders: integer("maxOpenOrders"),
      maxOrdersPerMinute: integer("maxOrdersPerMinute"),
      allowedSymbols: symbols === null ? null : symbols.split(/[\s,]+/).filter(Boolean),
    };
    for (const node of this.form.querySelectorAll(".field-error")) setText(node, "");
    try {
      await this.api.put("/api/v1/risk/limits", body);
      setText($("limits-outcome"), `saved ${clockTime(Date.now())}`);
    } catch (exc) {
      const node = (exc.field && $(`error-${exc.field}`)) || $("error-limits");
      setText(node, exc.message);
      setText($("limits-outcome"), "");
    }
  }
}

/** A modal confirmation (the native <dialog>: focus is trapped and Escape cancels). */
export function confirmDialog() {
  const dialog = $("confirm");
  const form = $("confirm-form");
  return ({ title, text, action, reason }) => new Promise((resolve) => {
    setText($("confirm-title"), title);
    setText($("confirm-text"), text);
    setText($("confirm-ok"), action);
    $("confirm-reason").value = "";
    $("confirm-reason").hidden = !reason;
    $("confirm-reason-label").hidden = !reason;
    const finish = (ok) => {
      form.removeEventListener("submit", onSubmit);
      $("confirm-cancel").removeEventListener("click", onCancel);
      dialog.removeEventListener("cancel", onCancel);
      if (dialog.open) dialog.close();
      resolve({ ok, reason: $("confirm-reason").value.trim() });
    };
    const onSubmit = (event) => { event.preventDefault(); finish(true); };
    const onCancel = (event) => { event?.preventDefault?.(); finish(false); };
    form.addEventListener("submit", onSubmit);
    $("confirm-cancel").addEventListener("click", onCancel);
    dialog.addEventListener("cancel", onCancel);
    dialog.showModal();
    $("confirm-cancel").focus();
  });
}
