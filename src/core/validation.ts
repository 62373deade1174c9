import type { Static, TSchema } from '@sinclair/typebox';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { DomainError, type ErrorDetail } from './errors.js';
import { UUID_PATTERN } from './ids.js';
import { UNSTORABLE_TEXT_MESSAGE, findUnstorableText } from './text.js';

/**
 * The one way input is checked against its TypeBox schema, for the HTTP registry, the services
 * and (through the services) the CLI, so an error names the same path whoever called:
 * `body/name`, `query/limit`, `params/org`, `body/limits/max_series`.
 */

/** Where an input arrived; the first segment of every error path. Service inputs are `body`. */
export type InputLocation = 'params' | 'query' | 'body';

/**
 * A problem lists at most this many fields: a body of 100,000 unknown keys gets a short answer,
 * and nothing spreads an unbounded array into a call.
 */
export const MAX_REPORTED_ERRORS = 20;

/**
 * Deliberately simple (one @, no spaces, dot-separated non-empty domain labels): real validation is
 * the mail that arrives. Surrounding blanks are trimmed by the services. No two parts of it can
 * match the same character (labels exclude '.', blanks and '@'), so it runs in linear time: ajv
 * with allErrors tests a pattern even when maxLength already failed, and the earlier
 * `[^\s@]+\.[^\s@]+` backtracked quadratically on 'a@' + 60,000 dots (4 s of blocked event loop).
 */
export const EMAIL_PATTERN = '^\\s*[^\\s@]{1,64}@[^\\s@.]+(?:\\.[^\\s@.]+)+\\s*$';

/** Text with something besides blanks (the services store it trimmed). */
export const NOT_BLANK_PATTERN = '\\S';

// ajv-formats is CommonJS with an `exports.default`; under NodeNext the default import is module.exports.
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ??
  addFormatsModule) as unknown as (ajv: Ajv) => Ajv;

export interface AjvOptions {
  /** Query strings and path parameters: 'array' lets ?tag=a and ?tag=a&tag=b both satisfy an array schema, and a lone value a scalar one. */
  coerce?: boolean;
  /** false: stop at the first error (for bodies too large to list every error of). */
  allErrors?: boolean;
}

export function newAjv({ coerce = false, allErrors = true }: AjvOptions = {}): Ajv {
  const ajv = new Ajv({
    allErrors,
    coerceTypes: coerce ? 'array' : false,
    useDefaults: true,
    removeAdditional: false,
    strict: true,
    strictTypes: false,
    strictTuples: false,
  });
  addFormats(ajv);
  // `format: 'uuid'` (every id in the request schemas) means what PostgreSQL's uuid accepts: the
  // urn:uuid: prefix ajv-formats also allows failed in the statement instead (22P02, a 400 that
  // named no field).
  ajv.addFormat('uuid', new RegExp(UUID_PATTERN));
  ajv.addKeyword('example');
  // OpenAPI 3.1 (JSON Schema 2020-12) writes tuples as prefixItems (e.g. the metric query's points); ajv's
  // draft-07 mode checks the same thing as its `items: [...]`.
  ajv.addKeyword({ keyword: 'prefixItems', type: 'array', schemaType: 'array', macro: (items: unknown) => ({ items }) });
  return ajv;
}

/**
 * Appends ajv's errors to `out` as `where` + JSON pointer, naming the missing or unknown field
 * itself rather than its parent object; stops at MAX_REPORTED_ERRORS.
 */
export function toErrorDetails(where: InputLocation, errors: ErrorObject[], out: ErrorDetail[]): void {
  const seen = new Set<string>();
  for (const e of errors) {
    if (out.length >= MAX_REPORTED_ERRORS) return;
    let path = where + e.instancePath;
    let message = e.message ?? 'is invalid';
    if (e.keyword === 'required') {
      path += `/${String(e.params.missingProperty)}`;
      message = 'is required';
    } else if (e.keyword === 'additionalProperties') {
      path += `/${String(e.params.additionalProperty)}`;
      message = 'is not an allowed field';
    }
    const key = `${path}\u0000${message}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push({ path, message });
    }
  }
}

/**
 * Appends the paths of strings PostgreSQL could not store. Checked before the schema, on every
 * input, so no such value can fail a statement later (a 500) or lose the audit row beside it.
 */
export function unstorableDetails(value: unknown, where: InputLocation, out: ErrorDetail[]): void {
  for (const path of findUnstorableText(value, where, MAX_REPORTED_ERRORS - out.length)) out.push({ path, message: UNSTORABLE_TEXT_MESSAGE });
}

/** The DomainError for a non-empty list of details; the message lists them, since the CLI prints only the message. */
export function validationError(errors: ErrorDetail[], message = `invalid input: ${errors.map((e) => `${e.path} ${e.message}`).join('; ')}`): DomainError {
  return new DomainError('validation_failed', message, { errors });
}

/*
 * Inputs the HTTP registry has already checked against a schema, so the service called next does
 * not check the same object against the same schema again (DESIGN §2: one validation per request).
 * A WeakMap keyed by the input object: nothing is added to the object, an entry lives only as long
 * as the request body, and a schema is only trusted for the very object it was checked on (any
 * other caller, the CLI included, builds its own object and is validated in full). It holds no
 * application state, so it is shared by every app in the process.
 */
const validatedAgainst = new WeakMap<object, TSchema>();

/** The registry calls this after `value` passed `schema`; see `validatedAgainst`. */
export function markValidated(value: unknown, schema: TSchema): void {
  if (value !== null && typeof value === 'object') validatedAgainst.set(value, schema);
}

/** Checks `value` and returns it typed (defaults filled in), or throws validation_failed naming each field. */
export type Validator<T> = (value: unknown) => T;

// Service validators share one ajv: it holds compiled code for immutable schemas and no state of
// any app. Bodies are not coerced (a CLI caller passes typed values, as JSON does).
let serviceAjv: Ajv | undefined;

export interface CompileOptions {
  /** The first segment of error paths: `body` (the default) for what HTTP sends as a body and the CLI passes as options. */
  where?: InputLocation;
  /**
   * Narrower schemas whose registry check stands for this one: a route body that is a part of
   * the service's input (the input adds fields only other callers pass) is not checked twice.
   */
  trusts?: TSchema[];
}

/**
 * The compiled validator services run on their inputs. An input the registry already validated
 * against the same schema (or one it `trusts`) is returned at once (markValidated).
 */
export function compile<S extends TSchema>(schema: S, { where = 'body', trusts = [] }: CompileOptions = {}): Validator<Static<S>> {
  const validate: ValidateFunction = (serviceAjv ??= newAjv()).compile(schema);
  const trusted = new Set<TSchema>([schema, ...trusts]);
  return (value) => {
    if (value !== null && typeof value === 'object' && trusted.has(validatedAgainst.get(value)!)) return value as Static<S>;
    const errors: ErrorDetail[] = [];
    unstorableDetails(value, where, errors);
    if (!validate(value)) toErrorDetails(where, validate.errors ?? [], errors);
    if (errors.length > 0) throw validationError(errors);
    return value as Static<S>;
  };
}
