// Trigger parameters: every upstream example that copies event values into a trigger, the
// documented examples in detail, and the resolution rules (defaults, raw data, append/prepend,
// missing dependencies, destination paths).
import { describe, expect, it } from 'vitest';
import type { Trigger, TriggerParameter } from '../../../src/api/sensor.ts';
import type { CloudEvent } from '../../../src/eventsources/envelope.ts';
import { lookup, MISSING } from '../../../src/sensors/match/path.ts';
import {
  applyParameters,
  buildPayload,
  DestPathError,
  ParameterError,
  setPath,
} from '../../../src/sensors/params/index.ts';
import { event, exampleFiles, haveExamples, loadSensor } from './helpers.ts';

const p = (
  src: TriggerParameter['src'],
  dest: string,
  operation?: TriggerParameter['operation'],
): TriggerParameter => ({
  src,
  dest,
  ...(operation ? { operation } : {}),
});

// ------------------------------------------------------------------------- upstream examples --

/** Where each list of parameters of a trigger applies, as the Sensor runtime applies them. */
function parameterSites(t: Trigger): Array<{ what: string; params: TriggerParameter[]; target: unknown }> {
  const tpl = t.template as Record<string, unknown> | undefined;
  if (!tpl) return [];
  const sites: Array<{ what: string; params: TriggerParameter[]; target: unknown }> = [];
  if (t.parameters?.length) sites.push({ what: 'trigger.parameters', params: t.parameters, target: tpl });
  for (const [type, spec] of Object.entries(tpl)) {
    if (!spec || typeof spec !== 'object' || Array.isArray(spec)) continue;
    const s = spec as {
      parameters?: TriggerParameter[];
      payload?: TriggerParameter[];
      source?: { resource?: unknown };
    };
    if (s.parameters?.length) {
      const target = type === 'k8s' || type === 'argoWorkflow' ? (s.source?.resource ?? {}) : s;
      sites.push({ what: `${type}.parameters`, params: s.parameters, target });
    }
    if (s.payload?.length) sites.push({ what: `${type}.payload`, params: s.payload, target: undefined });
  }
  return sites;
}

/** Event data holding a recognisable value at every dataKey the parameters read. */
function dataFor(params: TriggerParameter[]): unknown {
  const keys = [...new Set(params.flatMap((x) => (x.src?.dataKey ? [x.src.dataKey] : [])))];
  keys.sort((a, b) => b.split('.').length - a.split('.').length);
  let data: unknown = {};
  for (const k of keys) if (lookup(data, k) === MISSING) data = setPath(data, k, `v:${k}`);
  // Templates in the examples read these.
  return setPath(
    setPath(setPath(data, 'body.name', 'Ada Lovelace'), 'body.message', 'hello there'),
    'body.pull_request',
    { number: 7, head: { sha: '0123456789abcdef' }, title: 't' },
  );
}

const readDest = (obj: unknown, dest: string): unknown => {
  if (dest.endsWith('.-1')) {
    const arr = lookup(obj, dest.slice(0, -3));
    return Array.isArray(arr) ? arr.at(-1) : MISSING;
  }
  return lookup(obj, dest);
};

describe.skipIf(!haveExamples)('upstream example Sensors: parameters', () => {
  it('every parameter of every example resolves into its destination', () => {
    let checked = 0;
    let files = 0;
    for (const file of exampleFiles()) {
      const sensor = loadSensor(file);
      const sites = sensor.spec.triggers.flatMap(parameterSites);
      if (!sites.length) continue;
      files++;
      const all = sites.flatMap((s) => s.params);
      const data = dataFor(all);
      const events: Record<string, CloudEvent> = {};
      for (const d of sensor.spec.dependencies)
        events[d.name] = event(data, { source: d.eventSourceName, subject: d.eventName });
      for (const site of sites) {
        const out =
          site.target === undefined
            ? buildPayload(site.params, events)
            : applyParameters(site.target, site.params, events);
        for (const param of site.params) {
          const src = param.src!;
          const got = readDest(out, param.dest);
          const label = `${file} ${site.what} -> ${param.dest}`;
          expect(got, label).not.toBe(MISSING);
          if (param.operation === 'append' || param.operation === 'prepend') {
            expect(typeof got, label).toBe('string');
          } else if (src.dataTemplate || src.contextTemplate) {
            expect(got, label).toEqual(expect.any(String));
            expect(got as string, label).not.toContain('<no value>');
          } else if (src.dataKey) {
            const v = lookup(data, src.dataKey);
            expect(got, label).toBe(typeof v === 'string' ? v : JSON.stringify(v));
          } else if (src.contextKey) {
            expect(got, label).toBe(
              (events[src.dependencyName] as unknown as Record<string, unknown>)[src.contextKey],
            );
          }
          checked++;
        }
        if (site.target !== undefined) expect(site.target, `${file}: target left unchanged`).not.toBe(out);
      }
    }
    expect(files).toBeGreaterThan(30);
    expect(checked).toBeGreaterThan(60);
  });

  it('trigger-with-template.yaml: templates with title, nospace | lower, and append', () => {
    const s = loadSensor('trigger-with-template.yaml');
    const t = s.spec.triggers[0]!;
    const events = {
      'test-dep': event({ body: { message: 'hello world', name: 'Ada Love Lace' } }, { subject: 'example' }),
    };
    const k8s = t.template!.k8s!;
    const wf = applyParameters(k8s.source!.resource, k8s.parameters, events) as {
      metadata: { generateName: string };
      spec: { arguments: { parameters: Array<{ name: string; value?: string }> } };
    };
    expect(wf.spec.arguments.parameters).toEqual([
      { name: 'message', value: 'Hello World' },
      { name: 'subject', value: 'Example' },
    ]);
    expect(wf.metadata.generateName).toBe('webhook-adalovelace-');
    expect((k8s.source!.resource as { metadata: { generateName: string } }).metadata.generateName).toBe(
      'webhook-',
    );
  });

  it('complete-trigger-parameterization.yaml: the template itself is parameterised, then the resource', () => {
    const s = loadSensor('complete-trigger-parameterization.yaml');
    const t = s.spec.triggers[0]!;
    const events = {
      'test-dep': event({
        name: 'from-event',
        bucket: 'b1',
        key: 'wf.yaml',
        port: ':9000',
        namespace: 'team-a',
        image: 'busybox:1',
      }),
    };
    const tpl = applyParameters(t.template!, t.parameters, events);
    expect(tpl.name).toBe('from-event');
    expect(tpl.k8s!.source!.s3).toMatchObject({
      bucket: { name: 'b1', key: 'wf.yaml' },
      endpoint: 'minio-service.argo-events:9000:9000',
    });
    const resource = applyParameters(
      { metadata: {}, spec: { templates: [{ container: {} }] } },
      tpl.k8s!.parameters,
      events,
    );
    expect(resource).toEqual({
      metadata: { namespace: 'team-a' },
      spec: { templates: [{ container: { image: 'busybox:1' } }] },
    });
  });

  it('email-trigger.yaml: appends to a list with -1 and renders a multi-line template', () => {
    const s = loadSensor('email-trigger.yaml');
    const t = s.spec.triggers[0]!;
    const events = { 'test-dep': event({ body: { to: 'ada@example.com', name: 'Ada' } }) };
    const tpl = applyParameters(t.template!, t.parameters, events);
    expect(tpl.email!.to).toEqual([...(t.template!.email!.to ?? []), 'ada@example.com']);
    expect(tpl.email!.body).toBe('Hi Ada,\n\n\tHello There.\n\nThanks,\nObi');
  });

  it('special-workflow-trigger.yaml: a JSON block is inserted as its text', () => {
    const s = loadSensor('special-workflow-trigger.yaml');
    const wf = s.spec.triggers[0]!.template!.argoWorkflow!;
    const body = { message: 'hi', n: 2 };
    const out = applyParameters(wf.source!.resource, wf.parameters, { 'test-dep': event({ body }) }) as {
      spec: { arguments: { parameters: Array<{ value: unknown }> } };
    };
    expect(out.spec.arguments.parameters[0]!.value).toBe(JSON.stringify(body));
  });
});

// ---------------------------------------------------------------------------- resolution rules --

describe('parameter resolution', () => {
  const ev = event(
    { body: { n: 42, ok: true, none: null, list: [1, 2], obj: { a: 'x' }, s: 'text' } },
    { id: 'abc', type: 'webhook', subject: 'example' },
  );
  const events = { dep: ev };

  it('keys give text, and useRawData keeps numbers, booleans, null, objects and arrays', () => {
    const keys = ['n', 'ok', 'none', 'list', 'obj', 's'];
    const asText = buildPayload(
      keys.map((k) => p({ dependencyName: 'dep', dataKey: `body.${k}` }, k)),
      events,
    );
    expect(asText).toEqual({ n: '42', ok: 'true', none: 'null', list: '[1,2]', obj: '{"a":"x"}', s: 'text' });
    const raw = buildPayload(
      keys.map((k) => p({ dependencyName: 'dep', dataKey: `body.${k}`, useRawData: true }, k)),
      events,
    );
    expect(raw).toEqual({ n: 42, ok: true, none: null, list: [1, 2], obj: { a: 'x' }, s: 'text' });
  });

  it('templates always give text, even with useRawData', () => {
    const out = buildPayload(
      [p({ dependencyName: 'dep', dataTemplate: '{{ .Input.body.n }}', useRawData: true }, 'n')],
      events,
    );
    expect(out).toEqual({ n: '42' });
  });

  it('context keys and templates read the CloudEvents attributes', () => {
    const out = buildPayload(
      [
        p({ dependencyName: 'dep', contextKey: 'id' }, 'id'),
        p(
          { dependencyName: 'dep', contextTemplate: '{{ .Input.type | upper }}/{{ .Input.subject }}' },
          'kind',
        ),
      ],
      events,
    );
    expect(out).toEqual({ id: 'abc', kind: 'WEBHOOK/example' });
  });

  it('falls back from a failing template to the key, then to the default value', () => {
    const out = buildPayload(
      [
        p({ dependencyName: 'dep', dataTemplate: '{{ .Input.body.missing }}', dataKey: 'body.s' }, 'a'),
        p(
          {
            dependencyName: 'dep',
            dataTemplate: '{{ .Input.body.s.x }}',
            dataKey: 'body.nope',
            value: 'dflt',
          },
          'b',
        ),
        p({ dependencyName: 'dep', dataKey: 'body.nope', value: '' }, 'c'),
      ],
      events,
    );
    expect(out).toEqual({ a: 'text', b: 'dflt', c: '' });
  });

  it('an unresolvable parameter is an error naming the parameter, dependency and keys', () => {
    const params = [
      p({ dependencyName: 'dep', dataKey: 'body.s' }, 'ok'),
      p({ dependencyName: 'dep', dataKey: 'body.nope' }, 'x.y'),
    ];
    expect(() => buildPayload(params, events)).toThrow(ParameterError);
    expect(() => buildPayload(params, events)).toThrow(
      /parameter \[1\] \(dest "x\.y"\): cannot resolve a value from dependency "dep" \(dataKey "body\.nope" does not exist in the event data\) and no default value is set/,
    );
  });

  it('a parameter whose dependency did not fire is skipped, or takes its default', () => {
    const out = applyParameters(
      { keep: 'me' },
      [
        p({ dependencyName: 'other', dataKey: 'x' }, 'keep'),
        p({ dependencyName: 'other', dataKey: 'x', value: 'd' }, 'set'),
      ],
      events,
    );
    expect(out).toEqual({ keep: 'me', set: 'd' });
  });

  it('without a key or template, the value, else the whole event as JSON', () => {
    const out = buildPayload(
      [p({ dependencyName: 'dep', value: 'v' }, 'a'), p({ dependencyName: 'dep' }, 'whole')],
      events,
    ) as { a: string; whole: string };
    expect(out.a).toBe('v');
    const whole = JSON.parse(out.whole) as { context: Record<string, unknown>; data: unknown };
    expect(whole.context).toMatchObject({
      id: 'abc',
      type: 'webhook',
      subject: 'example',
      specversion: '1.0',
    });
    expect(whole.data).toEqual(ev.data);
  });

  it('append and prepend join texts; on a missing destination they just set', () => {
    const out = applyParameters(
      { name: 'wf-', n: 5 },
      [
        p({ dependencyName: 'dep', dataKey: 'body.s' }, 'name', 'append'),
        p({ dependencyName: 'dep', dataKey: 'body.n', useRawData: true }, 'n', 'prepend'),
        p({ dependencyName: 'dep', dataKey: 'body.s' }, 'fresh', 'append'),
      ],
      events,
    );
    expect(out).toEqual({ name: 'wf-text', n: '425', fresh: 'text' });
  });

  it('returns a deep copy and leaves the target alone', () => {
    const target = { spec: { args: ['a'] } };
    const out = applyParameters(
      target,
      [p({ dependencyName: 'dep', dataKey: 'body.s' }, 'spec.args.0')],
      events,
    );
    expect(out).toEqual({ spec: { args: ['text'] } });
    expect(target).toEqual({ spec: { args: ['a'] } });
    expect(applyParameters(target, undefined, events)).not.toBe(target);
  });

  it('reads data that arrived as JSON text', () => {
    const textEv = event('{"a":{"b":1}}');
    expect(buildPayload([p({ dependencyName: 'd', dataKey: 'a.b' }, 'x')], { d: textEv })).toEqual({
      x: '1',
    });
  });
});

describe('destination paths (sjson-style)', () => {
  it('creates objects and arrays as needed, appends with -1, and escapes dots', () => {
    expect(setPath({}, 'a.b.c', 1)).toEqual({ a: { b: { c: 1 } } });
    expect(setPath({}, 'list.2.name', 'x')).toEqual({ list: [null, null, { name: 'x' }] });
    expect(setPath({ to: ['a'] }, 'to.-1', 'b')).toEqual({ to: ['a', 'b'] });
    expect(setPath({}, 'to.-1', 'b')).toEqual({ to: ['b'] });
    expect(setPath({}, 'labels.app\\.kubernetes\\.io/name', 'x')).toEqual({
      labels: { 'app.kubernetes.io/name': 'x' },
    });
    expect(setPath({}, 'm.:0', 'x')).toEqual({ m: { '0': 'x' } });
    expect(setPath({ a: 'scalar' }, 'a.b', 1)).toEqual({ a: { b: 1 } });
  });

  it('rejects what cannot be set', () => {
    expect(() => setPath({ a: [] }, 'a.name', 1)).toThrow(DestPathError);
    expect(() => setPath({}, '__proto__.polluted', 1)).toThrow(/__proto__/);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(() => setPath({}, 'a.1000000', 1)).toThrow(/too large/);
  });
});
