// A local order book from the `depth` channel, kept by Binance's rules (README "Order books"):
// a `depth.snapshot` replaces the book; the first `depth.diff` after it must have
// U <= lastUpdateId + 1 <= u, every next one U == previous u + 1; a diff ending at or before the
// book's update id is old and ignored. Anything else is a gap: the book is dropped and nothing is
// shown until the next snapshot (the gateway sends one whenever the chain breaks) — a wrong book is
// worse than none. No I/O, no DOM: the ladder renders `top()`.

import { isZero } from "./decimal.js";

export const BOOK_STATES = Object.freeze({ WAITING: "waiting", LIVE: "live" });

export class OrderBook {
  constructor() {
    this.reset();
    this.gaps = 0;
  }

  reset() {
    this.state = BOOK_STATES.WAITING;
    this.updateId = null;
    this.bids = new Map(); // price string → quantity string, exactly as received
    this.asks = new Map();
    this.fresh = false;
  }

  /** Replace the book with a snapshot `{lastUpdateId, bids, asks}`. */
  snapshot(data) {
    this.bids = new Map();
    this.asks = new Map();
    for (const [price, qty] of data.bids) if (!isZero(qty)) this.bids.set(price, qty);
    for (const [price, qty] of data.asks) if (!isZero(qty)) this.asks.set(price, qty);
    this.updateId = data.lastUpdateId;
    this.state = BOOK_STATES.LIVE;
    this.fresh = true;
  }

  /** Apply a diff `{U, u, bids, asks}`; returns "applied", "old" or "gap". */
  diff(data) {
    if (this.state !== BOOK_STATES.LIVE) return "gap"; // waiting for a snapshot: nothing to apply to
    if (data.u <= this.updateId) return "old";
    const continues = this.fresh
      ? data.U <= this.updateId + 1 && this.updateId + 1 <= data.u
      : data.U === this.updateId + 1;
    if (!continues) {
      this.gaps += 1;
      this.reset();
      return "gap";
    }
    for (const [price, qty] of data.bids) {
      if (isZero(qty)) this.bids.delete(price); else this.bids.set(price, qty);
    }
    for (const [price, qty] of data.asks) {
      if (isZero(qty)) this.asks.delete(price); else this.asks.set(price, qty);
    }
    this.updateId = data.u;
    this.fresh = false;
    return "applied";
  }

  /** The best `levels` of each side: bids highest first, asks lowest first, as [price, qty] strings. */
  top(levels = 20) {
    // Number() only orders the levels (prices of one symbol share their decimals); what is shown
    // is the strings themselves.
    const bids = [...this.bids].sort((a, b) => Number(b[0]) - Number(a[0])).slice(0, levels);
    const asks = [...this.asks].sort((a, b) => Number(a[0]) - Number(b[0])).slice(0, levels);
    return { bids, asks };
  }
}
