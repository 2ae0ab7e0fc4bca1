// What runs on the Sensor's event loop is bounded whatever the event carries (attack report on
// issue 14, break 1 and 2): sprig regex functions on RE2 (no backtracking), a work budget on
// every regular expression (input length × program size), template steps and list functions
// (uniq was quadratic), and the same budget for data filters, data-filter templates and exprs
// with a pattern taken from the event. Over the budget is `eval-budget`, refused in milliseconds.
import { describe, expect, it } from 'vitest';
import { EventDependency } from '../../../src/api/sensor.ts';
import {
  EvalBudgetError,
  INLINE_BUDGET_UNITS,
  Meter,
  metered,
  yieldIfBusy,
} from '../../../src/sensors/inline-budget.ts';
import { compileDependency } from '../../../src/sensors/match/dependency.ts';
import { goRegex } from '../../../src/sensors/match/regex.ts';
import { FilterEvaluationError } from '../../../src/sensors/match/result.ts';
import { applyParameters, compileTemplate } from '../../../src/sensors/params/index.ts';
import { matchFailureReason, triggerFailureReason } from '../../../src/sensors/reasons.ts';
import { event } from './helpers.ts';

const run = (src: string, data: unknown) => compileTemplate(src).execute(data);
/** Runs `f`, returning how long it took (ms) and what it threw. */
const timed = (f: () => unknown): { ms: number; err?: unknown; value?: unknown } => {
  const t0 = performance.now();
  try {
    const value = f();
    return { ms: performance.now() - t0, value };
  } catch (err) {
    return { ms: performance.now() - t0, err };
  }
};

describe('regular expressions are RE2 and metered', () => {
  it('a catastrophic-backtracking pattern from the adversary report answers at once (V8 took 40 s)', () => {
    const r = timed(() =>
      run('{{ regexMatch "^(\\\\w+\\\\s?)*$" .title }}', { title: `${'a'.repeat(32)}!` }),
    );
    expect(r.err).toBeUndefined();
    expect(r.value).toBe('false');
    expect(r.ms).toBeLessThan(200);
    // ^(a+)+$, the other report pattern, over 5,000 characters
    const r2 = timed(() => run('{{ regexMatch "^(a+)+$" .t }}', { t: `${'a'.repeat(5000)}!` }));
    expect(r2.value).toBe('false');
    expect(r2.ms).toBeLessThan(500);
  });

  it('a large pattern over a large field is refused before it runs (input × program over the budget)', () => {
    const re = goRegex('[a-z]{1000}[0-9]{1000}');
    expect(re.size).toBeGreaterThan(2000);
    const r = timed(() => metered(new Meter(), () => re.test('a'.repeat(1_000_000))));
    expect(r.err).toBeInstanceOf(EvalBudgetError);
    expect(String((r.err as Error).message)).toMatch(/over 1000000 characters/);
    expect(r.ms).toBeLessThan(500); // running it would take seconds: a margin for a busy machine
    // the same pattern over a short field is fine, and a literal over 1 MB is within budget
    expect(re.test('a'.repeat(50))).toBe(false);
    expect(goRegex('hello').test(`${'x'.repeat(1_000_000)}hello`)).toBe(true);
  });

  it('one evaluation shares one budget: many cheap matches add up', () => {
    const re = goRegex('b+c');
    const text = 'a'.repeat(100_000);
    const m = new Meter();
    const r = timed(() =>
      metered(m, () => {
        for (let i = 0; i < 1000; i++) re.test(text);
      }),
    );
    expect(r.err).toBeInstanceOf(EvalBudgetError);
    expect(m.left).toBeLessThan(0);
  });

  it('sprig regex functions keep Go semantics on RE2', () => {
    const g1 = ['$', '{1}'].join('');
    expect(run(`{{ regexReplaceAll "a(?P<x>x*)b" "-ab-axxb-" "${g1}W$x" }}`, {})).toBe('-W-xxWxx-');
    expect(run('{{ regexReplaceAllLiteral "a(x*)b" "-ab-axxb-" "$1" }}', {})).toBe('-$1-$1-');
    expect(run('{{ regexFindAll "[0-9]+" "a1b22c333" -1 }}', {})).toBe('[1 22 333]');
    expect(run('{{ regexFindAll "[0-9]+" "a1b22c333" 2 }}', {})).toBe('[1 22]');
    expect(run('{{ regexFind "[0-9]+" "ab123c" }}|{{ regexFind "z" "ab" }}', {})).toBe('123|');
    // Go's Regexp.Split: "a,b,,c" on ",", n = -1 / 2; an empty match splits between characters
    expect(run('{{ regexSplit "," "a,b,,c" -1 }}', {})).toBe('[a b  c]');
    expect(run('{{ regexSplit "," "a,b,,c" 2 }}', {})).toBe('[a b,,c]');
    expect(run('{{ regexSplit "" "abc" -1 }}', {})).toBe('[a b c]');
    expect(run('{{ regexSplit "x*" "axbc" -1 }}', {})).toBe('[a b c]');
    expect(run('{{ regexMatch "(?i)^HELLO" "hello world" }}', {})).toBe('true');
    expect(() => run('{{ regexMatch "(?<=a)b" "ab" }}', {})).toThrow(/regexMatch/);
  });
});

describe('template functions are linear or metered', () => {
  it('uniq over 60,000 tags takes milliseconds (it was quadratic: 23 s)', () => {
    const tags = Array.from({ length: 60_000 }, (_, i) => i % 50_000);
    const r = timed(() => run('{{ len (uniq .tags) }}', { tags }));
    expect(r.value).toBe('50000');
    expect(r.ms).toBeLessThan(500);
    expect(run('{{ uniq (list 1 "1" 1 2 (dict "a" 1) (dict "a" 1)) }}', {})).toBe('[1 1 2 map[a:1]]');
  });

  it('quadratic work built from linear functions (has inside range) hits the budget', () => {
    const l = Array.from({ length: 20_000 }, (_, i) => `x${i}`);
    const r = timed(() => run('{{ range .l }}{{ if has . $.l }}{{ end }}{{ end }}', { l }));
    expect(r.err).toBeInstanceOf(EvalBudgetError);
    expect(r.ms).toBeLessThan(1500);
  });

  it('an over-budget parameter template is eval-budget, never the fallback value', () => {
    const tpl = '{{ regexMatch "[a-z]{1000}[0-9]{1000}" .Input.body.text }}';
    const ev = event({ body: { text: 'a'.repeat(200_000) } });
    let err: unknown;
    try {
      applyParameters(
        {},
        [{ src: { dependencyName: 'd', dataTemplate: tpl, value: 'fallback' }, dest: 'x' }],
        {
          d: ev,
        },
      );
    } catch (e) {
      err = e;
    }
    expect(err).toBeDefined();
    expect(triggerFailureReason(err)).toBe('eval-budget');
  });
});

describe('dependency filters share one budget per event', () => {
  const dep = (filters: unknown) =>
    compileDependency(EventDependency.parse({ name: 'd', eventSourceName: 's', eventName: 'e', filters }));
  const failure = (d: ReturnType<typeof dep>, data: unknown) => {
    const t0 = performance.now();
    try {
      d.matches(event(data));
    } catch (err) {
      return { err, ms: performance.now() - t0 };
    }
    return { err: undefined, ms: performance.now() - t0 };
  };

  it('exprs =~ with the pattern taken from the event (report break 2): refused, eval-budget', () => {
    const d = dep({
      exprs: [
        {
          expr: 'text =~ pattern',
          fields: [
            { name: 'text', path: 'body.text' },
            { name: 'pattern', path: 'body.pattern' },
          ],
        },
      ],
    });
    const r = failure(d, { body: { text: 'a'.repeat(1_000_000), pattern: '[a-z]{1000}[0-9]{1000}' } });
    expect(r.err).toBeInstanceOf(FilterEvaluationError);
    expect(matchFailureReason(r.err)).toBe('eval-budget');
    expect(r.ms).toBeLessThan(200);
    // an ordinary pattern from the event still works
    expect(d.matches(event({ body: { text: 'order-42', pattern: '^order-[0-9]+$' } }))).toBe(true);
  });

  it('string data filters and data-filter templates: eval-budget, not a silent non-match', () => {
    const values = dep({ data: [{ path: 'body.t', type: 'string', value: ['[a-z]{500}[0-9]{500}'] }] });
    const r = failure(values, { body: { t: 'a'.repeat(500_000) } });
    expect(matchFailureReason(r.err)).toBe('eval-budget');
    const tpl = dep({
      data: [
        {
          path: 'body.t',
          type: 'string',
          value: ['true'],
          template: '{{ regexMatch "[a-z]{1000}[0-9]{1000}" .Input }}',
        },
      ],
    });
    const r2 = failure(tpl, { body: { t: 'a'.repeat(500_000) } });
    expect(r2.err).toBeInstanceOf(FilterEvaluationError);
    expect(matchFailureReason(r2.err)).toBe('eval-budget');
    expect(r2.ms).toBeLessThan(200);
  });

  it('the budget is a few hundred milliseconds of work at most', () => {
    // the costliest pattern per unit we measured (about 15 M units/s) over the whole budget
    const re = goRegex('^(\\w+\\s?)*$');
    const text = 'a'.repeat(Math.floor(INLINE_BUDGET_UNITS / re.size) - 10);
    const r = timed(() => metered(new Meter(), () => re.test(text)));
    expect(r.err).toBeUndefined();
    process.stdout.write(`full inline budget: ${Math.round(r.ms)} ms (${text.length} characters)\n`);
    expect(r.ms).toBeLessThan(2000);
  });
});

describe('yieldIfBusy', () => {
  it('returns nothing while the loop turns, a promise after a long synchronous stretch', async () => {
    await new Promise((r) => setTimeout(r, 30));
    expect(yieldIfBusy()).toBeUndefined();
    const end = performance.now() + 80;
    while (performance.now() < end) {
      // busy
    }
    const p = yieldIfBusy();
    expect(p).toBeInstanceOf(Promise);
    await p;
    expect(yieldIfBusy()).toBeUndefined();
  });
});
