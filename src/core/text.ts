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

const pointerToken = (key: string): string => toStorableText(key).replaceAll('~', '~0').replaceAll('/', '~1');

/**
 * JSON-pointer paths (under `root`) of the strings — values and object keys — in `value` that
 * PostgreSQL could not store; at most `max`. Iterative, so a deeply nested body cannot exhaust
 * the stack.
 */
export function findUnstorableText(value: unknown, root: string, max: number): string[] {
  const found: string[] = [];
  const stack: [unknown, string][] = [[value, root]];
  while (stack.length > 0 && found.length < max) {
    const [node, path] = stack.pop()!;
    if (typeof node === 'string') {
      if (!isStorableText(node)) found.push(path);
    } else if (Array.isArray(node)) {
      for (let i = node.length - 1; i >= 0; i--) stack.push([node[i], `${path}/${i}`]);
    } else if (node !== null && typeof node === 'object') {
      const keys = Object.keys(node);
      for (let i = keys.length - 1; i >= 0; i--) {
        const key = keys[i];
        const at = `${path}/${pointerToken(key)}`;
        if (!isStorableText(key)) {
          found.push(at);
          if (found.length >= max) break;
        } else stack.push([(node as Record<string, unknown>)[key], at]);
      }
    }
  }
  return found;
}
