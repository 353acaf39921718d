// Client-side hints for the order form from a symbol's filters (GET /api/v1/symbols: tickSize,
// stepSize, minQty, minNotional). They only advise: the API checks every order itself, and its
// errors are what the form shows at the field they name. No I/O, no DOM.

import { compare, isMultiple, multiply, scaled, trim } from "./decimal.js";

const PLAIN = /^\d+(\.\d+)?$/;

/**
 * order: {type: "LIMIT"|"MARKET", amountIn: "base"|"quote", price, quantity, quoteOrderQty}
 * symbol: one /symbols row; lastPrice: the ticker's last price (for MARKET estimates) or null.
 * Returns {price, quantity, quoteOrderQty, notional}: each {hint, warning?}.
 */
export function orderHints(order, symbol, lastPrice) {
  const tick = trim(symbol.tickSize || "");
  const step = trim(symbol.stepSize || "");
  const minQty = trim(symbol.minQty || "");
  const minNotional = trim(symbol.minNotional || "");
  const quote = symbol.quoteAsset;
  const hints = {
    price: { hint: tick ? `tick ${tick}` : "" },
    quantity: { hint: [step && `step ${step}`, minQty && `min ${minQty}`].filter(Boolean).join(" · ") },
    quoteOrderQty: { hint: minNotional ? `min ${minNotional} ${quote}` : "" },
    notional: { hint: "" },
  };
  const price = (order.price || "").trim();
  const quantity = (order.quantity || "").trim();
  const quoteQty = (order.quoteOrderQty || "").trim();

  if (order.type === "LIMIT" && price) {
    if (!PLAIN.test(price) || scaled(price, 0) === 0n && !/[1-9]/.test(price)) {
      hints.price.warning = "Enter a positive decimal price";
    } else if (tick && !isMultiple(price, tick)) {
      hints.price.warning = `Not a multiple of the tick size ${tick}`;
    }
  }
  const byQuote = order.type === "MARKET" && order.amountIn === "quote";
  if (!byQuote && quantity) {
    if (!PLAIN.test(quantity)) hints.quantity.warning = "Enter a positive decimal quantity";
    else if (step && !isMultiple(quantity, step)) hints.quantity.warning = `Not a multiple of the step size ${step}`;
    else if (minQty && compare(quantity, minQty) < 0) hints.quantity.warning = `Below the minimum quantity ${minQty}`;
  }
  let notional = null;
  if (byQuote) {
    if (quoteQty && !PLAIN.test(quoteQty)) hints.quoteOrderQty.warning = `Enter a positive ${quote} amount`;
    else if (quoteQty) notional = quoteQty;
  } else if (PLAIN.test(quantity)) {
    const reference = order.type === "LIMIT" ? price : lastPrice;
    if (reference && PLAIN.test(reference)) notional = multiply(quantity, reference);
  }
  if (notional !== null) {
    const estimate = order.type === "MARKET" ? "≈ " : "";
    hints.notional.hint = `${estimate}${trimTo(notional, 8)} ${quote}`;
    if (minNotional && compare(notional, minNotional) < 0) {
      const field = byQuote ? hints.quoteOrderQty : hints.notional;
      field.warning = `Order value below the minimum ${minNotional} ${quote}`;
    }
  }
  return hints;
}

function trimTo(text, decimals) {
  const [whole, fraction = ""] = String(text).split(".");
  return trim(fraction ? `${whole}.${fraction.slice(0, decimals)}` : whole);
}
