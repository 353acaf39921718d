// Who is signed in: the access token (and refresh token when signed in with a password), kept in
// sessionStorage — this tab only, gone when it closes — and refreshed before it expires.

import { ApiError } from "./api.js";

const KEY = "spotgate.session";
const REFRESH_AT = 0.75;   // of the token's lifetime
const MIN_AHEAD_MS = 5000; // refresh at least this long before expiry

export class Session extends EventTarget {
  constructor(storage = window.sessionStorage) {
    super();
    this.storage = storage;
    this.state = null; // {token, refreshToken, sub, role, exp, iat}
    this.timer = null;
    this.refreshing = null;
    const saved = storage.getItem(KEY);
    if (saved) {
      try {
        this.state = JSON.parse(saved);
      } catch {
        storage.removeItem(KEY);
      }
    }
  }

  get token() { return this.state?.token ?? null; }
  get role() { return this.state?.role ?? null; }
  get sub() { return this.state?.sub ?? null; }
  get exp() { return this.state?.exp ?? null; }
  get canRefresh() { return Boolean(this.state?.refreshToken); }

  /** viewer < trader < admin */
  allows(role) {
    const order = { viewer: 1, trader: 2, admin: 3 };
    return (order[this.role] || 0) >= (order[role] || 99);
  }

  async login(username, password) {
    const pair = await post("/api/v1/auth/login", { username, password });
    await this.adopt(pair.accessToken, pair.refreshToken);
  }

  /** A pasted token: checked with GET /api/v1/auth/me before it is kept. */
  async adopt(token, refreshToken = null) {
    const me = await authorized("GET", "/api/v1/auth/me", token);
    this.set({ token, refreshToken, sub: me.sub, role: me.role, exp: me.exp, iat: me.iat });
  }

  set(state) {
    this.state = state;
    this.storage.setItem(KEY, JSON.stringify(state));
    this.schedule();
    this.dispatchEvent(new CustomEvent("change", { detail: { reason: "token" } }));
  }

  /** Resume a saved session: refresh at once if its token is (nearly) expired. */
  async resume() {
    if (!this.state) return false;
    if (this.state.exp * 1000 - Date.now() < MIN_AHEAD_MS) {
      if (!this.canRefresh) { this.clear("expired"); return false; }
      try { await this.refresh(); } catch { this.clear("expired"); return false; }
    }
    this.schedule();
    return true;
  }

  schedule() {
    clearTimeout(this.timer);
    if (!this.state || !this.canRefresh) return;
    const { iat, exp } = this.state;
    const lifetime = (exp - iat) * 1000;
    const at = Math.min(iat * 1000 + lifetime * REFRESH_AT, exp * 1000 - MIN_AHEAD_MS);
    this.timer = setTimeout(() => this.refresh().catch(() => this.clear("expired")), Math.max(0, at - Date.now()));
  }

  /** One refresh at a time (a 401 and the timer may ask together); the refresh token is rotated. */
  refresh() {
    if (!this.canRefresh) return Promise.reject(new Error("no refresh token"));
    this.refreshing ??= (async () => {
      try {
        const pair = await post("/api/v1/auth/refresh", { refreshToken: this.state.refreshToken });
        await this.adopt(pair.accessToken, pair.refreshToken);
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  async logout() {
    const state = this.state;
    this.clear("signed-out");
    if (state) {
      const body = state.refreshToken ? { refreshToken: state.refreshToken } : {};
      await authorized("POST", "/api/v1/auth/logout", state.token, body).catch(() => {});
    }
  }

  clear(reason) {
    clearTimeout(this.timer);
    this.state = null;
    this.storage.removeItem(KEY);
    this.dispatchEvent(new CustomEvent("change", { detail: { reason } }));
  }
}

async function post(path, body) {
  return send("POST", path, { "Content-Type": "application/json" }, JSON.stringify(body));
}

async function authorized(method, path, token, body) {
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  return send(method, path, headers, body === undefined ? undefined : JSON.stringify(body));
}

async function send(method, path, headers, body) {
  const response = await fetch(path, { method, headers, body });
  const envelope = await response.json().catch(() => null);
  if (!response.ok || !envelope || envelope.error) throw ApiError.from(response, envelope);
  return envelope.data;
}
