/**
 * One instrumented process for test/integration/otlp-sdk-streams.test.ts, run as its own OS
 * process (child_process.fork, IPC channel). It builds the real OpenTelemetry JS SDK — two meter
 * providers on one resource, one exporting cumulative and one delta temporality — with the real
 * OTLP exporter (protobuf or JSON), records what the parent tells it to, and exports only when
 * told (forceFlush), reporting what each export carried and when. It never exports on exit: the
 * parent ends it with `exit` (or SIGKILL), so no point leaves it that the parent did not see.
 *
 * Environment: SDK_CHILD_URL (…/v1/metrics), SDK_CHILD_KEY (ingest API key), SDK_CHILD_PROTOCOL
 * (proto | json), SDK_CHILD_SCOPE (meter name), SDK_CHILD_RESOURCE (JSON attributes; a
 * `process.pid` there overrides the real one), SDK_CHILD_PROCESS_DETECTOR=1 (add the SDK's
 * process detector's attributes).
 */
import { diag, DiagLogLevel, type Attributes } from '@opentelemetry/api';
import { AggregationTemporalityPreference, OTLPMetricExporter as JsonMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as ProtoMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { defaultResource, detectResources, processDetector, resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import { AggregationTemporality, AggregationType, DataPointType, MeterProvider, PeriodicExportingMetricReader, type PushMetricExporter, type ResourceMetrics } from '@opentelemetry/sdk-metrics';

/** What the parent asks: record these measurements, then export both providers. */
export interface StepCommand {
  cmd: 'step';
  /** Counter (cumulative) adds. */
  requests: number[];
  /** Up-down counter (cumulative) adds, negative ones included. */
  inflight: number[];
  /** Explicit-bucket histogram (cumulative) records. */
  latency: number[];
  /** Exponential histogram (cumulative) records. */
  size: number[];
  /** Counter (delta) adds. */
  bytes: number[];
  /** Explicit-bucket histogram (delta) records. */
  wait: number[];
}
export type ChildCommand = StepCommand | { cmd: 'exit' };

/** One exported data point as the SDK handed it to the exporter. */
export interface ExportedPoint {
  name: string;
  temporality: 'cumulative' | 'delta';
  /** endTime (the point's timeUnixNano) in nanoseconds, as decimal text. */
  timeNanos: string;
  attributes: Attributes;
  /** Sums: the value; histograms: count, sum and (explicit buckets) the per-bucket counts; exponential: also zeroCount. */
  value: number | { count: number; sum: number; counts?: number[]; zeroCount?: number };
}

export type ChildMessage =
  | { type: 'ready'; pid: number; resource: Attributes }
  | { type: 'stepped'; codes: number[]; points: ExportedPoint[]; warnings: string[] }
  | { type: 'failed'; error: string };

/** Bucket boundaries of both explicit-bucket histograms. */
export const LATENCY_BOUNDS = [10, 100];

const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

function send(msg: ChildMessage): void {
  process.send?.(msg);
}

async function main(): Promise<void> {
  const url = env('SDK_CHILD_URL');
  const headers = { Authorization: `Bearer ${env('SDK_CHILD_KEY')}` };
  const protocol = env('SDK_CHILD_PROTOCOL');
  const scope = env('SDK_CHILD_SCOPE');
  const given = JSON.parse(env('SDK_CHILD_RESOURCE')) as Attributes;

  let resource: Resource = defaultResource();
  if (process.env.SDK_CHILD_PROCESS_DETECTOR === '1') resource = resource.merge(detectResources({ detectors: [processDetector] }));
  resource = resource.merge(resourceFromAttributes({ 'process.pid': process.pid, ...given }));
  await resource.waitForAsyncAttributes?.();

  // The exporters' partialSuccess ends up in diag.warn: kept and reported with the step.
  const warnings: string[] = [];
  diag.setLogger({ error: (m, ...a) => warnings.push([m, ...a].join(' ')), warn: (m, ...a) => warnings.push([m, ...a].join(' ')), info: () => {}, debug: () => {}, verbose: () => {} }, DiagLogLevel.WARN);

  const codes: number[] = [];
  const points: ExportedPoint[] = [];
  const exporterOf = (preference: AggregationTemporalityPreference): PushMetricExporter => {
    const exporter: PushMetricExporter =
      protocol === 'proto' ? new ProtoMetricExporter({ url, headers, temporalityPreference: preference }) : new JsonMetricExporter({ url, headers, temporalityPreference: preference });
    const inner = exporter.export.bind(exporter);
    exporter.export = (metrics: ResourceMetrics, cb) => {
      points.push(...pointsOf(metrics));
      inner(metrics, (r) => {
        codes.push(r.code);
        cb(r);
      });
    };
    return exporter;
  };
  // Never exported by the timer: only forceFlush exports.
  const reader = (preference: AggregationTemporalityPreference) => new PeriodicExportingMetricReader({ exporter: exporterOf(preference), exportIntervalMillis: 86_400_000, exportTimeoutMillis: 10_000 });
  const cumulative = new MeterProvider({
    resource,
    readers: [reader(AggregationTemporalityPreference.CUMULATIVE)],
    views: [{ instrumentName: 'sdk_size', aggregation: { type: AggregationType.EXPONENTIAL_HISTOGRAM } }],
  });
  const delta = new MeterProvider({ resource, readers: [reader(AggregationTemporalityPreference.DELTA)] });

  const c = cumulative.getMeter(scope, '1.0.0');
  const d = delta.getMeter(scope, '1.0.0');
  const requests = c.createCounter('sdk_requests', { unit: '{request}', description: 'Requests served' });
  const inflight = c.createUpDownCounter('sdk_inflight', { unit: '{request}', description: 'Requests in flight' });
  const latency = c.createHistogram('sdk_latency_ms', { unit: 'ms', description: 'Request latency', advice: { explicitBucketBoundaries: LATENCY_BOUNDS } });
  const size = c.createHistogram('sdk_size', { unit: 'By', description: 'Response size' });
  const bytes = d.createCounter('sdk_bytes', { unit: 'By', description: 'Bytes sent' });
  const wait = d.createHistogram('sdk_wait_ms', { unit: 'ms', description: 'Queue wait', advice: { explicitBucketBoundaries: LATENCY_BOUNDS } });

  process.on('message', (msg: ChildCommand) => {
    if (msg.cmd === 'exit') process.exit(0);
    void (async () => {
      try {
        codes.length = 0;
        points.length = 0;
        warnings.length = 0;
        for (const v of msg.requests) requests.add(v);
        for (const v of msg.inflight) inflight.add(v);
        for (const v of msg.latency) latency.record(v);
        for (const v of msg.size) size.record(v);
        for (const v of msg.bytes) bytes.add(v);
        for (const v of msg.wait) wait.record(v);
        await cumulative.forceFlush();
        await delta.forceFlush();
        send({ type: 'stepped', codes: [...codes], points: [...points], warnings: [...warnings] });
      } catch (e) {
        send({ type: 'failed', error: String((e as Error)?.stack ?? e) });
      }
    })();
  });
  // The parent going away ends this process too.
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready', pid: process.pid, resource: resource.attributes });
}

function pointsOf(metrics: ResourceMetrics): ExportedPoint[] {
  const out: ExportedPoint[] = [];
  for (const sm of metrics.scopeMetrics) {
    for (const m of sm.metrics) {
      const temporality = m.aggregationTemporality === AggregationTemporality.DELTA ? 'delta' : 'cumulative';
      for (const p of m.dataPoints) {
        const timeNanos = String(BigInt(p.endTime[0]) * 1_000_000_000n + BigInt(p.endTime[1]));
        const base = { name: m.descriptor.name, temporality, timeNanos, attributes: p.attributes } as const;
        if (m.dataPointType === DataPointType.HISTOGRAM) {
          const v = p.value as { count: number; sum?: number; buckets: { counts: number[] } };
          out.push({ ...base, value: { count: v.count, sum: v.sum ?? NaN, counts: [...v.buckets.counts] } });
        } else if (m.dataPointType === DataPointType.EXPONENTIAL_HISTOGRAM) {
          const v = p.value as { count: number; sum?: number; zeroCount: number };
          out.push({ ...base, value: { count: v.count, sum: v.sum ?? NaN, zeroCount: v.zeroCount } });
        } else {
          out.push({ ...base, value: p.value as number });
        }
      }
    }
  }
  return out;
}

main().catch((e: unknown) => {
  send({ type: 'failed', error: String((e as Error)?.stack ?? e) });
  process.exit(1);
});
