// The market side of the page for the chosen symbol: header (last price, 24 h change, high, low,
// volume) from `ticker`, the candlestick chart from REST klines + `kline`, the order book ladder
// from `depth` (book.js keeps the rules) and recent trades from `trades`.

import { persist } from "./api.js";
import { OrderBook, BOOK_STATES } from "./book.js";
import { CandleChart } from "./chart.js";
import { compare, compact, decimalsOf, fixed, scaled, unscaled } from "./decimal.js";
import { $, clockTime, el, setText } from "./dom.js";

export const INTERVALS = ["1s", "1m", "5m", "15m", "1h", "4h", "1d"];
export const LEVELS = 20;
const TRADES_SHOWN = 40;
const HISTORY_CANDLES = 500;

export class MarketView {
  constructor({ api, socket, frames, onChannels }) {
    this.api = api;
    this.socket = socket;
    this.frames = frames;
    this.onChannels = onChannels;
    this.symbol = null;
    this.info = null;
    this.interval = "1m";
    this.generation = 0;
    this.book = new OrderBook();
    this.trades = [];
    this.ticker = null;
    this.previousLast = null;
    this.firstPrice = false;
    this.chart = new CandleChart($("chart"));
    this.ladder = { asks: makeRows($("asks"), LEVELS), bids: makeRows($("bids"), LEVELS) };
    this.tradeRows = [];
    this.buildIntervals();
    socket.addEventListener("ticker", (e) => this.onTicker(e.detail));
    socket.addEventListener("depth.snapshot", (e) => this.onDepth(e.detail, true));
    socket.addEventListener("depth.diff", (e) => this.onDepth(e.detail, false));
    socket.addEventListener("trade", (e) => this.onTrade(e.detail));
    socket.addEventListener("kline", (e) => this.onKline(e.detail));
  }

  channels() {
    if (!this.symbol) return [];
    const s = this.symbol;
    return [`ticker:${s}`, `depth:${s}`, `trades:${s}`, `kline:${s}:${this.interval}`];
  }

  get priceDecimals() { return decimalsOf(this.info?.tickSize); }
  get qtyDecimals() { return decimalsOf(this.info?.stepSize); }

  theme(name) { this.chart.theme(name, this.info ? this.priceDecimals : undefined); }

  async setSymbol(info) {
    this.symbol = info.symbol;
    this.info = info;
    this.generation += 1;
    this.book.reset();
    this.trades = [];
    this.ticker = null;
    this.previousLast = null;
    this.chart.theme(document.documentElement.dataset.theme, this.priceDecimals);
    for (const unit of document.querySelectorAll("[data-unit]")) {
      unit.textContent = unit.dataset.unit === "base" ? info.baseAsset : info.quoteAsset;
    }
    this.drawTicker();
    this.drawBook();
    this.drawTrades();
    this.onChannels();
    const generation = this.generation;
    await Promise.all([
      this.loadTicker(generation), this.loadHistory(generation), this.loadTrades(generation),
    ]);
  }

  async loadTicker(generation) {
    const alive = () => generation === this.generation;
    const ticker = await persist(() => this.api.get("/api/v1/ticker/24hr", { symbol: this.symbol }), { alive })
      .catch(() => null);
    if (ticker && generation === this.generation && !this.ticker) {
      this.ticker = ticker;
      this.frames.mark("ticker", () => this.drawTicker());
    }
  }

  async loadHistory(generation) {
    const interval = this.interval;
    const alive = () => generation === this.generation && interval === this.interval;
    const klines = await persist(
      () => this.api.get("/api/v1/klines", { symbol: this.symbol, interval, limit: HISTORY_CANDLES }),
      { alive, onWait: (error, seconds) => setText($("chart-caption"), `history: ${error.message} — retrying in ${seconds} s`) },
    );
    if (!alive()) return;
    this.chart.history(klines, interval);
    this.drawCaption();
  }

  async loadTrades(generation) {
    const alive = () => generation === this.generation;
    const trades = await persist(() => this.api.get("/api/v1/trades", { symbol: this.symbol, limit: TRADES_SHOWN }), { alive })
      .catch(() => []);
    if (!alive()) return;
    for (const t of trades) this.addTrade({ id: t.id, price: t.price, qty: t.qty, time: t.time, isBuyerMaker: t.isBuyerMaker });
    this.frames.mark("trades", () => this.drawTrades());
  }

  // -- stream handlers: change state, mark the view -----------------------------------------------

  onTicker(message) {
    if (message.channel !== `ticker:${this.symbol}`) return;
    this.ticker = message.data;
    this.frames.mark("ticker", () => this.drawTicker());
  }

  onDepth(message, isSnapshot) {
    if (message.channel !== `depth:${this.symbol}`) return;
    if (isSnapshot) this.book.snapshot(message.data);
    else this.book.diff(message.data);
    this.frames.mark("book", () => this.drawBook());
  }

  onTrade(message) {
    if (message.channel !== `trades:${this.symbol}`) return;
    this.addTrade(message.data);
    this.frames.mark("trades", () => this.drawTrades());
  }

  onKline(message) {
    if (message.channel !== `kline:${this.symbol}:${this.interval}`) return;
    this.chart.live(message.data);
    this.frames.mark("caption", () => this.drawCaption());
  }

  addTrade(trade) {
    if (this.trades.some((t) => t.id === trade.id)) return;
    this.trades.push(trade);
    this.trades.sort((a, b) => b.id - a.id);
    if (this.trades.length > TRADES_SHOWN) this.trades.length = TRADES_SHOWN;
  }

  // -- drawing (once per frame at most) -----------------------------------------------------------

  drawTicker() {
    const t = this.ticker;
    const last = $("last-price");
    if (!t) {
      for (const id of ["last-price", "change-24h", "high-24h", "low-24h", "volume-24h"]) setText($(id), "–");
      last.dataset.direction = "";
      return;
    }
    const price = t.lastPrice ?? t.price;
    if (this.previousLast !== null && price !== this.previousLast) {
      last.dataset.direction = compare(price, this.previousLast) > 0 ? "up" : "down";
    }
    this.previousLast = price;
    setText(last, fixed(price, this.priceDecimals));
    const change = $("change-24h");
    const pct = t.priceChangePercent ?? "0";
    setText(change, `${fixed(t.priceChange, this.priceDecimals)} (${fixed(pct, 2)} %)`);
    change.dataset.direction = String(pct).startsWith("-") ? "down" : "up";
    setText($("high-24h"), fixed(t.highPrice, this.priceDecimals));
    setText($("low-24h"), fixed(t.lowPrice, this.priceDecimals));
    setText($("volume-24h"), `${compact(t.volume)} ${this.info.baseAsset}`);
    document.title = `${fixed(price, this.priceDecimals)} ${this.symbol} · spotgate`;
    if (!this.firstPrice) {
      this.firstPrice = true;
      performance.mark("spotgate:first-price");
    }
  }

  drawBook() {
    const state = $("book-state");
    const live = this.book.state === BOOK_STATES.LIVE;
    state.dataset.state = live ? "live" : "waiting";
    setText(state, live ? `update ${this.book.updateId}` : "waiting for snapshot");
    $("ladder").dataset.state = live ? "live" : "waiting";
    const { bids, asks } = live ? this.book.top(LEVELS) : { bids: [], asks: [] };
    const pd = this.priceDecimals;
    const qd = this.qtyDecimals;
    const totalsAsk = cumulative(asks, qd);
    const totalsBid = cumulative(bids, qd);
    const deepest = Math.max(Number(totalsAsk.at(-1) ?? 0), Number(totalsBid.at(-1) ?? 0)) || 1;
    // Asks are drawn highest first, so the best ask sits next to the spread.
    this.ladder.asks.forEach((row, i) => {
      const k = LEVELS - 1 - i;
      fillRow(row, asks[k], totalsAsk[k], pd, qd, deepest);
    });
    this.ladder.bids.forEach((row, i) => fillRow(row, bids[i], totalsBid[i], pd, qd, deepest));
    if (bids.length && asks.length) {
      const spread = unscaled(scaled(asks[0][0], pd) - scaled(bids[0][0], pd), pd);
      setText($("spread"), `spread ${spread}`);
    } else {
      setText($("spread"), live ? "–" : "resyncing…");
    }
  }

  drawTrades() {
    const box = $("trades");
    while (this.tradeRows.length < this.trades.length) {
      const row = el("div", "trade-row");
      row.append(el("span", "price"), el("span", "num"), el("span", "muted"));
      box.append(row);
      this.tradeRows.push(row);
    }
    this.tradeRows.forEach((row, i) => {
      const t = this.trades[i];
      row.hidden = !t;
      if (!t) return;
      row.dataset.side = t.isBuyerMaker ? "sell" : "buy";
      setText(row.children[0], fixed(t.price, this.priceDecimals));
      setText(row.children[1], fixed(t.qty, this.qtyDecimals));
      setText(row.children[2], clockTime(t.time));
    });
  }

  drawCaption() {
    setText($("chart-caption"), `${this.chart.count} candles · ${this.interval}`);
    $("chart").dataset.candles = String(this.chart.count);
  }

  buildIntervals() {
    const box = $("intervals");
    for (const interval of INTERVALS) {
      const button = el("button", "", interval);
      button.type = "button";
      button.dataset.interval = interval;
      button.setAttribute("aria-pressed", String(interval === this.interval));
      button.addEventListener("click", () => this.setInterval(interval));
      box.append(button);
    }
  }

  setInterval(interval) {
    if (interval === this.interval) return;
    this.interval = interval;
    for (const b of $("intervals").children) b.setAttribute("aria-pressed", String(b.dataset.interval === interval));
    this.onChannels();
    this.loadHistory(this.generation).catch((exc) => console.warn("klines", exc));
  }
}

function makeRows(box, count) {
  const rows = [];
  for (let i = 0; i < count; i += 1) {
    const row = el("div", "level");
    row.append(el("span", "price"), el("span", "num qty"), el("span", "num total muted"));
    box.append(row);
    rows.push(row);
  }
  return rows;
}

function fillRow(row, level, total, pd, qd, deepest) {
  if (!level) {
    if (!row.classList.contains("empty")) {
      row.classList.add("empty");
      for (const cell of row.children) cell.textContent = "";
      delete row.dataset.price;
      row.style.setProperty("--depth", "0%");
    }
    return;
  }
  row.classList.remove("empty");
  row.dataset.price = level[0];
  row.dataset.qty = level[1];
  setText(row.children[0], fixed(level[0], pd));
  setText(row.children[1], fixed(level[1], qd));
  setText(row.children[2], fixed(total, qd));
  row.style.setProperty("--depth", `${Math.min(100, (Number(total) / deepest) * 100).toFixed(1)}%`);
}

function cumulative(levels, decimals) {
  const scale = Math.max(decimals, 8);
  let sum = 0n;
  return levels.map(([, qty]) => {
    sum += scaled(qty, scale) ?? 0n;
    return unscaled(sum, scale);
  });
}
