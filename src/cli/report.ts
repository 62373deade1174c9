import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { withApp } from '../app/with-app.js';
import { SYSTEM_ACTOR } from '../core/actor.js';
import { usage, type CliContext } from './context.js';

const FORMATS = ['json', 'csv', 'html'] as const;
const KINDS = ['daily'] as const;

export function registerReportCommands(program: Command, ctx: CliContext): void {
  const report = program.command('report').description('organization reports');

  report
    .command('generate')
    .description("generate (and store) an organization's report, or print the one stored; default yesterday (UTC)")
    .requiredOption('--org <slug>', 'the organization')
    .option('--kind <kind>', `report kind (${KINDS.join(', ')})`, 'daily')
    .option('--date <YYYY-MM-DD>', 'the UTC day, one that has ended (default: yesterday)')
    .option('--format <format>', `output format (${FORMATS.join(', ')})`, 'json')
    .option('--output <file>', 'write the report to this file instead of stdout')
    .action(async (o: { org: string; kind: string; date?: string; format: string; output?: string }) => {
      if (!(FORMATS as readonly string[]).includes(o.format)) throw usage(`--format ${o.format}: use one of ${FORMATS.join(', ')}`);
      if (!(KINDS as readonly string[]).includes(o.kind)) throw usage(`--kind ${o.kind}: use one of ${KINDS.join(', ')}`);
      const format = o.format as (typeof FORMATS)[number];
      const { generated, rendered } = await withApp(ctx.appEnv(), async (app) => {
        const generated = await app.services.reports.generate(SYSTEM_ACTOR, o.org, { kind: o.kind as (typeof KINDS)[number], date: o.date });
        return { generated, rendered: await app.services.reports.download(SYSTEM_ACTOR, o.org, generated.report.id, format) };
      });
      if (o.output === undefined) {
        ctx.io.stdout(rendered.body);
        return;
      }
      await writeFile(o.output, rendered.body);
      const r = generated.report;
      ctx.io.stderr(`${generated.created ? 'generated' : 'already stored:'} ${r.kind} report ${r.id} of ${o.org} for ${r.date}; ${format} written to ${o.output}\n`);
    });
}
