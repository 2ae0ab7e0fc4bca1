// Go text/template for Sensors (data filter `template`, parameter `dataTemplate` /
// `contextTemplate`): compiled once, executed many times, never evaluated as JavaScript.
import { execute } from './exec.ts';
import { isFunc } from './funcs.ts';
import { type Node, parseTemplate, TemplateError } from './parse.ts';

export { TemplateError } from './parse.ts';
export { NO_VALUE, printValue } from './print.ts';

export interface GoTemplate {
  readonly source: string;
  /** Runs the template; throws TemplateError when it fails (bad field access, function error...). */
  execute(data: unknown): string;
}

/** Parses a template; throws TemplateError naming the line and the problem. */
export function compileTemplate(source: string, name = 'tpl'): GoTemplate {
  const nodes: Node[] = parseTemplate(source, name, isFunc);
  return {
    source,
    execute(data) {
      try {
        return execute(nodes, data);
      } catch (e) {
        if (e instanceof TemplateError) throw new TemplateError(`template ${name}: ${e.message}`);
        throw e;
      }
    },
  };
}
