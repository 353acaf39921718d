// The account side of the page: the order form (with hints from the symbol's filters and the
// API's errors at the field they name), open orders with cancel, order history, balances and
// positions, and the live log of user events. Order changes arrive as executionReports on the
// `user` channel, so whatever places or cancels an order (this page, a bot, the kill switch) shows here.

import { orderHints } from "./filters.js";
import { decimalsOf, fixed, isZero, trim } from "./decimal.js";
import { $, clockTime, dateTime, el, setText } from "./dom.js";

const OPEN_STATUSES = new Set(["NEW", "PARTIALLY_FILLED", "PENDING_NEW"]);
const HISTORY_SHOWN = 50;
const EVENTS_SHOWN = 200;
const ORDER_FIELDS = ["price", "quantity", "quoteOrderQty"];

/** An executionReport as the REST order shape the tables draw. */
export function orderFromReport(r) {
  return {
    symbol: r.s, orderId: r.i, clientOrderId: r.X === "CANCELED" && r.C ? r.C : r.c, side: r.S, type: r.o,
    price: r.p, origQty: r.q, executedQty: r.z, status: r.X, timeInForce: r.f, time: r.O ?? r.T, updateTime: r.T,
  };
}

// -- the event log -------------------------------------------------------------------------------

export class EventLog {
  constructor(list) {
    this.list = list;
  }

  add(kind, text, { time = Date.now(), tone = "" } = {}) {
    const item = el("li", tone ? `event ${tone}` : "event");
    item.dataset.kind = kind;
    item.append(el("time", "muted", clockTime(time)), el("span", "event-kind", kind), el("span", "event-text", text));
    this.list.prepend(item);
    while (this.list.children.length > EVENTS_SHOWN) this.list.lastElementChild.remove();
  }

  userEvent(e) {
    const time = e.E ?? Date.now();
    if (e.e === "executionReport") {
      const qty = trim(e.q);
      const price = e.o === "MARKET" ? "market" : `@ ${trim(e.p)}`;
      const filled = isZero(e.l ?? "0") ? "" : ` · filled ${trim(e.l)} @ ${trim(e.L)}`;
      const reason = e.r && e.r !== "NONE" ? ` · ${e.r}` : "";
      const tone = e.X === "REJECTED" || e.X === "EXPIRED" ? "bad" : e.X === "FILLED" ? "good" : "";
      this.add("order", `${e.S} ${e.o} ${qty} ${e.s} ${price} — ${e.X}${filled}${reason} (#${e.i})`, { time, tone });
    } else if (e.e === "outboundAccountPosition") {
      const assets = (e.B || []).map((b) => `${b.a} ${trim(b.f)}${isZero(b.l) ? "" : ` (+${trim(b.l)} locked)`}`);
      this.add("balance", assets.join(", "), { time });
    } else if (e.e === "balanceUpdate") {
      this.add("balance", `${e.a} ${e.d.startsWith("-") ? "" : "+"}${trim(e.d)}`, { time });
    } else {
      this.add(e.e || "event", JSON.stringify(e).slice(0, 160), { time });
    }
  }
}

// -- open orders and history ---------------------------------------------------------------------

export class OrdersView {
  constructor({ api, session, frames, log, market }) {
    this.api = api;
    this.session = session;
    this.frames = frames;
    this.log = log;
    this.market = market;
    this.open = new Map();
    this.history = new Map();
    this.symbols = new Map();
    this.arriving = new Set(); // per load in flight: the order events that came while it was on its way
    $("tab-open").addEventListener("click", () => this.tab("open"));
    $("tab-history").addEventListener("click", () => this.tab("history"));
    for (const id of ["tab-open", "tab-history"]) {
      $(id).addEventListener("keydown", (event) => {
        if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
          const next = id === "tab-open" ? "history" : "open";
          this.tab(next);
          $(`tab-${next}`).focus();
        }
      });
    }
    $("cancel-all").addEventListener("click", () => this.cancelAll());
  }

  tab(which) {
    const open = which === "open";
    $("tab-open").setAttribute("aria-selected", String(open));
    $("tab-history").setAttribute("aria-selected", String(!open));
    $("tab-open").tabIndex = open ? 0 : -1;
    $("tab-history").tabIndex = open ? -1 : 0;
    $("open-orders").hidden = !open;
    $("order-history").hidden = open;
  }

  /** Read open orders and history again. Events that arrive while the answers are on their way are
   * laid over them afterwards, so an order placed or cancelled meanwhile is not lost to an older read. */
  async load() {
    const symbol = this.market.symbol;
    const arrived = new Map();
    this.arriving.add(arrived);
    let open, history;
    try {
      [open, history] = await Promise.all([
        this.api.get("/api/v1/openOrders"),
        this.api.get("/api/v1/allOrders", { symbol, limit: HISTORY_SHOWN }),
      ]);
    } finally {
      this.arriving.delete(arrived);
    }
    this.open = new Map(open.map((o) => [key(o), o]));
    if (symbol === this.market.symbol) this.history = new Map(history.map((o) => [key(o), o]));
    for (const order of arrived.values()) this.apply(order);
    this.draw();
  }

  async loadHistory() {
    const symbol = this.market.symbol;
    const history = await this.api.get("/api/v1/allOrders", { symbol, limit: HISTORY_SHOWN });
    if (symbol === this.market.symbol) {
      this.history = new Map(history.map((o) => [key(o), o]));
      this.draw();
    }
  }

  /** An order's latest state (from an executionReport or a REST answer). */
  upsert(order) {
    for (const arrived of this.arriving) arrived.set(key(order), { ...arrived.get(key(order)), ...order });
    this.apply(order);
    this.frames.mark("orders", () => this.draw());
  }

  apply(order) {
    const k = key(order);
    const known = this.open.get(k) || this.history.get(k);
    if (known && (known.updateTime ?? 0) > (order.updateTime ?? Infinity)) return; // an older state
    if (OPEN_STATUSES.has(order.status)) this.open.set(k, { ...known, ...order });
    else this.open.delete(k);
    if (order.symbol === this.market.symbol) this.history.set(k, { ...known, ...order });
  }

  draw() {
    const canTrade = this.session.allows("trader");
    const open = [...this.open.values()].sort((a, b) => (b.time ?? 0) - (a.time ?? 0));
    const body = $("open-orders-body");
    body.replaceChildren(...open.map((o) => this.row(o, true, canTrade)));
    setText($("open-count"), open.length);
    $("open-empty").hidden = open.length > 0;
    const mine = open.filter((o) => o.symbol === this.market.symbol);
    const all = $("cancel-all");
    all.hidden = !canTrade || mine.length === 0;
    setText(all, `Cancel all ${this.market.symbol}`);
    const history = [...this.history.values()].sort((a, b) => (b.time ?? 0) - (a.time ?? 0)).slice(0, HISTORY_SHOWN);
    $("history-body").replaceChildren(...history.map((o) => this.row(o, false)));
    $("history-empty").hidden = history.length > 0;
  }

  row(o, actions, canTrade = false) {
    const info = this.symbols.get(o.symbol);
    const pd = decimalsOf(info?.tickSize);
    const qd = decimalsOf(info?.stepSize);
    const tr = el("tr");
    tr.dataset.orderId = String(o.orderId);
    tr.dataset.clientOrderId = o.clientOrderId || "";
    tr.dataset.status = o.status;
    const side = el("td", `side ${o.side === "BUY" ? "buy" : "sell"}`, o.side);
    tr.append(
      el("td", "", o.symbol), side, el("td", "", o.type),
      el("td", "num", o.type === "MARKET" ? "market" : fixed(o.price, pd)),
      el("td", "num", fixed(o.origQty, qd)), el("td", "num", fixed(o.executedQty, qd)),
      el("td", `status ${o.status.toLowerCase()}`, o.status), el("td", "muted", o.time ? dateTime(o.time) : ""),
    );
    if (actions) {
      const cell = el("td");
      if (canTrade) {
        const button = el("button", "small", "Cancel");
        button.type = "button";
        button.setAttribute("aria-label", `Cancel ${o.side} ${trim(o.origQty)} ${o.symbol} at ${trim(o.price)}`);
        button.addEventListener("click", () => this.cancel(o, button));
        cell.append(button);
      }
      tr.append(cell);
    }
    return tr;
  }

  async cancel(order, button) {
    button.disabled = true;
    try {
      const canceled = await this.api.delete("/api/v1/order", { symbol: order.symbol, orderId: order.orderId });
      this.upsert({ ...order, ...canceled, updateTime: canceled.updateTime ?? Date.now() });
    } catch (exc) {
      button.disabled = false;
      this.log.add("error", `cancel #${order.orderId}: ${exc.message}`, { tone: "bad" });
    }
  }

  async cancelAll() {
    const symbol = this.market.symbol;
    const button = $("cancel-all");
    button.disabled = true;
    try {
      const canceled = await this.api.delete("/api/v1/openOrders", { symbol });
      for (const o of canceled) this.upsert({ ...o, updateTime: o.updateTime ?? Date.now() });
    } catch (exc) {
      this.log.add("error", `cancel all ${symbol}: ${exc.message}`, { tone: "bad" });
    } finally {
      button.disabled = false;
    }
  }
}

function key(o) {
  return `${o.symbol}:${o.orderId}`;
}

// -- balances and positions ----------------------------------------------------------------------

export class AccountView {
  constructor({ api, frames }) {
    this.api = api;
    this.frames = frames;
    this.balances = new Map(); // asset → {free, locked}
    this.positions = new Map(); // asset → position
    this.summary = null;
    this.refreshTimer = null;
  }

  async load() {
    const [account] = await Promise.all([this.api.get("/api/v1/account"), this.loadPositions()]);
    this.balances = new Map(account.balances.map((b) => [b.asset, { free: b.free, locked: b.locked }]));
    this.draw();
  }

  async loadPositions() {
    try {
      const report = await this.api.get("/api/v1/positions");
      this.positions = new Map(report.positions.map((p) => [p.asset, p]));
      this.summary = report.summary;
    } catch (exc) {
      console.warn("positions", exc.message);
    }
    this.frames.mark("account", () => this.draw());
  }

  /** Positions again soon after fills (a burst of fills costs one read). */
  soon() {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => this.loadPositions(), 2000);
  }

  accountPosition(e) {
    for (const b of e.B || []) this.balances.set(b.a, { free: b.f, locked: b.l });
    this.frames.mark("account", () => this.draw());
  }

  draw() {
    const assets = [...new Set([...this.balances.keys(), ...this.positions.keys()])].sort();
    const rows = assets.map((asset) => {
      const b = this.balances.get(asset) || { free: "0", locked: "0" };
      if (isZero(b.free) && isZero(b.locked) && !this.positions.has(asset)) return null;
      const p = this.positions.get(asset);
      const tr = el("tr");
      tr.dataset.asset = asset;
      tr.append(
        el("td", "asset", asset), el("td", "num", trim(b.free)), el("td", "num muted", trim(b.locked)),
        el("td", "num", p?.averageEntryPrice ? fixed(p.averageEntryPrice, 2) : "–"),
        pnl(p?.unrealizedPnl), pnl(p?.realizedPnl),
      );
      return tr;
    }).filter(Boolean);
    $("balances-body").replaceChildren(...rows);
    const s = this.summary;
    setText($("positions-summary"), s ? `P&L ${fixed(s.totalUnrealizedPnl, 2)} unrealized · ${fixed(s.totalRealizedPnl, 2)} realized ${s.quoteAsset}` : "");
  }
}

function pnl(value) {
  if (value === undefined || value === null) return el("td", "num muted", "–");
  const cell = el("td", "num pnl", fixed(value, 2));
  cell.dataset.direction = String(value).startsWith("-") ? "down" : isZero(value) ? "" : "up";
  return cell;
}

// -- the order form ------------------------------------------------------------------------------

export class OrderForm {
  constructor({ api, market, orders, log }) {
    this.api = api;
    this.market = market;
    this.orders = orders;
    this.log = log;
    this.form = $("order-form");
    this.form.addEventListener("input", (event) => this.changed(event));
    this.form.addEventListener("submit", (event) => { event.preventDefault(); this.submit(); });
    // A price in the ladder fills the form's price.
    for (const side of ["asks", "bids"]) {
      $(side).addEventListener("click", (event) => {
        const row = event.target.closest(".level");
        if (row?.dataset.price && this.form.elements.type.value === "LIMIT") {
          this.form.elements.price.value = fixed(row.dataset.price, market.priceDecimals);
          this.changed({ target: this.form.elements.price });
        }
      });
    }
  }

  values() {
    const f = this.form.elements;
    return {
      side: f.side.value, type: f.type.value, timeInForce: f.timeInForce.value, amountIn: f.amountIn.value,
      price: f.price.value.trim(), quantity: f.quantity.value.trim(), quoteOrderQty: f.quoteOrderQty.value.trim(),
    };
  }

  changed(event) {
    const name = event?.target?.name;
    if (name) this.clearError(name);
    this.clearError("form");
    this.layout();
    this.hints();
  }

  layout() {
    const v = this.values();
    for (const node of this.form.querySelectorAll("[data-for]")) node.hidden = node.dataset.for !== v.type;
    const byQuote = v.type === "MARKET" && v.amountIn === "quote";
    for (const node of this.form.querySelectorAll("[data-amount]")) {
      node.hidden = (node.dataset.amount === "quote") !== byQuote;
    }
    const submit = $("order-submit");
    const base = this.market.info?.baseAsset ?? "";
    submit.textContent = `${v.side === "BUY" ? "Buy" : "Sell"} ${base}`;
    submit.classList.toggle("buy", v.side === "BUY");
    submit.classList.toggle("sell", v.side === "SELL");
  }

  hints() {
    if (!this.market.info) return;
    const last = this.market.ticker?.lastPrice ?? null;
    const hints = orderHints(this.values(), this.market.info, last);
    for (const name of [...ORDER_FIELDS, "notional"]) {
      const node = $(`hint-${name}`);
      const h = hints[name];
      setText(node, h.warning ? `${h.hint ? h.hint + " — " : ""}${h.warning}` : h.hint);
      node.classList.toggle("warn", Boolean(h.warning));
    }
  }

  body() {
    const v = this.values();
    const body = { symbol: this.market.symbol, side: v.side, type: v.type };
    if (v.type === "LIMIT") {
      body.price = v.price;
      body.quantity = v.quantity;
      body.timeInForce = v.timeInForce;
    } else if (v.amountIn === "quote") {
      body.quoteOrderQty = v.quoteOrderQty;
    } else {
      body.quantity = v.quantity;
    }
    // Empty fields are left out: the API then names the one that is required.
    for (const name of Object.keys(body)) if (body[name] === "") delete body[name];
    return body;
  }

  async submit() {
    for (const name of [...ORDER_FIELDS, "form"]) this.clearError(name);
    const submit = $("order-submit");
    const body = this.body();
    submit.disabled = true;
    setText($("order-outcome"), "sending…");
    try {
      // One key per click: a retried request can never place a second order.
      const order = await this.api.post("/api/v1/order", body, { "Idempotency-Key": crypto.randomUUID() });
      if (order.orderId !== undefined) {
        this.orders.upsert({ ...order, time: order.transactTime ?? order.time, updateTime: order.transactTime ?? Date.now() });
        setText($("order-outcome"), `Order #${order.orderId} ${order.status}`);
      } else {
        setText($("order-outcome"), `Queued (job ${order.id}): the outcome will appear in open orders`);
      }
    } catch (exc) {
      setText($("order-outcome"), "");
      this.showError(exc);
    } finally {
      submit.disabled = false;
    }
  }

  showError(exc) {
    const field = exc.field && $(`error-${exc.field}`) && !$(`error-${exc.field}`).closest("[hidden]") ? exc.field : "form";
    const code = exc.details?.binanceCode !== undefined ? ` (${exc.details.binanceCode})` : "";
    const node = $(`error-${field}`);
    setText(node, `${exc.message}${code}`);
    node.dataset.code = exc.code;
    const input = field === "form" ? null : this.form.elements[field];
    if (input) {
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
    this.log.add("rejected", `${exc.code}: ${exc.message}`, { tone: "bad" });
  }

  clearError(name) {
    const node = $(`error-${name}`);
    if (node) setText(node, "");
    const input = this.form.elements[name];
    if (input?.removeAttribute) input.removeAttribute("aria-invalid");
  }
}
