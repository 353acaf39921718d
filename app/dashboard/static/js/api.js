// The REST client: every answer is an envelope {data, requestId, timestamp} or
// {error: {code, message, details}, requestId, timestamp}; errors become ApiError (details.field
// names the input at fault). A 401 TOKEN_EXPIRED is refreshed once and retried; `persist` reads
// again after a failure that waiting can cure (a spent weight budget, an unavailable upstream).

export class ApiError extends Error {
  constructor(status, code, message, details = {}, requestId = null, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
    this.requestId = requestId;
    this.retryAfter = retryAfter;
  }

  get field() { return this.details.field ?? null; }

  static from(response, envelope) {
    const error = envelope?.error;
    const retryAfter = Number(response.headers.get("Retry-After")) || null;
    if (!error) {
      return new ApiError(response.status, "BAD_RESPONSE", `The gateway answered HTTP ${response.status}`, {},
        null, retryAfter);
    }
    return new ApiError(response.status, error.code, error.message, error.details, envelope.requestId, retryAfter);
  }
}

export class Api {
  constructor(session) {
    this.session = session;
  }

  get(path, query) { return this.request("GET", path, { query }); }
  post(path, body, headers) { return this.request("POST", path, { body, headers }); }
  put(path, body) { return this.request("PUT", path, { body }); }
  delete(path, query) { return this.request("DELETE", path, { query }); }

  async request(method, path, { query, body, headers = {} } = {}, retried = false) {
    const url = new URL(path, window.location.origin);
    for (const [name, value] of Object.entries(query || {})) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
    }
    const token = this.session.token;
    const sent = { ...headers };
    if (token) sent.Authorization = `Bearer ${token}`;
    if (body !== undefined) sent["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(url, { method, headers: sent, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (exc) {
      throw new ApiError(0, "NETWORK", "The gateway cannot be reached; check the connection", {});
    }
    const envelope = await response.json().catch(() => null);
    if (response.ok && envelope && "data" in envelope) return envelope.data;
    const error = ApiError.from(response, envelope);
    if (error.status === 401 && !retried) {
      if (error.code === "TOKEN_EXPIRED" && this.session.canRefresh) {
        try {
          await this.session.refresh();
        } catch {
          this.session.clear("expired"); // the refresh token is spent or revoked: sign in again
          throw error;
        }
        return this.request(method, path, { query, body, headers }, true);
      }
      if (["TOKEN_EXPIRED", "TOKEN_REVOKED", "TOKEN_INVALID"].includes(error.code)) this.session.clear("expired");
    }
    throw error;
  }
}

/** Whether the same request can succeed later: a limit (429), an upstream or gateway that is away
 * (502–504), or no network. Anything else (a 4xx about the request itself) fails the same again. */
export function transient(error) {
  return error instanceof ApiError && (error.status === 0 || error.status === 429 || (error.status >= 502 && error.status <= 504));
}

const MAX_WAIT_S = 30;

/** `load()`, again after each transient failure: after the answer's Retry-After, else 1, 2, 4 … 30 s.
 * `onWait(error, seconds)` shows the wait; once `alive()` is false (the view moved on) it stops and
 * resolves to null. Other failures are thrown. */
export async function persist(load, { alive = () => true, onWait = () => {} } = {}) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await load();
    } catch (error) {
      if (!transient(error)) throw error;
      if (!alive()) return null;
      const seconds = Math.min(MAX_WAIT_S, error.retryAfter ?? 2 ** attempt);
      onWait(error, seconds);
      await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
      if (!alive()) return null;
    }
  }
}
