// Helpers over query text: the filter part of a query, adding a filter, error positions.

/** Splits a query at its first top-level `|` (outside quotes): [filter, pipes or '']. */
export function splitPipes(q) {
  let quote = null;
  for (let i = 0; i < q.length; i++) {
    const c = q[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '|') return [q.slice(0, i).trim(), q.slice(i).trim()];
  }
  return [q.trim(), ''];
}

/** Whether a value can be written bare after `field:`. */
function bare(v) { return /^[\p{L}\p{N}_.\-/@]+$/u.test(v) && !v.startsWith('-'); }

/** Quotes a value for `field:value`. */
export function quoteValue(v) {
  const s = String(v);
  return bare(s) ? s : '"' + s.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"';
}

/** Adds `field:value` to the filter of q (before any pipe), unless it is there already. */
export function addFilter(q, field, value) {
  const term = `${field}:${quoteValue(value)}`;
  const [filter, pipes] = splitPipes(q || '');
  const words = filter.split(/\s+/);
  if (words.includes(term)) return q;
  const f = filter && filter !== '*' ? `${filter} ${term}` : term;
  return pipes ? `${f} ${pipes}` : f;
}

/** Turns a byte offset into UTF-8 text into a character (UTF-16) index. */
export function byteToIndex(text, byte) {
  const enc = new TextEncoder();
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    if (bytes >= byte) return i;
    const cp = text.codePointAt(i);
    bytes += enc.encode(String.fromCodePoint(cp)).length;
    if (cp > 0xffff) i++;
  }
  return text.length;
}
