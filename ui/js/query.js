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

/**
 * The top-level terms of a filter, in order, quotes kept, with where each starts and ends:
 * words, phrases, field terms, operators, and `i(…)` whole. Parentheses and spaces separate
 * them.
 */
function terms(filter) {
  const out = [];
  let i = 0;
  const n = filter.length;
  while (i < n) {
    const c = filter[i];
    if (/\s|\(|\)/.test(c)) { i++; continue; }
    let j = i, quote = null;
    while (j < n) {
      const d = filter[j];
      if (quote) { if (d === '\\') j++; else if (d === quote) quote = null; j++; continue; }
      if (d === '"' || d === "'") { quote = d; j++; continue; }
      if (/\s|\)/.test(d) || (d === '(' && j > i)) break;
      j++;
    }
    if (filter.slice(i, j) === 'i' && filter[j] === '(') {
      let k = j + 1, q2 = null;
      while (k < n) {
        const d = filter[k++];
        if (q2) { if (d === '\\') k++; else if (d === q2) q2 = null; } else if (d === '"' || d === "'") q2 = d; else if (d === ')') break;
      }
      j = k;
    }
    out.push({ text: filter.slice(i, j), start: i, end: j });
    i = j;
  }
  return out;
}

/** The text of a quoted phrase, its escapes undone. */
const unquote = (t) => t.slice(1, -1).replace(/\\(.)/g, (_, c) => ({ n: '\n', t: '\t' })[c] ?? c);

/**
 * The words and phrases a filter requires in the message, to highlight: `{text, anyCase}`
 * for each bare word, quoted phrase and `i(…)`, leaving out field terms, regexes and what
 * is negated (`-x`, `NOT x`).
 */
export function searchTerms(filter) {
  const found = [];
  let negated = false;
  for (const { text: t } of terms(filter)) {
    if (t === 'NOT') { negated = true; continue; }
    const skip = negated || t.startsWith('-');
    negated = false;
    if (skip || t === 'AND' || t === 'OR' || t === '*') continue;
    if (t.startsWith('i(') && t.endsWith(')')) {
      const inner = t.slice(2, -1).trim();
      const text = /^(["']).*\1$/s.test(inner) ? unquote(inner) : inner;
      if (text) found.push({ text, anyCase: true });
    } else if (/^(["']).*\1$/s.test(t) && t.length > 2) {
      found.push({ text: unquote(t), anyCase: false });
    } else if (!t.includes(':') && !t.startsWith('~') && /[\p{L}\p{N}]/u.test(t)) {
      found.push({ text: t, anyCase: false });
    }
  }
  return found;
}

/**
 * The filter with each word and phrase made case-insensitive (`Timeout` → `i(Timeout)`,
 * `"Conn refused"` → `i("Conn refused")`, `-debug` → `-i(debug)`), or null when it has none.
 * Field terms, regexes, operators and `i(…)` already there are kept as they are.
 */
export function caseless(filter) {
  let out = '';
  let at = 0;
  let changed = false;
  for (const { text: term, start, end } of terms(filter)) {
    const neg = term.startsWith('-') && term.length > 1 ? '-' : '';
    const body = neg ? term.slice(1) : term;
    const word = /^[\p{L}\p{N}_][\p{L}\p{N}_.\-/@]*$/u.test(body) && !['AND', 'OR', 'NOT', 'i'].includes(body) && /\p{L}/u.test(body);
    const phrase = /^(["']).*\1$/s.test(body) && body.length > 2;
    if (!word && !phrase) continue;
    out += filter.slice(at, start) + `${neg}i(${body})`;
    at = end;
    changed = true;
  }
  return changed ? out + filter.slice(at) : null;
}
