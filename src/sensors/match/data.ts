// Data filters: a test on one payload field. The field is read at `path` (a gjson path),
// optionally rewritten by a Go `template` (with the field's text as .Input), then compared with
// the listed `value`s:
//   string: values are Go regular expressions searched in the text;
//   number: the field as a float compared with each value by =, ==, >, >=, <, <=;
//   bool:   the field as a bool, equal to one of the values (the comparator is ignored, as upstream).
// With "=" (or none) and the ordering comparators the filter passes when any one value
// satisfies it; with "!=" it passes when the field matches none of them ("not in the list", for
// strings and numbers: upstream passed as soon as one value differed, which made a list under
// "!=" useless; argoproj/argo-events#3808). A path that does not exist fails the filter.
import type { DataFilter } from '../../api/sensor.ts';
import { compileTemplate, type GoTemplate } from '../params/template/index.ts';
import { boolOf, compilePath, floatOf, MISSING, parseGoBool, parseGoFloat, textOf } from './path.ts';
import { goRegex } from './regex.ts';
import { Fail } from './result.ts';

export type Check = (data: unknown) => Fail | undefined;

const NUMERIC: Record<string, (a: number, b: number) => boolean> = {
  '': (a, b) => a === b,
  '=': (a, b) => a === b,
  '==': (a, b) => a === b,
  '!=': (a, b) => a !== b,
  '>': (a, b) => a > b,
  '>=': (a, b) => a >= b,
  '<': (a, b) => a < b,
  '<=': (a, b) => a <= b,
};

export class DataFilterError extends Error {
  readonly code = 'InvalidDataFilter';
}

function compileOne(f: DataFilter, where: string): Check {
  let path: ReturnType<typeof compilePath>;
  try {
    path = compilePath(f.path);
  } catch (e) {
    throw new DataFilterError(`${where}: ${(e as Error).message}`);
  }
  const cmp = f.comparator ?? '';
  const negate = cmp === '!=';
  if (!f.value.length) throw new DataFilterError(`${where}: no values given`);
  let tpl: GoTemplate | undefined;
  if (f.template) {
    try {
      tpl = compileTemplate(f.template, 'template');
    } catch (e) {
      throw new DataFilterError(`${where}: ${(e as Error).message}`);
    }
  }
  let test: (v: unknown) => boolean;
  let describe: string;
  switch (f.type) {
    case 'string': {
      if (!['', '=', '==', '!='].includes(cmp))
        throw new DataFilterError(
          `${where}: comparator "${cmp}" does not apply to strings (use "=" or "!=")`,
        );
      const res = f.value.map((v) => {
        try {
          return goRegex(v);
        } catch (e) {
          throw new DataFilterError(`${where}: ${(e as Error).message}`);
        }
      });
      test = (v) => {
        const s = textOf(v);
        for (const re of res) if (re.test(s)) return !negate;
        return negate;
      };
      describe = negate
        ? `matches one of ${JSON.stringify(f.value)}`
        : `matches none of ${JSON.stringify(f.value)}`;
      break;
    }
    case 'number': {
      const op = NUMERIC[cmp]!;
      const nums = f.value.map((v) => {
        const n = parseGoFloat(v);
        if (n === undefined)
          throw new DataFilterError(`${where}: value ${JSON.stringify(v)} is not a number`);
        return n;
      });
      // "!=" is "equal to none of them"; the other comparators pass when one value satisfies them.
      const any = negate ? NUMERIC['=']! : op;
      test = (v) => {
        const n = floatOf(v);
        for (const want of nums) if (any(n, want)) return !negate;
        return negate;
      };
      describe = negate
        ? `equals one of ${JSON.stringify(f.value)}`
        : `is not ${cmp || '='} any of ${JSON.stringify(f.value)}`;
      break;
    }
    case 'bool': {
      // Upstream ignores the comparator of a bool filter (equality with any listed value): so does
      // sluice, so an upstream manifest with "!=" on a bool behaves the same.
      const bools = f.value.map((v) => {
        const b = parseGoBool(v);
        if (b === undefined)
          throw new DataFilterError(`${where}: value ${JSON.stringify(v)} is not a boolean`);
        return b;
      });
      test = (v) => {
        const b = boolOf(v);
        for (const want of bools) if (b === want) return true;
        return false;
      };
      describe = `is not = any of ${JSON.stringify(f.value)}`;
      break;
    }
    default:
      throw new DataFilterError(
        `${where}: unsupported type ${JSON.stringify(f.type)} (string, number or bool)`,
      );
  }
  const missing = new Fail(`${where}: path "${f.path}" does not exist in the event data`, false);
  return (data) => {
    let v = path.get(data);
    if (v === MISSING) return missing;
    if (tpl) {
      let out: string;
      try {
        out = tpl.execute({ Input: textOf(v) });
      } catch (e) {
        return new Fail(`${where}: ${(e as Error).message}`, true, e);
      }
      if (out === '' || out === '<no value>')
        return new Fail(`${where}: template ${JSON.stringify(f.template)} gave no value`, true);
      v = out;
    }
    return test(v) ? undefined : new Fail(`${where}: value ${JSON.stringify(textOf(v))} ${describe}`, false);
  };
}

/** Combines data filters with "and" (all pass, the default) or "or" (any passes). */
export function compileDataFilters(filters: readonly DataFilter[], or: boolean, where: string): Check {
  const checks = filters.map((f, i) => compileOne(f, `${where}.data[${i}] (path "${f.path}")`));
  if (!checks.length) return () => undefined;
  if (checks.length === 1) return checks[0]!;
  return combine(checks, or, `${where}.data`);
}

export function combine(checks: readonly Check[], or: boolean, where: string): Check {
  if (!or) {
    return (data) => {
      for (const c of checks) {
        const f = c(data);
        if (f) return f;
      }
      return undefined;
    };
  }
  return (data) => {
    const fails: Fail[] = [];
    for (const c of checks) {
      const f = c(data);
      if (!f) return undefined;
      fails.push(f);
    }
    return new Fail(
      `${where}: none passed (${fails.map((f) => f.reason).join('; ')})`,
      fails.some((f) => f.error),
      fails.find((f) => f.error)?.cause,
    );
  };
}
