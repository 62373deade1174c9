/**
 * Text PostgreSQL can store. `text` cannot hold NUL, and `jsonb` refuses a UTF-16 surrogate without
 * its partner (JSON.stringify writes it as a `\udXXX` escape). Control-plane input holding either is
 * refused at validation (400 naming the field); bulk ingest stores it with U+FFFD in its place.
 */
const SUSPECT = /[\u0000\ud800-\udfff]/;
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const UNSTORABLE_ALL = new RegExp(UNSTORABLE.source, 'g');

export const UNSTORABLE_TEXT_MESSAGE = 'must not contain NUL characters or unpaired UTF-16 surrogates';

export const isStorableText = (s: string): boolean => !SUSPECT.test(s) || !UNSTORABLE.test(s);

/** The same text with every NUL and unpaired surrogate replaced by U+FFFD. */
export const toStorableText = (s: string): string => (SUSPECT.test(s) ? s.replace(UNSTORABLE_ALL, '\ufffd') : s);

/**
 * A record PostgreSQL can store (labels, attributes): NUL characters and unpaired surrogates in
 * its keys and string values replaced by U+FFFD (toStorableText). The same object when nothing
 * needs replacing.
 */
export function toStorableRecord<T>(r: Record<string, T>): Record<string, T> {
  let out: Record<string, T> | null = null;
  for (const k in r) {
    const v = r[k];
    const ck = toStorableText(k);
    const cv = (typeof v === 'string' ? toStorableText(v) : v) as T;
    if (out || ck !== k || cv !== v) {
      out ??= { ...r };
      if (ck !== k) delete out[k];
      out[ck] = cv;
    }
  }
  return out ?? r;
}

const pointerToken = (key: string): string => toStorableText(key).replaceAll('~', '~0').replaceAll('/', '~1');

/**
 * JSON-pointer paths (under `root`) of the strings — values and object keys — in `value` that
 * PostgreSQL could not store; at most `max`. Iterative, so a deeply nested body cannot exhaust
 * the stack.
 */
export function findUnstorableText(value: unknown, root: string, max: number): string[] {
  const found: string[] = [];
  if (max <= 0) return found;
  if (typeof value === 'string') return isStorableText(value) ? found : [root];
  // Only containers are stacked and only their paths are built: a body of many plain values costs
  // one test per string, not one path string per value.
  const stack: [object, string][] = value !== null && typeof value === 'object' ? [[value, root]] : [];
  while (stack.length > 0) {
    const [node, path] = stack.pop()!;
    const isArray = Array.isArray(node);
    const keys = isArray ? null : Object.keys(node);
    const n = isArray ? (node as unknown[]).length : keys!.length;
    for (let i = 0; i < n; i++) {
      const key = isArray ? String(i) : keys![i];
      const child = (node as Record<string, unknown>)[key];
      const keyOk = isArray || isStorableText(key);
      if (keyOk && typeof child !== 'string' && (child === null || typeof child !== 'object')) continue;
      const at = `${path}/${isArray ? key : pointerToken(key)}`;
      if (!keyOk || (typeof child === 'string' && !isStorableText(child))) {
        found.push(at);
        if (found.length >= max) return found;
      } else if (typeof child === 'object') stack.push([child as object, at]);
    }
  }
  return found;
}
