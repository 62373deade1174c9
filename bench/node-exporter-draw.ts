/**
 * bench:prometheus's series (also drawn by bench:codec): a node exporter's mix over 5 instances,
 * seed 13. Each scrape of an instance has its own jitter (Math.round(rnd × 10) − 5 ms), written
 * as OpenMetrics seconds with 3 decimals and stored as promtool stores it (int64(seconds × 1000),
 * the same float64 product in JS). Per instance: 50 counters (5 cpus × 10 modes: `idle` at
 * 800–1000 per scrape, the others 0 with probability 0.3, else uniform 0–120; each increment the
 * rate × uniform 0.5–1.5, rounded), 30 two-decimal gauges (cents 3000–7000, a change of up to
 * ±1.00 with probability 1/3 per sample) and 20 constants (1500, 9000 or 65536).
 */
import { mulberry32 } from './harness.js';

export const COUNTER = 'node_cpu_jiffies_total';
export const GAUGE = 'node_hwmon_temp_celsius';
export const CONSTANT = 'node_network_mtu_bytes';
const MODES = ['user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq', 'steal', 'guest', 'guest_nice'];
const INSTANCES = 5;

export interface DrawnSeries {
  name: string;
  type: 'counter' | 'gauge';
  /** 'constant' for the constants (a gauge to Prometheus). */
  kind: 'counter' | 'gauge' | 'constant';
  labels: Record<string, string>;
  values: Float64Array;
  /** Index into `scrapeTs`: the instance the series belongs to. */
  instance: number;
}

export interface NodeExporterDraw {
  series: DrawnSeries[];
  /** Per instance and scrape: the stored time in epoch ms. */
  scrapeTs: Float64Array[];
  /** The same as OpenMetrics seconds text. */
  scrapeTsText: string[][];
}

/** `samples` scrapes per series from `start` (the first at start + interval / 2, jittered). */
export function nodeExporterDraw(start: number, samples: number, intervalMs: number): NodeExporterDraw {
  const rnd = mulberry32(13);
  const scrapeTs: Float64Array[] = [];
  const scrapeTsText: string[][] = [];
  for (let i = 0; i < INSTANCES; i++) {
    const ms = new Float64Array(samples);
    const text: string[] = [];
    for (let k = 0; k < samples; k++) {
      const jitter = Math.round(rnd() * 10) - 5;
      const s = ((start + intervalMs / 2 + k * intervalMs + jitter) / 1000).toFixed(3);
      text.push(s);
      ms[k] = Math.trunc(Number(s) * 1000);
    }
    scrapeTs.push(ms);
    scrapeTsText.push(text);
  }
  const series: DrawnSeries[] = [];
  for (let i = 0; i < INSTANCES; i++) {
    const base = { instance: `host-${i}`, job: 'node' };
    for (let cpu = 0; cpu < 5; cpu++) {
      for (const mode of MODES) {
        const rate = mode === 'idle' ? 800 + rnd() * 200 : rnd() < 0.3 ? 0 : rnd() * 120;
        let v = Math.floor(rnd() * 1e9);
        const values = new Float64Array(samples);
        for (let k = 0; k < samples; k++) {
          values[k] = v;
          v += Math.round(rate * (0.5 + rnd()));
        }
        series.push({ name: COUNTER, type: 'counter', kind: 'counter', labels: { ...base, cpu: String(cpu), mode }, values, instance: i });
      }
    }
    for (let chip = 0; chip < 3; chip++) {
      for (let sensor = 1; sensor <= 10; sensor++) {
        let cents = 3000 + Math.floor(rnd() * 4000);
        const values = new Float64Array(samples);
        for (let k = 0; k < samples; k++) {
          if (rnd() < 1 / 3) cents += Math.round((rnd() - 0.5) * 200);
          values[k] = cents / 100;
        }
        series.push({ name: GAUGE, type: 'gauge', kind: 'gauge', labels: { ...base, chip: `chip${chip}`, sensor: `temp${sensor}` }, values, instance: i });
      }
    }
    for (let dev = 0; dev < 20; dev++) {
      const values = new Float64Array(samples).fill([1500, 9000, 65536][dev % 3]);
      series.push({ name: CONSTANT, type: 'gauge', kind: 'constant', labels: { ...base, device: `eth${dev}` }, values, instance: i });
    }
  }
  return { series, scrapeTs, scrapeTsText };
}
