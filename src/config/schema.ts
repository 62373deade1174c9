import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { UUID_PATTERN } from '../core/ids.js';
import { JOB_NAME_PATTERN } from '../core/jobs.js';

/**
 * The configuration contract. `config/default.json` holds a value for every key below (a test
 * checks both stay in step). `writeOnly` marks secrets: they are masked by `config print` and
 * generated into `<data_dir>/secrets/` when left empty.
 */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const Secret = (description: string) => Type.String({ writeOnly: true, description });
const Obj = <T extends Record<string, TSchema>>(props: T, description: string) =>
  Type.Object(props, { additionalProperties: false, description });
const Port = (description: string) => Type.Integer({ minimum: 0, maximum: 65535, description });
const Duration = (description: string) => Type.String({ pattern: '^\\d+(ms|s|m|h|d)?$', description });
const Millis = (description: string) => Type.Integer({ minimum: 0, maximum: 86_400_000, description });

export const ConfigSchema = Obj(
  {
    data_dir: Type.String({
      description:
        'Where Sentinel keeps its state (embedded database, secrets, backups). Empty: /var/lib/sentinel for root, $XDG_DATA_HOME/sentinel or ~/.local/share/sentinel otherwise.',
    }),
    http: Obj(
      {
        host: Type.String({ minLength: 1, description: 'Listen address; 127.0.0.1 behind a reverse proxy.' }),
        port: Port('Listen port; 0 picks a free one.'),
        cors_origins: Type.Array(Type.String({ minLength: 1 }), {
          description: 'Origins allowed by CORS; "*" allows any. Empty: no cross-origin access.',
        }),
        trust_proxy: Type.Boolean({ description: 'Trust X-Forwarded-For / X-Forwarded-Proto from the proxy in front.' }),
        proxy_hops: Type.Integer({
          minimum: 1,
          maximum: 16,
          description:
            'With trust_proxy: how many proxies stand in front. The client address is the X-Forwarded-For entry the outermost of them appended; entries the client wrote itself are ignored.',
        }),
        body_limit_bytes: Type.Integer({ minimum: 1024, maximum: 1_073_741_824, description: 'Largest ingest request body (after decompression).' }),
        api_body_limit_bytes: Type.Integer({
          minimum: 1024,
          maximum: 1_073_741_824,
          description: 'Largest JSON body (after decompression) on every other API route: login, organizations, users, keys.',
        }),
      },
      'HTTP server.',
    ),
    database: Obj(
      {
        url: Type.String({
          writeOnly: true,
          description: 'postgres:// (or postgresql://) URL of an external PostgreSQL (>= 14). Empty: the embedded server in <data_dir>/postgres.',
        }),
        pool_max: Type.Integer({ minimum: 1, maximum: 1000, description: 'Largest connection pool.' }),
        statement_timeout_ms: Millis('Statement timeout for API queries.'),
        connect_timeout_ms: Millis('How long to wait for a new connection before answering 503.'),
        embedded: Obj(
          {
            port: Port('Port of the embedded server; 0 picks a free one and records it in <data_dir>/postgres.port.'),
            os_user: Type.String({ minLength: 1, description: 'Unprivileged system user that runs the embedded server when Sentinel runs as root (created if missing).' }),
          },
          'The embedded default database.',
        ),
      },
      'PostgreSQL.',
    ),
    log: Obj(
      {
        level: Type.Unsafe<LogLevel>({ type: 'string', enum: [...LOG_LEVELS], description: 'pino log level.' }),
      },
      'Logging (JSON lines on stdout).',
    ),
    auth: Obj(
      {
        bcrypt_rounds: Type.Integer({ minimum: 4, maximum: 15, description: 'bcrypt cost for passwords.' }),
        access_ttl: Type.String({ pattern: '^\\d+(ms|s|m|h|d)?$', description: 'Lifetime of access tokens.' }),
        refresh_ttl: Type.String({ pattern: '^\\d+(ms|s|m|h|d)?$', description: 'Lifetime of refresh tokens.' }),
        api_key_rotation_grace: Type.String({ pattern: '^\\d+(ms|s|m|h|d)?$', description: 'How long the previous secret of a rotated API key keeps working.' }),
        jwt_secret: Secret('HS256 signing key for access tokens, at least 32 bytes. Empty: generated into <data_dir>/secrets/jwt_secret.'),
        encryption_key: Secret('Key for secrets stored in the database: 32 random bytes as 64 hex digits or 43-44 base64 characters (openssl rand -hex 32). Empty: generated into <data_dir>/secrets/encryption_key.'),
      },
      'Authentication.',
    ),
    rate_limits: Obj(
      {
        api_per_minute: Type.Integer({ minimum: 1, description: 'Requests per minute per client IP on the API.' }),
        login_per_minute_per_ip: Type.Integer({ minimum: 1, description: 'Login attempts per minute per client IP.' }),
        login_failures_per_account: Type.Integer({ minimum: 1, description: 'Failed logins (or 2FA codes) per account per login_window before the account is throttled.' }),
        login_window: Type.String({ pattern: '^\\d+(ms|s|m|h|d)?$', description: 'Window of the per-account login limit.' }),
        auth_failures_per_minute_per_ip: Type.Integer({
          minimum: 1,
          description: 'Failed authentications (bad API keys or tokens) per minute per client IP, on every route, ingest included; beyond it 429 before any lookup.',
        }),
      },
      'Rate limits (429 with Retry-After beyond them).',
    ),
    ingest: Obj(
      {
        points_per_second: Type.Integer({ minimum: 1, description: 'Default per-org ingest rate (points, log records and events per second; an org limit overrides it).' }),
        max_series: Type.Integer({ minimum: 1, description: 'Default per-org maximum of metric series (an org limit overrides it).' }),
        flush_interval_ms: Type.Integer({
          minimum: 0,
          maximum: 1000,
          description: 'How long a group smaller than flush_min_items waits for other requests to join it while a writer connection is free (0: never waits).',
        }),
        flush_min_items: Type.Integer({
          minimum: 1,
          description:
            'Items (points, log records, events) at which a group is written as soon as a writer connection is free, without waiting flush_interval_ms; smaller groups wait for company (1: never waits). While every connection is busy, requests gather until a commit finishes, whatever their size.',
        }),
        max_flush_items: Type.Integer({ minimum: 1, description: 'Largest number of items in one commit; a full group is written at once.' }),
        writer_connections: Type.Integer({ minimum: 1, maximum: 32, description: 'Commits the writer runs at the same time.' }),
        max_age: Duration('Oldest timestamp accepted, relative to now.'),
        max_future: Duration('Furthest timestamp in the future accepted, relative to now.'),
        series_cache_size: Type.Integer({ minimum: 1, description: 'Series ids kept in memory (LRU).' }),
        idempotency_ttl: Duration('How long an Idempotency-Key answer is kept.'),
      },
      'Telemetry ingest.',
    ),
    query: Obj(
      {
        max_series: Type.Integer({ minimum: 1, description: 'Most series a metric query may read or answer with.' }),
        max_buckets: Type.Integer({ minimum: 1, description: 'Most step buckets per series in one answer ((end - start) / step).' }),
        max_points: Type.Integer({ minimum: 1, description: 'Most points in one answer (answer series × buckets).' }),
        statement_timeout_ms: Millis('Statement timeout of telemetry queries (422 beyond it).'),
      },
      'Telemetry queries.',
    ),
    retention: Obj(
      {
        metrics_days: Type.Integer({ minimum: 1, maximum: 3650, description: 'Days metric points are kept (an org limit overrides it).' }),
        logs_days: Type.Integer({ minimum: 1, maximum: 3650, description: 'Days log records are kept (an org limit overrides it).' }),
        events_days: Type.Integer({ minimum: 1, maximum: 3650, description: 'Days events are kept (an org limit overrides it).' }),
        delete_batch_size: Type.Integer({ minimum: 1, description: 'Rows per DELETE when only some orgs\' data in a day has expired.' }),
        partitions_ahead_days: Type.Integer({ minimum: 1, maximum: 30, description: 'Daily partitions created ahead of today.' }),
      },
      'Retention of telemetry.',
    ),
    storage: Obj(
      {
        compact_after: Duration(
          'How old the end of a 2-hour window must be before the compaction job rewrites its points into chunks (at least 10m). Later points for a compacted window are merged into its chunk by the next run.',
        ),
        compact_batch_series: Type.Integer({
          minimum: 1,
          maximum: 100_000,
          description: 'Series whose points of one window the compaction job moves into chunks in one transaction.',
        }),
      },
      'Metric storage: fresh points as rows, older ones compacted into one chunk per series and 2-hour window.',
    ),
    backups: Obj(
      {
        dir: Type.String({ description: 'Where backups are written (one directory per backup, mode 0700, files 0600). Empty: <data_dir>/backups.' }),
        keep: Type.Integer({ minimum: 1, description: 'Complete backups kept by prune (the newest is never removed).' }),
      },
      'Backups (sentinel backup …, the backup and restore-drill jobs).',
    ),
    notifications: Obj(
      {
        smtp: Obj(
          {
            host: Type.String({ description: 'SMTP server for all outgoing mail (welcome emails, reports, alert emails). Empty: mail is not configured and nothing is sent.' }),
            port: Port('SMTP port: 587 for submission with STARTTLS, 465 with secure, 25 for a local relay.'),
            secure: Type.Boolean({ description: 'TLS from the first byte (implicit TLS, usually port 465).' }),
            starttls: Type.Boolean({
              description: 'Without secure: require the STARTTLS upgrade (refuse to send in clear). false: never upgrade, only for a relay on this host or a trusted network.',
            }),
            user: Type.String({ description: 'SMTP AUTH user name. Empty: no authentication.' }),
            password: Secret('SMTP AUTH password (SENTINEL_NOTIFICATIONS_SMTP_PASSWORD_FILE to read it from a file).'),
            from: Type.String({ description: 'The From address of every message, e.g. "Sentinel <sentinel@example.com>". Required when host is set.' }),
          },
          'Outgoing mail (one mailer on the job queue, retried with backoff, every message recorded in mail_log).',
        ),
        allow_private_networks: Type.Boolean({
          description:
            'Let webhook and Slack channels reach loopback and private addresses (and redirects into them). false: refused when a channel is saved and again when it sends. Link-local addresses (169.254.0.0/16, fe80::/10) are refused always.',
        }),
        timeout_ms: Millis('Timeout of one delivery attempt (connect, send, answer) of a webhook or Slack notification.'),
        max_attempts: Type.Integer({ minimum: 1, maximum: 50, description: 'Delivery attempts of one notification before it is recorded as failed (exponential backoff between them).' }),
        backoff_ms: Millis('Delay before the first retry of a notification; it doubles after each failed attempt (at most 10 minutes).'),
      },
      'Notifications.',
    ),
    alerts: Obj(
      {
        enabled: Type.Boolean({ description: 'false: this daemon evaluates no rules, heartbeats or notification groups (another instance on the database may).' }),
        tick_ms: Type.Integer({ minimum: 50, maximum: 60_000, description: 'How often the daemon looks for rules, heartbeats and notification groups that are due.' }),
        concurrency: Type.Integer({ minimum: 1, maximum: 64, description: 'Rules this daemon evaluates at the same time.' }),
        batch_size: Type.Integer({ minimum: 1, maximum: 10_000, description: 'Most due rules one daemon claims per tick (the rest wait for the next tick or another instance).' }),
        max_rules_per_org: Type.Integer({ minimum: 1, description: 'Most alert rules one organization may have.' }),
        preview_max_steps: Type.Integer({ minimum: 1, maximum: 100_000, description: 'Most evaluations one preview may run ((end - start) / interval).' }),
        instance_channels: Type.Array(Type.String({ pattern: UUID_PATTERN }), {
          description: "Channel ids (of any organization) that receive Sentinel's own alerts: no successful backup within twice its period, a failed restore drill.",
        }),
        external_url: Type.String({ description: 'The URL people reach Sentinel at (externalURL and generatorURL in webhook payloads, links in emails). Empty: http://<http.host>:<http.port>.' }),
      },
      'Alert evaluation and delivery.',
    ),
    jobs: Type.Record(
      Type.String({ pattern: JOB_NAME_PATTERN }),
      Obj(
        {
          schedule: Type.Optional(
            Type.String({ minLength: 1, description: 'Cron expression in UTC (5 fields, or 6 with seconds first), e.g. "0 */6 * * *"; replaces the job\'s default schedule.' }),
          ),
          enabled: Type.Optional(Type.Boolean({ description: 'false: never scheduled (nor caught up); `sentinel jobs run` still runs it.' })),
        },
        'One job (its name as in `sentinel jobs list`).',
      ),
      {
        additionalProperties: false,
        description:
          'Per-job overrides, keyed by job name: {"backup": {"schedule": "0 */4 * * *"}, "restore-drill": {"enabled": false}}. Jobs not named keep their defaults. As an environment variable: SENTINEL_JOBS holding the JSON object.',
      },
    ),
    queue: Obj(
      {
        concurrency: Type.Integer({ minimum: 1, maximum: 64, description: 'Queued tasks and job runs this daemon runs at the same time.' }),
        poll_interval_ms: Type.Integer({ minimum: 50, maximum: 60_000, description: 'How often the daemon looks for due work stored by other processes (the CLI, other daemons) and for retries coming due.' }),
      },
      'The durable queue (scheduled job runs, mail and other one-off tasks).',
    ),
    shutdown: Obj(
      {
        grace_ms: Millis('On SIGTERM/SIGINT: how long in-flight requests and jobs may take before exit.'),
      },
      'Shutdown.',
    ),
  },
  'Sentinel configuration.',
);

export type Config = Static<typeof ConfigSchema>;
