/**
 * What the test run saw of the API, per mocha process: every answer the shared ApiClient matched
 * to an operation of the served OpenAPI document, and every one that did not match its declared
 * response. The root hook in response-coverage.ts reads it after the last test, so an operation
 * no test ever answered with a 2xx — never validated — shows up instead of passing unnoticed.
 */

export interface DocumentedOperation {
  operationId: string;
  method: string;
  path: string;
}

export interface ValidationFailure {
  operationId: string;
  status: number;
  request: string;
  errors: string[];
}

const answers = new Map<string, Map<number, number>>();
const operations = new Map<string, DocumentedOperation>();
const failures: ValidationFailure[] = [];

/** The document's operations, so that gaps (operations never answered) can be listed. */
export function recordOperations(ops: DocumentedOperation[]): void {
  for (const op of ops) operations.set(op.operationId, op);
}

export function recordAnswer(operationId: string, status: number): void {
  let byStatus = answers.get(operationId);
  if (!byStatus) answers.set(operationId, (byStatus = new Map()));
  byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
}

export function recordFailure(failure: ValidationFailure): void {
  failures.push(failure);
}

/** Where an ApiClient reports what it validated; the run's registry unless a test passes its own. */
export interface AnswerRecorder {
  operations(ops: DocumentedOperation[]): void;
  answer(operationId: string, status: number): void;
  failure(failure: ValidationFailure): void;
}

export const runRecorder: AnswerRecorder = { operations: recordOperations, answer: recordAnswer, failure: recordFailure };

export interface ObservedAnswers {
  operations: DocumentedOperation[];
  /** operationId → status → how many answers with that status were validated. */
  answers: Map<string, Map<number, number>>;
  failures: ValidationFailure[];
}

export function observedAnswers(): ObservedAnswers {
  return { operations: [...operations.values()], answers: new Map([...answers].map(([k, v]) => [k, new Map(v)])), failures: [...failures] };
}
