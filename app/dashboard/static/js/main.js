// The dashboard: sign in, then one page of live market data and the account, built from the public
// REST + WebSocket API only (README "Dashboard").

import { Api, ApiError, persist } from "./api.js";
import { $, setText } from "./dom.js";
import { Frames } from "./frame.js";
import { MarketView } from "./market.js";
import { Session } from "./session.js";
import { LiveSocket } from "./socket.js";
import { AdminPanel, SystemPanel, confirmDialog } from "./system.js";
import { AccountView, EventLog, OrderForm, OrdersView, orderFromReport } from "./trading.js";

const THEME_KEY = "spotgate.theme";
const SYMBOL_KEY = "spotgate.symbol";
const LEFT_KEY = "spotgate.left"; // why the last session ended, shown on the sign-in form after the reload

const session = new Session();
const api = new Api(session);
let dashboard = null;

applyTheme(localStorage.getItem(THEME_KEY) || (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light"));
wireSignIn();
session.addEventListener("change", (event) => {
  if (!session.token) showSignIn(event.detail.reason);
});
boot();

async function boot() {
  const left = sessionStorage.getItem(LEFT_KEY);
  sessionStorage.removeItem(LEFT_KEY);
  if (await session.resume()) await open();
  else showSignIn(left);
}

// -- sign in -----------------------------------------------------------------------------------------

function wireSignIn() {
  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = event.target.elements;
    await signIn(() => session.login(f.username.value.trim(), f.password.value));
    f.password.value = "";
  });
  $("token-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = event.target.elements.token.value.trim().replace(/^Bearer\s+/i, "");
    await signIn(() => session.adopt(token));
    event.target.elements.token.value = "";
  });
  $("signout").addEventListener("click", () => session.logout());
  $("theme-toggle").addEventListener("click", () => {
    const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
    localStorage.setItem(THEME_KEY, next);
    applyTheme(next);
  });
}

async function signIn(attempt) {
  const error = $("signin-error");
  setText(error, "");
  for (const button of document.querySelectorAll("#signin button")) button.disabled = true;
  try {
    await attempt();
    await open();
  } catch (exc) {
    setText(error, exc instanceof ApiError ? exc.message : String(exc.message || exc));
  } finally {
    for (const button of document.querySelectorAll("#signin button")) button.disabled = false;
  }
}

function showSignIn(reason) {
  if (dashboard) {
    // A fresh page for the next sign-in: nothing of this session's state or sockets survives.
    dashboard.close();
    sessionStorage.setItem(LEFT_KEY, reason || "");
    location.reload();
    return;
  }
  $("app").hidden = true;
  $("signin").hidden = false;
  if (reason === "expired") setText($("signin-error"), "Your session has expired; sign in again.");
  if (reason === "signed-out") setText($("signin-error"), "Signed out.");
  $("login-username").focus();
  performance.mark("spotgate:signin-shown");
}

async function open() {
  if (dashboard) return;
  $("signin").hidden = true;
  $("app").hidden = false;
  dashboard = new Dashboard();
  // A handle for the browser console (and bench/dashboard.py): the render and socket state.
  globalThis.spotgate = { frames: dashboard.frames, socket: dashboard.socket };
  await dashboard.start();
}

function applyTheme(name) {
  document.documentElement.dataset.theme = name;
  const toggle = $("theme-toggle");
  toggle.setAttribute("aria-label", name === "dark" ? "Switch to light theme" : "Switch to dark theme");
  dashboard?.market.theme(name);
}

// -- the signed-in page ------------------------------------------------------------------------------

class Dashboard {
  constructor() {
    this.frames = new Frames();
    this.socket = new LiveSocket(session);
    this.log = new EventLog($("events"));
    this.market = new MarketView({ api, socket: this.socket, frames: this.frames, onChannels: () => this.subscribe() });
    this.orders = new OrdersView({ api, session, frames: this.frames, log: this.log, market: this.market });
    this.account = new AccountView({ api, frames: this.frames });
    this.system = new SystemPanel({ api, socket: this.socket, log: this.log });
    this.form = session.allows("trader") ? new OrderForm({ api, market: this.market, orders: this.orders, log: this.log }) : null;
    this.admin = session.allows("admin") ? new AdminPanel({ api, log: this.log, confirm: confirmDialog() }) : null;
    this.symbols = new Map();
    this.onUser = (e) => this.userEvent(e.detail.data);
    this.onResync = () => this.reload();
    this.onState = (e) => { if (e.detail.state === "restored") this.reload(); };
    // Events from before the user channel was subscribed never come: read the account once it is.
    this.onSubscribed = (e) => { if (e.detail.channels?.includes("user")) this.reload(); };
  }

  async start() {
    setText($("who"), `${session.sub} · ${session.role}`);
    $("order-form").hidden = !this.form;
    $("order-readonly").hidden = Boolean(this.form);
    $("admin-panel").hidden = !this.admin;
    $("events").replaceChildren();
    this.socket.addEventListener("user", this.onUser);
    this.socket.addEventListener("resync", this.onResync);
    this.socket.addEventListener("state", this.onState);
    this.socket.addEventListener("subscribed", this.onSubscribed);
    this.socket.start();
    this.system.start();
    this.market.theme(document.documentElement.dataset.theme);

    const rows = await api.get("/api/v1/symbols", { status: "TRADING" });
    this.symbols = new Map(rows.map((s) => [s.symbol, s]));
    this.orders.symbols = this.symbols;
    const picker = $("symbol");
    picker.replaceChildren(...rows.map((s) => new Option(`${s.baseAsset}/${s.quoteAsset}`, s.symbol)));
    const saved = localStorage.getItem(SYMBOL_KEY);
    picker.value = this.symbols.has(saved) ? saved : (this.symbols.has("BTCUSDT") ? "BTCUSDT" : rows[0]?.symbol);
    picker.onchange = () => this.choose(picker.value);
    await Promise.all([
      this.choose(picker.value),
      this.persist("account", () => this.account.load()),
      this.admin?.load().catch((exc) => this.log.add("error", `risk: ${exc.message}`, { tone: "bad" })),
    ]);
  }

  async choose(symbol) {
    localStorage.setItem(SYMBOL_KEY, symbol);
    const info = this.symbols.get(symbol);
    const loading = this.market.setSymbol(info);
    this.form?.changed();
    await Promise.all([
      loading.catch((exc) => this.log.add("error", `${symbol}: ${exc.message}`, { tone: "bad" })),
      this.persist("orders", () => this.orders.load()),
    ]);
    this.form?.hints();
  }

  /** `load()` until it succeeds or fails for good (a spent budget or an unavailable upstream is
   * waited out, each wait in the event log); a final failure goes to the event log too. */
  persist(what, load) {
    const onWait = (exc, seconds) => this.log.add("error", `${what}: ${exc.message} — retrying in ${seconds} s`, { tone: "bad" });
    return persist(load, { alive: () => dashboard === this, onWait })
      .catch((exc) => this.log.add("error", `${what}: ${exc.message}`, { tone: "bad" }));
  }

  subscribe() {
    this.socket.setChannels([...this.market.channels(), "user"]);
  }

  userEvent(event) {
    this.log.userEvent(event);
    if (event.e === "executionReport") {
      this.orders.upsert(orderFromReport(event));
      if (event.x === "TRADE") this.account.soon();
    } else if (event.e === "outboundAccountPosition") {
      this.account.accountPosition(event);
    }
  }

  /** After a reconnect or lost events: read the account again (events resumed cover the rest).
   * One read at a time: asked again while one is on its way (or waiting out a spent budget), it
   * reads once more after it, so the last read starts after the last reason to read. */
  async reload() {
    if (this.reloading) {
      this.reloadAgain = true;
      return;
    }
    this.reloading = true;
    try {
      do {
        this.reloadAgain = false;
        await Promise.all([this.persist("orders", () => this.orders.load()), this.persist("account", () => this.account.load())]);
      } while (this.reloadAgain && dashboard === this);
    } finally {
      this.reloading = false;
    }
  }

  close() {
    this.socket.removeEventListener("user", this.onUser);
    this.socket.removeEventListener("subscribed", this.onSubscribed);
    this.socket.stop();
    this.system.stop();
    $("order-form").reset();
  }
}
