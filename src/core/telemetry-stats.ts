/**
 * One organization's ingest figures for one UTC day: what the telemetry feature stored and
 * refused. Provided by the telemetry feature as `telemetryStats`; the reports feature (which may
 * not read telemetry's tables) depends on this interface only.
 */
export interface DailyTelemetryStats {
  ingested: { points: number; logs: number; events: number };
  /** Series by points stored that day, most first. */
  top_series: { name: string; labels: Record<string, string>; points: number }[];
  rejections: { reason: string; status: number; requests: number; items: number }[];
}

export interface TelemetryStats {
  /** `date` is YYYY-MM-DD (UTC); at most `top` series. */
  daily(orgId: string, date: string, top: number): Promise<DailyTelemetryStats>;
}
