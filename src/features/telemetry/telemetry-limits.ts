/**
 * Bounds on what one request may carry (README "Ingest limits" lists them). They keep a single
 * client from making rows, labels or series arbitrarily large; per-org rates and series counts
 * are separate (org limits and the ingest.* config).
 */
export const INGEST_LIMITS = {
  /** Metrics + logs + events in one request. */
  maxItems: 10_000,
  metricNameMax: 200,
  /** Metric names: letters, digits, `_ : . / -`, starting with a letter, `_` or `:`. */
  metricNamePattern: '^[A-Za-z_:][A-Za-z0-9_:./-]*$',
  maxLabels: 32,
  labelKeyMax: 100,
  labelKeyPattern: '^[A-Za-z_][A-Za-z0-9_./-]*$',
  labelValueMax: 1024,
  /** OTLP metric unit (part of a series' identity). */
  unitMax: 100,
  /** OTLP metric description: longer ones are truncated (with a warning), not refused. */
  descriptionMax: 1024,
  logBodyMax: 65_536,
  maxAttributes: 64,
  attributeKeyMax: 100,
  /** A string attribute's length, or the JSON length of a structured one. */
  attributeValueMax: 4096,
  eventTypeMax: 100,
  eventTitleMax: 500,
  eventTextMax: 16_384,
  maxTags: 32,
  tagMax: 200,
} as const;
