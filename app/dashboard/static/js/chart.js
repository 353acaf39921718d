// The candlestick chart (TradingView's lightweight-charts, vendored under /dashboard/vendor): klines
// history from REST, then live candles from the `kline` channel, with volume below.

import {
  CandlestickSeries, ColorType, CrosshairMode, HistogramSeries, createChart,
} from "../vendor/lightweight-charts/lightweight-charts.standalone.production.mjs";

const THEMES = {
  light: { background: "#ffffff", text: "#1f2933", grid: "#eef1f4", border: "#d9dee3", up: "#0a8f5a", down: "#d03b3b" },
  dark: { background: "#12161c", text: "#d5dbe1", grid: "#1d232b", border: "#2b333d", up: "#2ebd85", down: "#f6465d" },
};

export class CandleChart {
  constructor(container) {
    this.container = container;
    this.chart = createChart(container, {
      autoSize: true,
      crosshair: { mode: CrosshairMode.Normal },
      timeScale: { timeVisible: true, secondsVisible: false, rightOffset: 4 },
      rightPriceScale: { scaleMargins: { top: 0.08, bottom: 0.25 } },
    });
    this.candles = this.chart.addSeries(CandlestickSeries, { borderVisible: false });
    this.volume = this.chart.addSeries(HistogramSeries, {
      priceScaleId: "volume", priceFormat: { type: "volume" }, lastValueVisible: false, priceLineVisible: false,
    });
    this.chart.priceScale("volume").applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
    this.count = 0;
    this.lastTime = null;
  }

  theme(name, decimals) {
    const t = THEMES[name] || THEMES.light;
    this.colors = t;
    this.chart.applyOptions({
      layout: { background: { type: ColorType.Solid, color: t.background }, textColor: t.text,
                fontFamily: "system-ui, sans-serif" },
      grid: { vertLines: { color: t.grid }, horzLines: { color: t.grid } },
      rightPriceScale: { borderColor: t.border },
      timeScale: { borderColor: t.border },
    });
    this.candles.applyOptions({
      upColor: t.up, downColor: t.down, wickUpColor: t.up, wickDownColor: t.down,
      ...(decimals === undefined ? {} : { priceFormat: { type: "price", precision: decimals, minMove: 10 ** -decimals } }),
    });
  }

  /** Candles from GET /api/v1/klines (objects with named fields, decimals as strings). */
  history(klines, interval) {
    const seconds = interval === "1s";
    this.chart.applyOptions({ timeScale: { secondsVisible: seconds } });
    const candles = klines.map(toCandle);
    this.candles.setData(candles);
    this.volume.setData(klines.map((k) => this.toVolume(k)));
    this.count = candles.length;
    this.lastTime = candles.length ? candles[candles.length - 1].time : null;
    this.chart.timeScale().scrollToRealTime();
  }

  /** One `kline` message: the current candle, updated in place, or a new one appended. */
  live(kline) {
    const candle = toCandle(kline);
    if (this.lastTime !== null && candle.time < this.lastTime) return; // older than what is drawn
    if (candle.time !== this.lastTime) this.count += 1;
    this.lastTime = candle.time;
    this.candles.update(candle);
    this.volume.update(this.toVolume(kline));
  }

  toVolume(k) {
    const up = Number(k.close) >= Number(k.open);
    const color = up ? this.colors?.up ?? "#0a8f5a" : this.colors?.down ?? "#d03b3b";
    return { time: k.openTime / 1000, value: Number(k.volume), color: color + "66" };
  }
}

// The chart library draws with numbers; the strings stay the source everywhere else.
function toCandle(k) {
  return { time: k.openTime / 1000, open: Number(k.open), high: Number(k.high), low: Number(k.low), close: Number(k.close) };
}
