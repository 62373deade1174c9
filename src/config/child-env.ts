/**
 * The environment of a process Sentinel starts (the embedded PostgreSQL): Sentinel's own, as the
 * process would inherit it, with the variables `extend` derives from it set or replaced.
 */
export function childEnvironment(extend: (env: NodeJS.ProcessEnv) => Record<string, string>): NodeJS.ProcessEnv {
  return { ...process.env, ...extend(process.env) };
}
