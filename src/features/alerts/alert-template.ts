/*
 * Annotation templates: `{{ $value }}` and `{{ $labels.name }}` (spaces inside the braces
 * optional), as Prometheus rule annotations write them. Plain substitution, never evaluation: a
 * template cannot run code or reach anything but the alert's own value and labels. A label the
 * alert lacks renders empty; any other `{{ … }}` is left as written.
 */

const PLACEHOLDER = /\{\{\s*\$(value|labels\.([A-Za-z_][A-Za-z0-9_]*))\s*\}\}/g;

/** The value as a person reads it: up to 6 significant digits, no exponent for everyday sizes. */
export function formatValue(value: number | null): string {
  if (value === null || !Number.isFinite(value)) return '';
  if (Number.isInteger(value)) return String(value);
  return String(Number(value.toPrecision(6)));
}

export function renderTemplate(template: string, value: number | null, labels: Record<string, string>): string {
  return template.replace(PLACEHOLDER, (_m, what: string, label: string | undefined) => {
    if (what === 'value') return formatValue(value);
    return label !== undefined && Object.hasOwn(labels, label) ? labels[label] : '';
  });
}

export function renderAnnotations(annotations: Record<string, string>, value: number | null, labels: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(annotations)) out[k] = renderTemplate(v, value, labels);
  return out;
}
