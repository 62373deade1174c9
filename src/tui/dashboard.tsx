import { Box, Text, useApp, useInput, useStdout } from 'ink';
import { useCallback, useEffect, useRef, useState } from 'react';
import type { AdminStatus } from '../core/status.js';
import { formatClock } from './format.js';
import { headerLines, panelLines, PANELS, type Line, type Tone } from './panels.js';
import type { FetchResult } from './status-client.js';

/*
 * The live status screen. <Dashboard> draws one state (pure: the tests render it with fixture
 * answers and sizes); <StatusApp> owns the polling, the keys and the terminal size.
 */

export const MIN_COLUMNS = 80;
export const MIN_ROWS = 24;

export type View =
  | { kind: 'connecting' }
  | { kind: 'ok'; status: AdminStatus; fetchedAt: number }
  | { kind: 'unreachable'; reason: string; since: number; attemptAt: number }
  | { kind: 'denied'; reason: string }
  | { kind: 'failed'; reason: string };

export interface DashboardProps {
  url: string;
  view: View;
  /** Index into PANELS. */
  focus: number;
  help: boolean;
  columns: number;
  rows: number;
  now: number;
  intervalMs: number;
  /** Shown under a 401/403: where the token came from and what to do instead. */
  deniedHint?: string;
}

const TONE_COLOR: Record<Tone, string | undefined> = { normal: undefined, good: 'green', warn: 'yellow', bad: 'red', dim: 'gray' };

function Row({ l }: { l: Line }) {
  const tone = l.tone ?? 'normal';
  return (
    <Text wrap="truncate" color={TONE_COLOR[tone]} dimColor={tone === 'dim'}>
      {l.text}
    </Text>
  );
}

/** The top border carries the title (one row saved per panel, which an 80×24 screen needs). */
function topBorder(title: string, width: number, focused: boolean): string {
  const [l, h, r] = focused ? ['╔', '═', '╗'] : ['╭', '─', '╮'];
  const label = ` ${focused ? '▶ ' : ''}${title} `.slice(0, Math.max(0, width - 3));
  return `${l}${h}${label}${h.repeat(Math.max(0, width - 3 - label.length))}${r}`.slice(0, width);
}

function Panel(props: { title: string; lines: Line[]; width: number; height: number; focused: boolean }) {
  const room = Math.max(1, props.height - 2);
  let lines = props.lines;
  if (lines.length > room) lines = [...lines.slice(0, room - 1), { text: `… ${lines.length - room + 1} more${props.focused ? '' : ' (tab to expand)'}`, tone: 'dim' }];
  const color = props.focused ? 'cyan' : 'gray';
  return (
    <Box flexDirection="column" width={props.width} height={props.height}>
      <Text wrap="truncate" color={color} bold={props.focused}>
        {topBorder(props.title, props.width, props.focused)}
      </Text>
      {/* Keyed by the style: ink applies a changed borderStyle without the borderTop={false} beside
          it, which would leave a phantom top border in the layout (the content one row down). */}
      <Box
        key={props.focused ? 'focused' : 'plain'}
        flexDirection="column"
        width={props.width}
        height={props.height - 1}
        borderStyle={props.focused ? 'double' : 'round'}
        borderTop={false}
        borderColor={color}
        overflow="hidden"
      >
        {lines.map((l, i) => (
          <Row key={i} l={l} />
        ))}
      </Box>
    </Box>
  );
}

/** A screen with one message in the middle: unreachable, refused, too small. */
function Notice(props: { columns: number; rows: number; color: string; title: string; lines: string[] }) {
  return (
    <Box width={props.columns} height={props.rows} flexDirection="column" alignItems="center" justifyContent="center">
      <Box flexDirection="column" borderStyle="round" borderColor={props.color} paddingX={1} width={Math.min(props.columns, Math.max(40, Math.min(100, props.columns - 4)))}>
        <Text bold color={props.color}>
          {props.title}
        </Text>
        {props.lines.map((l, i) => (
          <Text key={i} wrap="wrap">
            {l}
          </Text>
        ))}
      </Box>
    </Box>
  );
}

const KEYS = 'q quit · tab next panel · r refresh · ? help';

function Help({ width, height }: { width: number; height: number }) {
  const rows: [string, string][] = [
    ['q, Esc, Ctrl+C', 'quit (the terminal is restored)'],
    ['tab / shift+tab', 'focus the next / previous panel; the focused panel is expanded'],
    ['r', 'refresh now (the screen refreshes every second anyway)'],
    ['?', 'show or hide this help'],
  ];
  return (
    <Box flexDirection="column" width={width} height={height} borderStyle="double" borderColor="cyan" paddingX={1} overflow="hidden">
      <Text bold color="cyan">
        Help
      </Text>
      {rows.map(([k, what]) => (
        <Text key={k} wrap="truncate">
          {k.padEnd(18)}
          {what}
        </Text>
      ))}
      <Text wrap="wrap" dimColor>
        Panels: HTTP (last minute), Ingest (rates, writer queue, history), Alerts (● firing, ○ pending, and for how long), Jobs (✗ failed, ✓ ok, … running), Backups, Heartbeats. `sentinel status --json` prints one snapshot for scripts.
      </Text>
    </Box>
  );
}

/**
 * Panel grid: 3 columns from 120 columns on, else 2. Every row gets at least MIN_PANEL_HEIGHT;
 * the spare height goes first to the focused panel's row, then to the rows whose panels have
 * more to say, and what is left to the focused row again (the screen stays full).
 */
const MIN_PANEL_HEIGHT = 6;

export function rowHeights(needs: number[], focusRow: number, height: number): number[] {
  const heights = needs.map(() => MIN_PANEL_HEIGHT);
  let spare = height - MIN_PANEL_HEIGHT * needs.length;
  const grow = (r: number, upTo: number) => {
    const add = Math.max(0, Math.min(spare, upTo - heights[r]));
    heights[r] += add;
    spare -= add;
  };
  grow(focusRow, needs[focusRow]);
  needs.forEach((n, r) => grow(r, n));
  if (spare > 0) heights[focusRow] += spare;
  return heights;
}

function Grid(props: { status: AdminStatus; focus: number; columns: number; height: number; now: number }) {
  const ncols = props.columns >= 120 ? 3 : 2;
  const nrows = Math.ceil(PANELS.length / ncols);
  const colWidth = Math.floor(props.columns / ncols);
  const cells = PANELS.map((p, i) => {
    const c = i % ncols;
    const width = c === ncols - 1 ? props.columns - colWidth * (ncols - 1) : colWidth;
    const focused = i === props.focus;
    return { ...p, width, focused, lines: panelLines(p.id, props.status, props.now, width - 2, focused) };
  });
  const rowsOf = Array.from({ length: nrows }, (_, r) => cells.slice(r * ncols, r * ncols + ncols));
  const heights = rowHeights(
    rowsOf.map((row) => Math.max(...row.map((c) => c.lines.length + 2))),
    Math.floor(props.focus / ncols),
    props.height,
  );
  return (
    <Box flexDirection="column" height={props.height} overflow="hidden">
      {rowsOf.map((row, r) => (
        <Box key={r} flexDirection="row" height={heights[r]}>
          {row.map((c) => (
            <Panel key={c.id} title={c.title} width={c.width} height={heights[r]} focused={c.focused} lines={c.lines} />
          ))}
        </Box>
      ))}
    </Box>
  );
}

export function Dashboard(p: DashboardProps) {
  // One row is left free: the frame never reaches the bottom line, so the terminal never scrolls.
  const rows = p.rows - 1;
  if (p.columns < MIN_COLUMNS || p.rows < MIN_ROWS) {
    return (
      <Box width={p.columns} flexDirection="column">
        <Text wrap="wrap">
          Terminal too small: {p.columns}×{p.rows}. The Sentinel status screen needs at least {MIN_COLUMNS}×{MIN_ROWS}; resize it, or press q to quit (sentinel status --json prints a snapshot).
        </Text>
      </Box>
    );
  }
  const every = `retrying every ${p.intervalMs / 1000} s`;
  const v = p.view;
  if (v.kind === 'connecting') return <Notice columns={p.columns} rows={rows} color="cyan" title="Sentinel status" lines={[`connecting to ${p.url} …`, KEYS]} />;
  if (v.kind === 'unreachable') {
    const lines = [`cannot reach Sentinel at ${p.url}: ${v.reason} — ${every}`];
    lines.push(`unreachable for ${Math.max(0, Math.round((v.attemptAt - v.since) / 1000))} s · last attempt ${formatClock(v.attemptAt)}`, 'Is the daemon running (systemctl status sentinel)? Is --url or http.host/http.port right?', 'q quit · r retry now');
    return <Notice columns={p.columns} rows={rows} color="red" title="Sentinel unreachable" lines={lines} />;
  }
  if (v.kind === 'denied') {
    const lines = [`Sentinel at ${p.url} refused the status request: ${v.reason}`];
    if (p.deniedHint) lines.push(p.deniedHint);
    lines.push(`${every} · q quit`);
    return <Notice columns={p.columns} rows={rows} color="red" title="Not authorized" lines={lines} />;
  }
  if (v.kind === 'failed') return <Notice columns={p.columns} rows={rows} color="red" title="Unexpected answer" lines={[`Sentinel at ${p.url} answered, but not with a status: ${v.reason}`, `${every} · q quit`]} />;

  const [h1, h2] = headerLines(v.status);
  const body = rows - 3;
  return (
    <Box flexDirection="column" width={p.columns} height={rows} overflow="hidden">
      <Text wrap="truncate" bold>
        {h1}
      </Text>
      <Text wrap="truncate" dimColor>
        {h2}
      </Text>
      {p.help ? <Help width={p.columns} height={body} /> : <Grid status={v.status} focus={p.focus} columns={p.columns} height={body} now={p.now} />}
      <Text wrap="truncate" dimColor>
        {`${KEYS} · updated ${formatClock(v.fetchedAt)} · ${p.url}`}
      </Text>
    </Box>
  );
}

export interface StatusAppProps {
  url: string;
  fetchStatus: () => Promise<FetchResult>;
  intervalMs?: number;
  /** Fixed size (tests); otherwise the terminal's, following resizes. */
  size?: { columns: number; rows: number };
  deniedHint?: string;
  now?: () => number;
}

export function StatusApp(props: StatusAppProps) {
  const { exit } = useApp();
  const { stdout } = useStdout();
  const intervalMs = props.intervalMs ?? 1000;
  const clock = props.now ?? Date.now;
  const measure = () => props.size ?? { columns: stdout.columns || MIN_COLUMNS, rows: stdout.rows || MIN_ROWS };
  const [size, setSize] = useState(measure);
  const [view, setView] = useState<View>({ kind: 'connecting' });
  const [focus, setFocus] = useState(0);
  const [help, setHelp] = useState(false);
  const inFlight = useRef(false);
  const again = useRef(false);
  const mounted = useRef(true);
  const fetcher = useRef(props.fetchStatus);
  fetcher.current = props.fetchStatus;

  const refresh = useCallback(async () => {
    // One request at a time: a slow daemon gets no pile-up; `r` during a request asks for one more.
    if (inFlight.current) {
      again.current = true;
      return;
    }
    inFlight.current = true;
    try {
      do {
        again.current = false;
        const r = await fetcher.current();
        if (!mounted.current) return;
        const at = clock();
        setView((prev) => {
          if (r.ok) return { kind: 'ok', status: r.status, fetchedAt: at };
          if (r.kind === 'unreachable') return { kind: 'unreachable', reason: r.reason, since: prev.kind === 'unreachable' ? prev.since : at, attemptAt: at };
          return { kind: r.kind, reason: r.reason };
        });
      } while (again.current && mounted.current);
    } finally {
      inFlight.current = false;
    }
  }, [clock]);

  useEffect(() => {
    mounted.current = true;
    void refresh();
    const t = setInterval(() => void refresh(), intervalMs);
    return () => {
      mounted.current = false;
      clearInterval(t);
    };
  }, [refresh, intervalMs]);

  useEffect(() => {
    if (props.size) return;
    const onResize = () => setSize({ columns: stdout.columns || MIN_COLUMNS, rows: stdout.rows || MIN_ROWS });
    stdout.on('resize', onResize);
    return () => {
      stdout.off('resize', onResize);
    };
  }, [stdout, props.size]);

  // The key handler reads the help flag through a ref: two keys in one tick (or before React
  // re-registers the handler) must see the state the previous key left.
  const helpShown = useRef(false);
  const showHelp = (v: boolean) => {
    helpShown.current = v;
    setHelp(v);
  };
  useInput((input, key) => {
    if (key.escape) {
      if (helpShown.current) showHelp(false);
      else exit();
      return;
    }
    if (key.tab && key.shift) {
      setFocus((f) => (f + PANELS.length - 1) % PANELS.length);
      return;
    }
    // Keys typed ahead arrive as one string ("\t\t" for two quick tabs): each counts.
    for (const ch of key.tab && input === '' ? '\t' : input) {
      if (ch === 'q') {
        exit();
        return;
      }
      if (ch === '\t') setFocus((f) => (f + 1) % PANELS.length);
      else if (ch === '?') showHelp(!helpShown.current);
      else if (ch === 'r') void refresh();
    }
  });

  const shown = props.size ?? size;
  return <Dashboard url={props.url} view={view} focus={focus} help={help} columns={shown.columns} rows={shown.rows} now={clock()} intervalMs={intervalMs} deniedHint={props.deniedHint} />;
}
