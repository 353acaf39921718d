// Decimal strings as the API sends them ("65000.01000000"), handled without floating point:
// money is compared, checked against tick and step sizes, and shown from its digits.

const DECIMAL_RE = /^(\d+)(?:\.(\d+))?$/;

/** Number of decimals a size like "0.01000000" allows (2); "1.00000000" → 0. */
export function decimalsOf(size) {
  const match = DECIMAL_RE.exec(String(size ?? "").trim());
  if (!match) return 8;
  const fraction = (match[2] || "").replace(/0+$/, "");
  return fraction.length;
}

/** A decimal string as a BigInt scaled by 10^scale, or null when it is not a plain positive decimal. */
export function scaled(text, scale) {
  const match = DECIMAL_RE.exec(String(text ?? "").trim());
  if (!match) return null;
  const fraction = (match[2] || "").padEnd(scale, "0");
  if (fraction.length > scale && /[1-9]/.test(fraction.slice(scale))) return null; // finer than scale
  return BigInt(match[1] + fraction.slice(0, scale));
}

/** The string of a BigInt scaled by 10^scale. */
export function unscaled(value, scale) {
  const negative = value < 0n;
  const digits = (negative ? -value : value).toString().padStart(scale + 1, "0");
  const whole = digits.slice(0, digits.length - scale);
  const fraction = scale ? "." + digits.slice(digits.length - scale) : "";
  return (negative ? "-" : "") + whole + fraction;
}

/** Is `text` a whole multiple of `size` (both decimal strings)? */
export function isMultiple(text, size) {
  const scale = Math.max(decimalsOf(size), fractionDigits(text));
  const value = scaled(text, scale);
  const step = scaled(size, scale);
  if (value === null || step === null) return false;
  return step === 0n || value % step === 0n;
}

/** a × b for decimal strings, exact. */
export function multiply(a, b) {
  const sa = fractionDigits(a);
  const sb = fractionDigits(b);
  const x = scaled(a, sa);
  const y = scaled(b, sb);
  if (x === null || y === null) return null;
  return trim(unscaled(x * y, sa + sb));
}

/** Compare two decimal strings: -1, 0 or 1. */
export function compare(a, b) {
  const scale = Math.max(fractionDigits(a), fractionDigits(b));
  const x = signedScaled(a, scale);
  const y = signedScaled(b, scale);
  return x < y ? -1 : x > y ? 1 : 0;
}

export function isZero(text) {
  return !/[1-9]/.test(String(text));
}

/** "65000.01000000" shown with `decimals` digits (cut, never rounded up: a price is never made up). */
export function fixed(text, decimals) {
  const raw = String(text ?? "");
  const negative = raw.startsWith("-");
  const match = DECIMAL_RE.exec(negative ? raw.slice(1) : raw);
  if (!match) return raw || "–";
  const whole = match[1].replace(/^0+(?=\d)/, "");
  const fraction = (match[2] || "").padEnd(decimals, "0").slice(0, decimals);
  return (negative && /[1-9]/.test(whole + fraction) ? "-" : "") + whole + (decimals ? "." + fraction : "");
}

/** Trailing zeros dropped: "0.00100000" → "0.001", "12.000" → "12". */
export function trim(text) {
  const raw = String(text ?? "");
  if (!raw.includes(".")) return raw;
  return raw.replace(/0+$/, "").replace(/\.$/, "");
}

/** A large amount shown short: 1234567.89 → "1.23M" (display only). */
export function compact(text) {
  const value = Number(text);
  if (!Number.isFinite(value)) return String(text ?? "–");
  return new Intl.NumberFormat("en", { notation: "compact", maximumFractionDigits: 2 }).format(value);
}

function fractionDigits(text) {
  const match = DECIMAL_RE.exec(String(text ?? "").replace(/^-/, "").trim());
  return match && match[2] ? match[2].length : 0;
}

function signedScaled(text, scale) {
  const raw = String(text ?? "0").trim();
  const negative = raw.startsWith("-");
  const value = scaled(negative ? raw.slice(1) : raw, scale) ?? 0n;
  return negative ? -value : value;
}
