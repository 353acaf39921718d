// The one WebSocket the page keeps to the gateway's /ws: token by an `auth` message (never in the
// URL), channels subscribed and re-subscribed after every reconnect, user events resumed with
// `lastEventId`, reconnects with exponential backoff and jitter, and the connection state the
// system panel shows:
//
//   connecting ──▶ live ──▶ reconnecting ──▶ restored ──(5 s)──▶ live
//
// "reconnecting" means the page is not getting live data: its socket is down, or the feed behind a
// channel is (a `status: upstream_reconnecting`, the stream relay not reporting in /status, or no
// market message for `staleMs` while subscribed to a busy channel).

const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 15000;
const RESTORED_MS = 5000;
const PING_EVERY_MS = 15000;
const PONG_WITHIN_MS = 10000;
const EVENT_ID_KEY = "spotgate.lastEventId";

export const STATES = Object.freeze({
  CONNECTING: "connecting", LIVE: "live", RECONNECTING: "reconnecting", RESTORED: "restored",
});

export class LiveSocket extends EventTarget {
  constructor(session, { staleMs = 5000, url } = {}) {
    super();
    this.session = session;
    this.url = url || `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
    this.staleMs = staleMs;
    this.channels = new Set();
    this.ws = null;
    this.attempt = 0;
    this.everLive = false;
    this.trouble = new Set(["socket"]);
    this.restoredUntil = 0;
    this.lastMessageAt = null;
    this.lastMarketAt = null;
    this.lastEventId = session.storage.getItem(EVENT_ID_KEY);
    this.stopped = true;
    this.state = STATES.CONNECTING;
    this.reconnects = 0;
    this.onTokenChange = () => this.sendAuth();
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.session.addEventListener("change", this.onTokenChange);
    this.watchdog = setInterval(() => this.check(), 1000);
    this.connect();
  }

  stop() {
    this.stopped = true;
    this.session.removeEventListener("change", this.onTokenChange);
    clearInterval(this.watchdog);
    clearTimeout(this.retryTimer);
    if (this.ws) this.ws.close(1000, "signed out");
    this.ws = null;
  }

  /** Make the subscriptions equal `names` (canonical channel names). */
  setChannels(names) {
    const wanted = new Set(names);
    const added = [...wanted].filter((n) => !this.channels.has(n));
    const removed = [...this.channels].filter((n) => !wanted.has(n));
    this.channels = wanted;
    for (const name of removed) this.trouble.delete(`upstream:${name}`);
    if (this.isOpen()) {
      if (removed.length) this.send({ type: "unsubscribe", channels: removed });
      if (added.length) this.subscribe(added);
    }
    if (added.some(isMarket)) this.lastMarketAt = Date.now(); // a new channel gets time to speak
    this.update();
  }

  /** The stream relay's health from /api/v1/status (null: unknown). */
  setRelayRunning(running) {
    if (running === false) this.trouble.add("relay"); else this.trouble.delete("relay");
    this.update();
  }

  isOpen() { return this.ws?.readyState === WebSocket.OPEN; }

  connect() {
    if (this.stopped) return;
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => {
      this.sendAuth();
      if (this.channels.size) this.subscribe([...this.channels]);
      this.pingAt = Date.now() + PING_EVERY_MS;
    };
    ws.onmessage = (event) => this.receive(event.data);
    ws.onclose = (event) => this.closed(ws, event);
  }

  closed(ws, event) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.trouble.add("socket");
    this.update();
    if (this.stopped) return;
    if (event.code === 4401) { // token refused: refresh it, or sign in again
      if (this.session.canRefresh) {
        this.session.refresh().then(() => this.retry(), () => this.session.clear("expired"));
      } else {
        this.session.clear("expired");
      }
      return;
    }
    this.retry();
  }

  retry() {
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** this.attempt) * (0.8 + Math.random() * 0.4);
    this.attempt += 1;
    this.retryTimer = setTimeout(() => this.connect(), delay);
    this.dispatchEvent(new CustomEvent("retry", { detail: { delay, attempt: this.attempt } }));
  }

  sendAuth() {
    if (this.isOpen() && this.session.token) this.send({ type: "auth", token: this.session.token });
  }

  subscribe(names) {
    const message = { type: "subscribe", channels: names };
    if (names.includes("user") && this.lastEventId) message.lastEventId = this.lastEventId;
    this.send(message);
  }

  send(message) {
    if (this.isOpen()) this.ws.send(JSON.stringify(message));
  }

  receive(raw) {
    let message;
    try {
      message = JSON.parse(raw);
    } catch {
      return;
    }
    const now = Date.now();
    this.lastMessageAt = now;
    this.pongDue = null;
    switch (message.type) {
      case "welcome":
        this.attempt = 0;
        this.trouble.delete("socket");
        if (this.everLive) this.reconnects += 1;
        this.update();
        break;
      case "status":
        if (message.data?.state === "upstream_reconnecting") this.trouble.add(`upstream:${message.channel}`);
        if (message.data?.state === "upstream_restored") this.trouble.delete(`upstream:${message.channel}`);
        this.update();
        break;
      case "user":
        if (message.id) {
          this.lastEventId = message.id;
          this.session.storage.setItem(EVENT_ID_KEY, message.id);
        }
        break;
      case "error":
        if (message.code === "EVENTS_TRIMMED" || message.code === "INVALID_EVENT_ID") {
          // Missed events are gone: start from now and let the page re-read the account.
          this.lastEventId = null;
          this.session.storage.removeItem(EVENT_ID_KEY);
          this.dispatchEvent(new CustomEvent("resync"));
        }
        break;
      default:
        if (message.channel && isMarket(message.channel)) {
          this.lastMarketAt = now;
          if (this.trouble.delete("silent")) this.update();
        }
    }
    this.dispatchEvent(new CustomEvent(message.type, { detail: message }));
  }

  check() {
    const now = Date.now();
    if (this.isOpen()) {
      if (this.pongDue && now > this.pongDue) { // a dead connection the browser has not noticed
        this.ws.close(4000, "no pong");
        return;
      }
      if (now >= this.pingAt) {
        this.send({ type: "ping" });
        this.pingAt = now + PING_EVERY_MS;
        this.pongDue ??= now + PONG_WITHIN_MS;
      }
      const market = [...this.channels].some(isMarket);
      if (market && this.lastMarketAt && now - this.lastMarketAt > this.staleMs) this.trouble.add("silent");
    }
    this.update();
  }

  update() {
    const now = Date.now();
    let state;
    if (this.trouble.size) {
      state = this.everLive ? STATES.RECONNECTING : STATES.CONNECTING;
      if (this.everLive) this.restoredUntil = Infinity; // restored is shown once everything is back
    } else {
      if (this.restoredUntil === Infinity) this.restoredUntil = now + RESTORED_MS;
      this.everLive = true;
      state = now < this.restoredUntil ? STATES.RESTORED : STATES.LIVE;
    }
    if (state !== this.state) {
      this.state = state;
      this.dispatchEvent(new CustomEvent("state", { detail: { state, reasons: [...this.trouble] } }));
    }
  }

  /** Why the feed is not live, in words for the system panel. */
  reasons() {
    return [...this.trouble].map((t) => {
      if (t === "socket") return "connection to the gateway closed";
      if (t === "relay") return "stream relay not running";
      if (t === "silent") return `no market data for ${Math.round(this.staleMs / 1000)} s`;
      return `upstream reconnecting (${t.slice("upstream:".length)})`;
    });
  }
}

function isMarket(channel) {
  return channel !== "user" && channel !== "orders";
}
