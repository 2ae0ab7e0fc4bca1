// Dependency filters and transforms: every upstream example that filters or transforms, plus the
// edge cases (midnight windows with time zones, regexes, comparators, missing paths, bad Lua, jq
// errors) and a throughput check of the hot path.
import { beforeAll, describe, expect, it } from 'vitest';
import type { EventDependency } from '../../../src/api/sensor.ts';
import type { CloudEvent } from '../../../src/eventsources/envelope.ts';
import {
  compileDependency,
  compileDependencyAsync,
  DependencyConfigError,
  FilterEvaluationError,
  loadMatchRuntimes,
  TransformError,
} from '../../../src/sensors/match/index.ts';
import { compilePath, MISSING } from '../../../src/sensors/match/path.ts';
import { event, exampleFiles, haveExamples, loadSensor } from './helpers.ts';

beforeAll(async () => {
  await loadMatchRuntimes();
});

const dep = (filters: EventDependency['filters'], extra: Partial<EventDependency> = {}): EventDependency => ({
  name: 'd',
  eventSourceName: 'webhook',
  eventName: 'example',
  filters,
  ...extra,
});

const at = (iso: string, data: unknown = {}) => event(data, { time: iso });

// ------------------------------------------------------------------------- upstream examples --

type Case = { dep: string; pass: CloudEvent[]; fail: CloudEvent[] };
const data = (d: unknown) => event(d);
// A GitHub webhook event as the webhook EventSource publishes it (header values are lists).
const gh = (kind: string[], action: string, state: string, base: string) =>
  data({
    headers: { 'X-Github-Event': kind },
    body: { action, pull_request: { state, base: { ref: base } } },
  });

const EXAMPLES: Record<string, Case[]> = {
  'filter-script.yaml': [
    {
      dep: 'test-dep',
      pass: [data({ body: { a: 'b', d: { e: 'z' } } })],
      fail: [data({ body: { a: 'b', d: { e: 'y' } } }), data({ body: { a: 'x', d: { e: 'z' } } })],
    },
  ],
  'filter-with-context.yaml': [
    {
      dep: 'test-dep',
      pass: [event({}, { source: 'custom-webhook' })],
      fail: [event({}, { source: 'webhook' })],
    },
  ],
  'context-filter-webhook.yaml': [
    {
      dep: 'test-dep',
      pass: [event({})],
      fail: [
        event({}, { subject: 'other' }),
        event({}, { datacontenttype: 'text/plain' }),
        event({}, { source: 'calendar' }),
      ],
    },
  ],
  'filter-with-data-advanced.yaml': [
    {
      dep: 'test-dep',
      pass: [
        data({ a: true, b: { c: 3.14, d: 'hello, world' } }),
        data({ a: true, b: { c: 3.14, d: 'hello,world' } }),
      ],
      fail: [
        data({ a: false, b: { c: 3.14, d: 'hello, world' } }),
        data({ a: true, b: { c: 3.15, d: 'hello, world' } }),
        data({ a: true, b: { c: 3.14, d: 'goodbye' } }),
        data({ a: true, b: { c: 3.14 } }),
      ],
    },
  ],
  'filter-with-data-simple-1.yaml': [
    {
      dep: 'test-dep',
      // Upstream searches (regexp.Match), so "hello" also matches inside a longer text.
      pass: [
        data({ body: { message: 'hello' } }),
        data({ body: { message: 'hey' } }),
        data({ body: { message: 'oh hello there' } }),
      ],
      fail: [data({ body: { message: 'bye' } }), data({ body: {} }), data({})],
    },
  ],
  'filter-with-data-simple-2.yaml': [
    {
      dep: 'test-dep',
      pass: [data({ bucket: 'argo-workflow-input' }), data({ bucket: 'argo-workflow-input1' })],
      fail: [data({ bucket: 'another-bucket' })],
    },
  ],
  'filter-with-data-simple-3.yaml': [
    {
      dep: 'test-dep',
      pass: [data({ body: { value: 50 } }), data({ body: { value: '50.0' } })],
      fail: [data({ body: { value: 50.5 } }), data({ body: { value: 'fifty' } })],
    },
  ],
  'filter-with-data-simple-4.yaml': [
    {
      dep: 'test-dep',
      pass: [data({ body: { value: 50.01 } }), data({ body: { value: 1e6 } })],
      fail: [data({ body: { value: 50 } }), data({ body: { value: -1 } })],
    },
  ],
  'filter-with-expressions.yaml': [
    {
      dep: 'test-dep',
      pass: [
        data({ a: 'b', 'a-longer-name': 10, nested: { path: { 'can-get': { longer: false } } } }),
        data({ a: 'x', 'a-longer-name': 10, nested: { path: { 'can-get': { longer: false } } } }),
      ],
      fail: [
        data({ a: 'x', 'a-longer-name': 11, nested: { path: { 'can-get': { longer: false } } } }),
        data({ a: 'b', 'a-longer-name': 10, nested: { path: { 'can-get': { longer: true } } } }),
        data({ a: 'b', 'a-longer-name': 10 }),
      ],
    },
  ],
  'filter-with-multiple-data-filters-in-or.yaml': [
    {
      dep: 'test-dep',
      pass: [
        data({ a: true, b: { c: 3.14, d: 'hello, world' } }),
        data({ a: false, b: { c: 1, d: 'hello there' } }),
      ],
      fail: [data({ a: false, b: { c: 1, d: 'nope' } }), data({})],
    },
  ],
  'filter-with-multiple-expr-filters-in-or.yaml': [
    {
      dep: 'test-dep',
      pass: [
        data({ a: 'b', 'a-longer-name': 10, nested: { path: { 'can-get': { longer: false } } } }),
        data({ a: 'x', 'a-longer-name': 10, nested: { path: { 'can-get': { longer: false } } } }),
      ],
      fail: [data({ a: 'x', 'a-longer-name': 10, nested: { path: { 'can-get': { longer: true } } } })],
    },
  ],
  'filter-with-multiple-filters-in-or.yaml': [
    {
      dep: 'test-dep',
      pass: [data({ a: 'b', c: 10, d: { e: false } }), data({ a: 'z', c: 3, d: { e: false } })],
      fail: [data({ a: 'z', c: 3, d: { e: true } })],
    },
  ],
  'filter-with-multiple-filters-mixed.yaml': [
    {
      dep: 'test-dep',
      // The data filters fail (c is not > 20) but the exprs pass, and the kinds are OR-ed.
      pass: [data({ a: 'b', c: 10, d: { e: false } })],
      fail: [data({ a: 'z', c: 3, d: { e: true } })],
    },
  ],
  'filter-with-multiple-filters.yaml': [
    {
      dep: 'test-dep',
      pass: [data({ a: 'b', c: 10, d: { e: false } })],
      fail: [data({ a: 'b', c: 11, d: { e: false } }), data({ a: 'b', c: 10, d: { e: true } })],
    },
  ],
  'filter-with-time.yaml': [
    {
      dep: 'test-dep',
      pass: [at('2024-01-15T02:30:00Z'), at('2024-01-15T04:29:59Z')],
      fail: [at('2024-01-15T02:29:59Z'), at('2024-01-15T04:30:00Z'), at('2024-01-15T12:00:00Z')],
    },
  ],
  'filter-with-time-timezone.yaml': [
    {
      dep: 'test-dep',
      // 09:00-17:00 in New York: UTC-5 in January, UTC-4 in July.
      pass: [at('2024-01-15T14:00:00Z'), at('2024-01-15T21:59:59Z'), at('2024-07-15T13:00:00Z')],
      fail: [
        at('2024-01-15T13:59:59Z'),
        at('2024-01-15T22:00:00Z'),
        at('2024-07-15T12:59:59Z'),
        at('2024-07-15T21:00:00Z'),
      ],
    },
  ],
  'time-filter-webhook.yaml': [
    {
      dep: 'test-dep',
      pass: [at('2024-01-15T22:14:05Z'), at('2024-01-15T23:00:00Z')],
      fail: [at('2024-01-15T22:14:04Z'), at('2024-01-15T23:04:05Z')],
    },
    {
      dep: 'test-another-dep',
      pass: [
        at('2024-01-15T23:34:05Z'),
        at('2024-01-15T23:59:59Z'),
        at('2024-01-16T00:00:00Z'),
        at('2024-01-16T00:24:04Z'),
      ],
      fail: [at('2024-01-16T00:24:05Z'), at('2024-01-15T23:34:04Z'), at('2024-01-15T12:00:00Z')],
    },
  ],
  'github.yaml': [
    {
      dep: 'test-dep',
      pass: [
        gh(['pull_request'], 'opened', 'open', 'master'),
        gh(['pull_request'], 'synchronize', 'open', 'master'),
      ],
      fail: [
        gh(['push'], 'opened', 'open', 'master'),
        gh(['pull_request'], 'closed', 'open', 'master'),
        gh(['pull_request'], 'opened', 'closed', 'master'),
        gh(['pull_request'], 'opened', 'open', 'main'),
        data({ headers: { 'X-Github-Event': ['pull_request'] }, body: { action: 'opened' } }),
      ],
    },
  ],
  'gitlab-emoji.yaml': [
    {
      dep: 'emoji-event',
      pass: [data({ body: { object_kind: 'emoji' } })],
      fail: [data({ body: { object_kind: 'push' } })],
    },
  ],
};

describe.skipIf(!haveExamples)('upstream example Sensors: filters', () => {
  const filtering = exampleFiles().filter((f) => {
    const s = loadSensor(f);
    return s.spec.dependencies.some((d) => d.filters);
  });

  it('has cases for every example whose dependencies filter', () => {
    expect(filtering.length).toBeGreaterThan(15);
    expect(filtering.filter((f) => !EXAMPLES[f])).toEqual([]);
  });

  for (const [file, cases] of Object.entries(EXAMPLES)) {
    it(file, async () => {
      const sensor = loadSensor(file);
      for (const c of cases) {
        const d = sensor.spec.dependencies.find((x) => x.name === c.dep);
        expect(d, `${file}: dependency ${c.dep}`).toBeDefined();
        const m = await compileDependencyAsync(d!);
        for (const ev of c.pass) {
          const r = await m.check(ev);
          expect(r, `${file} ${c.dep} should pass ${JSON.stringify(ev.data)} @ ${ev.time}`).toEqual({
            matched: true,
          });
        }
        for (const ev of c.fail) {
          const r = await m.check(ev);
          expect(r.matched, `${file} ${c.dep} should not pass ${JSON.stringify(ev.data)} @ ${ev.time}`).toBe(
            false,
          );
        }
      }
    });
  }

  it('transform.yaml: the Lua script and the jq program rewrite the data', async () => {
    const s = loadSensor('transform.yaml');
    const lua = compileDependency(s.spec.dependencies.find((d) => d.name === 'test-dep')!);
    const jq = compileDependency(s.spec.dependencies.find((d) => d.name === 'test-dep-foo')!);
    const ev = event({ body: { message: 'hi', n: 1 }, header: { a: ['x'] } });
    const a = await lua.transform(ev);
    expect(a.data).toEqual({ body: { message: 'updated', n: 1 }, header: { a: ['x'] } });
    expect(a.id).toBe(ev.id);
    const b = await jq.transform(ev);
    expect(b.data).toEqual({ body: { message: 'hihi', n: 1 }, header: { a: ['x'] } });
    expect(ev.data).toEqual({ body: { message: 'hi', n: 1 }, header: { a: ['x'] } });
  });
});

// ---------------------------------------------------------------------------------- data filters --

describe('data filters', () => {
  it('string values are Go regular expressions, searched unless anchored', () => {
    const d = compileDependency(
      dep({ data: [{ path: 'body.ref', type: 'string', value: ['^refs/heads/main$'] }] }),
    );
    expect(d.matches(data({ body: { ref: 'refs/heads/main' } }))).toBe(true);
    expect(d.matches(data({ body: { ref: 'refs/heads/main-2' } }))).toBe(false);
    const i = compileDependency(dep({ data: [{ path: 'k', type: 'string', value: ['(?i)^hello\\z'] }] }));
    expect(i.matches(data({ k: 'HeLLo' }))).toBe(true);
    expect(i.matches(data({ k: 'hello\n' }))).toBe(false);
    const named = compileDependency(
      dep({ data: [{ path: 'k', type: 'string', value: ['^(?P<v>v\\d+)\\.'] }] }),
    );
    expect(named.matches(data({ k: 'v12.3' }))).toBe(true);
  });

  it('"!=" on strings passes when the text does not match', () => {
    const d = compileDependency(
      dep({ data: [{ path: 'a', type: 'string', value: ['^x$'], comparator: '!=' }] }),
    );
    expect(d.matches(data({ a: 'y' }))).toBe(true);
    expect(d.matches(data({ a: 'x' }))).toBe(false);
  });

  it('"!=" with several values means "not in the list" for strings and numbers', () => {
    // argoproj/argo-events#3808: a value equal to one of the listed ones must not pass.
    const str = compileDependency(
      dep({ data: [{ path: 'id', type: 'string', value: ['acme', 'globex'], comparator: '!=' }] }),
    );
    expect(str.matches(data({ id: 'acme' }))).toBe(false);
    expect(str.matches(data({ id: 'globex' }))).toBe(false);
    expect(str.matches(data({ id: 'umbrella' }))).toBe(true);
    const num = compileDependency(
      dep({ data: [{ path: 'n', type: 'number', value: ['10', '20'], comparator: '!=' }] }),
    );
    expect(num.matches(data({ n: 10 }))).toBe(false);
    expect(num.matches(data({ n: '20' }))).toBe(false);
    expect(num.matches(data({ n: 30 }))).toBe(true);
    // booleans: upstream ignores the comparator (equality with any listed value); so does sluice
    const bool = compileDependency(
      dep({ data: [{ path: 'b', type: 'bool', value: ['true', 'false'], comparator: '!=' }] }),
    );
    expect(bool.matches(data({ b: true }))).toBe(true);
    expect(bool.matches(data({ b: false }))).toBe(true);
    // "=" and the ordering comparators still pass when any one value satisfies them.
    const any = compileDependency(
      dep({ data: [{ path: 'n', type: 'number', value: ['10', '20'], comparator: '>' }] }),
    );
    expect(any.matches(data({ n: 15 }))).toBe(true);
    expect(any.matches(data({ n: 5 }))).toBe(false);
  });

  it('paths use gjson syntax: multipaths, queries, modifiers (upstream data-filter docs)', () => {
    const labels = (...names: string[]) => names.map((name, i) => ({ id: String(i), name }));
    const multi = compileDependency(
      dep({
        data: [
          {
            path: '[body.action,body.labels.#(name=="Webhook").name,body.labels.#(name=="Approved").name]',
            type: 'string',
            value: ['"opened","Webhook"', '"closed","Webhook","Approved"'],
          },
        ],
      }),
    );
    expect(multi.matches(data({ body: { action: 'opened', labels: labels('Webhook') } }))).toBe(true);
    expect(multi.matches(data({ body: { action: 'closed', labels: labels('Webhook') } }))).toBe(false);
    expect(multi.matches(data({ body: { action: 'closed', labels: labels('Webhook', 'Approved') } }))).toBe(
      true,
    );
    expect(multi.matches(data({ body: { action: 'opened', labels: [] } }))).toBe(false);
    const query = compileDependency(
      dep({
        data: [{ path: 'body.labels.#(name=="Approved").name', type: 'string', value: ['^Approved$'] }],
      }),
    );
    expect(query.matches(data({ body: { labels: labels('Webhook', 'Approved') } }))).toBe(true);
    expect(query.matches(data({ body: { labels: labels('Webhook') } }))).toBe(false);
    const count = compileDependency(
      dep({ data: [{ path: 'body.labels.#', type: 'number', value: ['2'], comparator: '>=' }] }),
    );
    expect(count.matches(data({ body: { labels: labels('a', 'b') } }))).toBe(true);
    const mod = compileDependency(
      dep({ data: [{ path: 'body.labels.#.name|@reverse|0', type: 'string', value: ['^b$'] }] }),
    );
    expect(mod.matches(data({ body: { labels: labels('a', 'b') } }))).toBe(true);
  });

  it('a path gjson cannot read is a configuration error naming it', () => {
    expect(() =>
      compileDependency(dep({ data: [{ path: 'body.#(name=="x"', type: 'string', value: ['.'] }] })),
    ).toThrow(/is not closed/);
    expect(() =>
      compileDependency(dep({ exprs: [{ expr: 'a == 1', fields: [{ name: 'a', path: 'x..y' }] }] })),
    ).toThrow(/empty key/);
  });

  it('numbers compare with every comparator', () => {
    const cases: Array<[string, number, boolean]> = [
      ['>', 11, true],
      ['>', 10, false],
      ['>=', 10, true],
      ['<', 9.5, true],
      ['<', 10, false],
      ['<=', 10, true],
      ['=', 10, true],
      ['==', 10.0, true],
      ['!=', 10, false],
      ['!=', 3, true],
    ];
    for (const [comparator, v, want] of cases) {
      const d = compileDependency(
        dep({ data: [{ path: 'n', type: 'number', value: ['10'], comparator: comparator as '>' }] }),
      );
      expect(d.matches(data({ n: v })), `${v} ${comparator} 10`).toBe(want);
    }
  });

  it('booleans accept Go spellings; the comparator is ignored (equality), as upstream', () => {
    const t = compileDependency(dep({ data: [{ path: 'b', type: 'bool', value: ['True'] }] }));
    expect(t.matches(data({ b: true }))).toBe(true);
    expect(t.matches(data({ b: 'true' }))).toBe(true);
    expect(t.matches(data({ b: false }))).toBe(false);
    for (const comparator of ['!=', '>', '<='] as const) {
      const c = compileDependency(dep({ data: [{ path: 'b', type: 'bool', value: ['true'], comparator }] }));
      expect(c.matches(data({ b: true })), comparator).toBe(true);
      expect(c.matches(data({ b: false })), comparator).toBe(false);
    }
  });

  it('a missing path fails the filter with a reason, not an error', async () => {
    const d = compileDependency(dep({ data: [{ path: 'body.items.3.id', type: 'string', value: ['.'] }] }));
    expect(d.matches(data({ body: { items: [{ id: 1 }] } }))).toBe(false);
    const r = await d.check(data({ body: {} }));
    expect(r).toMatchObject({ matched: false, error: false });
    expect(r.matched === false && r.reason).toContain('path "body.items.3.id" does not exist');
    expect(d.matches(data({ body: { items: [0, 1, 2, { id: 'z' }] } }))).toBe(true);
  });

  it('a template rewrites the value first (b64dec)', () => {
    const d = compileDependency(
      dep({
        data: [
          { path: 'body.payload', type: 'string', value: ['^secret$'], template: '{{ b64dec .Input }}' },
        ],
      }),
    );
    expect(d.matches(data({ body: { payload: Buffer.from('secret').toString('base64') } }))).toBe(true);
    expect(d.matches(data({ body: { payload: Buffer.from('public').toString('base64') } }))).toBe(false);
    const n = compileDependency(
      dep({
        data: [{ path: 'v', type: 'number', value: ['5'], comparator: '>', template: '{{ len .Input }}' }],
      }),
    );
    expect(n.matches(data({ v: 'abcdefg' }))).toBe(true);
    expect(n.matches(data({ v: 'abc' }))).toBe(false);
  });

  it('a template that errors makes matches() throw with the dependency and filter named', () => {
    const d = compileDependency(
      dep({ data: [{ path: 'v', type: 'string', value: ['.'], template: '{{ .Input.x }}' }] }),
    );
    expect(() => d.matches(data({ v: 'abc' }))).toThrow(FilterEvaluationError);
    expect(() => d.matches(data({ v: 'abc' }))).toThrow(
      /dependency "d": filters\.data\[0\] \(path "v"\).*can't evaluate field x/,
    );
  });

  it('rejects invalid filters at compile time with actionable messages', () => {
    const bad: Array<[EventDependency['filters'], RegExp]> = [
      [
        { data: [{ path: 'a', type: 'string', value: ['(unclosed'] }] },
        /data\[0\] \(path "a"\): invalid regular expression/,
      ],
      [{ data: [{ path: 'a', type: 'number', value: ['ten'] }] }, /value "ten" is not a number/],
      [{ data: [{ path: 'a', type: 'bool', value: ['yes'] }] }, /value "yes" is not a boolean/],
      [
        { data: [{ path: 'a', type: 'string', value: ['x'], comparator: '>' }] },
        /comparator ">" does not apply to strings/,
      ],
      [{ data: [{ path: 'a', type: 'string', value: [] }] }, /no values given/],
      [
        { data: [{ path: 'a', type: 'string', value: ['x'], template: '{{ nosuch .Input }}' }] },
        /function "nosuch" not defined/,
      ],
      [
        { exprs: [{ expr: 'a ==', fields: [{ name: 'a', path: 'a' }] }] },
        /exprs\[0\] \("a =="\): cannot parse/,
      ],
      [
        { exprs: [{ expr: 'a == b', fields: [{ name: 'a', path: 'a' }] }] },
        /uses "b", not among its fields \(a\)/,
      ],
      [{ time: { start: '09:00', stop: '10:00', timezone: 'Mars/Olympus' } }, /timezone "Mars\/Olympus"/],
      [{ script: 'if then' }, /filters: syntax error/],
    ];
    for (const [filters, re] of bad) {
      expect(() => compileDependency(dep(filters)), JSON.stringify(filters)).toThrow(DependencyConfigError);
      expect(() => compileDependency(dep(filters))).toThrow(re);
    }
  });
});

// ---------------------------------------------------------------------------------- expressions --

describe('expression filters (govaluate syntax)', () => {
  const expr = (e: string, fields: Array<[string, string]>) =>
    compileDependency(dep({ exprs: [{ expr: e, fields: fields.map(([name, path]) => ({ name, path })) }] }));

  it('&& binds tighter than ||, with parentheses and literals', () => {
    const d = expr('a == "x" || b > 5 && c == true', [
      ['a', 'a'],
      ['b', 'b'],
      ['c', 'c'],
    ]);
    expect(d.matches(data({ a: 'x', b: 0, c: false }))).toBe(true);
    expect(d.matches(data({ a: 'y', b: 6, c: true }))).toBe(true);
    expect(d.matches(data({ a: 'y', b: 6, c: false }))).toBe(false);
    const p = expr("(a == 'x' || b > 5) && c", [
      ['a', 'a'],
      ['b', 'b'],
      ['c', 'c'],
    ]);
    expect(p.matches(data({ a: 'x', b: 0, c: false }))).toBe(false);
  });

  it('== is strict (10 is not "10"); =~, !~, IN and [escaped names] work', () => {
    expect(expr('n == "10"', [['n', 'n']]).matches(data({ n: 10 }))).toBe(false);
    expect(expr('n == 10', [['n', 'n']]).matches(data({ n: 10 }))).toBe(true);
    expect(expr('s =~ "^feat/"', [['s', 'ref']]).matches(data({ ref: 'feat/x' }))).toBe(true);
    expect(expr('s !~ "^feat/"', [['s', 'ref']]).matches(data({ ref: 'feat/x' }))).toBe(false);
    expect(expr('s IN ("a", "b")', [['s', 's']]).matches(data({ s: 'b' }))).toBe(true);
    expect(expr('s IN ("a", "b")', [['s', 's']]).matches(data({ s: 'c' }))).toBe(false);
    expect(
      expr('[x-y] > 2 && !(z)', [
        ['x-y', 'v'],
        ['z', 'z'],
      ]).matches(data({ v: 3, z: false })),
    ).toBe(true);
  });

  it('a missing field fails; an expression with no fields is skipped as upstream does', async () => {
    const d = expr('a == 1', [['a', 'deep.a']]);
    const r = await d.check(data({}));
    expect(r.matched === false && r.reason).toContain('path "deep.a" does not exist');
    const skip = compileDependency(dep({ exprs: [{ expr: 'false', fields: [] }] }));
    expect(skip.matches(data({}))).toBe(true);
  });
});

// ----------------------------------------------------------------------------- context and time --

describe('context and time filters', () => {
  it('every set context attribute must be equal', () => {
    const d = compileDependency(dep({ context: { type: 'webhook', id: 'e-1', specversion: '1.0' } }));
    expect(d.matches(event({}))).toBe(true);
    expect(d.matches(event({}, { id: 'e-2' }))).toBe(false);
    expect(d.matches(event({}, { type: 'calendar' }))).toBe(false);
  });

  it('a window across midnight in a time zone, compared with the event time', () => {
    // 22:00-02:00 in Tokyo (UTC+9, no DST) is 13:00-17:00 UTC.
    const d = compileDependency(dep({ time: { start: '22:00', stop: '02:00', timezone: 'Asia/Tokyo' } }));
    expect(d.matches(at('2024-03-01T13:00:00Z'))).toBe(true);
    expect(d.matches(at('2024-03-01T15:30:00Z'))).toBe(true);
    expect(d.matches(at('2024-03-01T16:59:59Z'))).toBe(true);
    expect(d.matches(at('2024-03-01T17:00:00Z'))).toBe(false);
    expect(d.matches(at('2024-03-01T12:59:59Z'))).toBe(false);
    // Across a DST change: 01:00-03:00 Europe/Berlin is 00:00-02:00 UTC in winter, 23:00-01:00 in summer.
    const b = compileDependency(
      dep({ time: { start: '01:00:00', stop: '03:00:00', timezone: 'Europe/Berlin' } }),
    );
    expect(b.matches(at('2024-01-10T00:30:00Z'))).toBe(true);
    expect(b.matches(at('2024-07-10T00:30:00Z'))).toBe(true);
    expect(b.matches(at('2024-07-10T01:30:00Z'))).toBe(false);
  });

  it('an event without a valid time is judged by the time given (or now)', () => {
    const d = compileDependency(dep({ time: { start: '10:00', stop: '11:00' } }));
    const ev = event({}, { time: 'not a time' });
    expect(d.matches(ev, new Date('2024-01-01T10:30:00Z'))).toBe(true);
    expect(d.matches(ev, new Date('2024-01-01T11:30:00Z'))).toBe(false);
  });
});

// ------------------------------------------------------------------------------------ Lua, jq --

describe('script filters (Lua)', () => {
  it('passes only when the script returns true', () => {
    const d = compileDependency(dep({ script: 'return event.body.n > 3 and event.body.tags[2] == "b"' }));
    expect(d.matches(data({ body: { n: 4, tags: ['a', 'b'] } }))).toBe(true);
    expect(d.matches(data({ body: { n: 2, tags: ['a', 'b'] } }))).toBe(false);
    const truthy = compileDependency(dep({ script: 'return 1' }));
    expect(truthy.matches(data({}))).toBe(false);
  });

  it('a runtime error does not match, and says why', async () => {
    const d = compileDependency(dep({ script: 'return event.body.missing.field == 1' }));
    const r = await d.check(data({ body: {} }));
    expect(r).toMatchObject({ matched: false, error: true });
    expect(r.matched === false && r.reason).toMatch(
      /dependency "d": filters\.script: line 1: attempt to index a nil value/,
    );
    expect(() => d.matches(data({ body: {} }))).toThrow(FilterEvaluationError);
  });

  it('is sandboxed: no io, os, require, load or dofile', () => {
    for (const name of ['io', 'os', 'require', 'load', 'dofile', 'loadfile', 'debug', 'package', 'print']) {
      const d = compileDependency(dep({ script: `return ${name} == nil` }));
      expect(d.matches(data({})), name).toBe(true);
    }
    const g = compileDependency(dep({ script: 'return _G.io == nil and string.rep("a", 3) == "aaa"' }));
    expect(g.matches(data({}))).toBe(true);
  });

  it('globals do not leak from one event to the next', () => {
    const d = compileDependency(dep({ script: 'seen = (seen or 0) + 1; return seen == 1' }));
    expect(d.matches(data({}))).toBe(true);
    expect(d.matches(data({}))).toBe(true);
  });

  it('an endless loop is stopped by the instruction limit', () => {
    const d = compileDependency(dep({ script: 'while true do end' }));
    const t = performance.now();
    expect(() => d.matches(data({}))).toThrow(/more than \d+ instructions/);
    expect(performance.now() - t).toBeLessThan(5000);
    const sneaky = compileDependency(
      dep({ script: 'while true do pcall(function() while true do end end) end' }),
    );
    expect(() => sneaky.matches(data({}))).toThrow(/instructions/);
    // The engine stays usable afterwards.
    expect(compileDependency(dep({ script: 'return true' })).matches(data({}))).toBe(true);
  });

  it('memory is capped', () => {
    const d = compileDependency(
      dep({ script: 'local t = {} for i = 1, 1e8 do t[i] = string.rep("x", 1000) .. i end return true' }),
    );
    expect(() => d.matches(data({}))).toThrow(/memory|instructions/);
  });
});

describe('transforms', () => {
  it('jq errors are TransformErrors naming the dependency', async () => {
    const d = compileDependency(dep(undefined, { transform: { jq: '.body.n | error("boom")' } }));
    await expect(async () => d.transform(data({ body: { n: 1 } }))).rejects.toThrow(TransformError);
    await expect(async () => d.transform(data({ body: { n: 1 } }))).rejects.toThrow(
      /dependency "d": transform\.jq: boom/,
    );
    const notObj = compileDependency(dep(undefined, { transform: { jq: '.body.n' } }));
    await expect(async () => notObj.transform(data({ body: { n: 1 } }))).rejects.toThrow(
      /must be a JSON object, got a number/,
    );
    const none = compileDependency(dep(undefined, { transform: { jq: 'empty' } }));
    await expect(async () => none.transform(data({}))).rejects.toThrow(/no output/);
  });

  it('jq and Lua syntax errors are caught at compile time', () => {
    expect(() => compileDependency(dep(undefined, { transform: { jq: '.a |||' } }))).toThrow(
      /dependency "d": transform\.jq: cannot compile: .*syntax error/,
    );
    expect(() => compileDependency(dep(undefined, { transform: { jq: 'nosuchfn(1)' } }))).toThrow(/nosuchfn/);
    expect(() => compileDependency(dep(undefined, { transform: { script: 'return {' } }))).toThrow(
      /dependency "d": transform\.script: syntax error/,
    );
    expect(() =>
      compileDependency(dep(undefined, { transform: { jq: '.', script: 'return event' } })),
    ).toThrow(/either jq or script/);
  });

  it('a Lua transform returns arrays as arrays and must return a table', async () => {
    const d = compileDependency(
      dep(undefined, { transform: { script: 'return { list = { 1, 2, 3 }, name = event.n }' } }),
    );
    expect((await d.transform(data({ n: 'x' }))).data).toEqual({ list: [1, 2, 3], name: 'x' });
    const bad = compileDependency(dep(undefined, { transform: { script: 'return 5' } }));
    await expect(async () => bad.transform(data({}))).rejects.toThrow(/must return a table, got a number/);
  });

  it('without a transform the event is returned unchanged', () => {
    const ev = data({ a: 1 });
    expect(compileDependency(dep(undefined)).transform(ev)).toBe(ev);
  });
});

// -------------------------------------------------------------------------------- paths, speed --

describe('paths', () => {
  it('reads gjson-style paths', () => {
    const doc = { a: { 'b.c': 1, list: [{ id: 'x' }, { id: 'y' }], 'key-1': true, n: null } };
    expect(compilePath('a.b\\.c').get(doc)).toBe(1);
    expect(compilePath('a.list.1.id').get(doc)).toBe('y');
    expect(compilePath('a.list.#').get(doc)).toBe(2);
    expect(compilePath('a.list.#.id').get(doc)).toEqual(['x', 'y']);
    expect(compilePath('a.key-*').get(doc)).toBe(true);
    expect(compilePath('a.n').get(doc)).toBe(null);
    expect(compilePath('a.list.2').get(doc)).toBe(MISSING);
    expect(compilePath('a.nope.x').get(doc)).toBe(MISSING);
    expect(compilePath('a.__proto__').get(doc)).toBe(MISSING);
  });
});

describe('hot path', () => {
  it('a simple data filter runs well above 10k events/s', () => {
    const d = compileDependency(
      dep({
        data: [
          { path: 'body.action', type: 'string', value: ['opened', 'edited'] },
          { path: 'body.number', type: 'number', value: ['0'], comparator: '>' },
        ],
      }),
    );
    const evs = Array.from({ length: 1000 }, (_, i) =>
      data({ body: { action: i % 2 ? 'opened' : 'closed', number: i } }),
    );
    const n = 100_000;
    let hits = 0;
    const t = performance.now();
    for (let i = 0; i < n; i++) if (d.matches(evs[i % 1000]!)) hits++;
    const perSec = n / ((performance.now() - t) / 1000);
    expect(hits).toBe(n / 2);
    console.log(`data filter: ${Math.round(perSec).toLocaleString('en-US')} events/s`);
    expect(perSec).toBeGreaterThan(10_000);
  });
});
