// `filter.expression` of an EventSource entry: a boolean expression over the event payload
// (e.g. `body.action == "opened" && header["X-Kind"][0] == "push"`: header names are Go-canonical,
// as upstream publishes them, and each header is a list of values), evaluated by jexl's own
// parser and interpreter (no eval of user input). Compiled once per entry.
import jexlModule from 'jexl';
import { plainValue } from './raw-json.ts';

type Compiled = { evalSync(context?: object): unknown };
const jexl = jexlModule as unknown as { compile(expr: string): Compiled };

export class FilterError extends Error {
  readonly code = 'InvalidFilterExpression';
}

export interface EventFilter {
  readonly expression: string;
  /** True when the event passes; an evaluation error counts as "does not pass". */
  matches(data: unknown): boolean;
}

export function compileFilter(expression: string): EventFilter {
  let compiled: Compiled;
  try {
    compiled = jexl.compile(expression);
  } catch (err) {
    throw new FilterError(`filter.expression ${JSON.stringify(expression)}: ${(err as Error).message}`);
  }
  return {
    expression,
    matches(event) {
      const data = plainValue(event);
      const ctx = data !== null && typeof data === 'object' ? (data as object) : { value: data };
      try {
        return compiled.evalSync(ctx) === true;
      } catch {
        return false;
      }
    },
  };
}
