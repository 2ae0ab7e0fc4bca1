import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { validateText } from '../../../src/api/validate.ts';
import { lint } from '../../../src/cli/lint.ts';
import { INVALID_CASES, validEventBus, validEventSource, validSensor } from '../../fixtures/manifests.ts';

const bin = new URL('../../../bin/sluice', import.meta.url).pathname;

describe('sluice lint', () => {
  it('accepts the valid base manifests', () => {
    const text = [validEventBus(), validEventSource(), validSensor()].map((m) => stringify(m)).join('---\n');
    const r = validateText(text);
    expect(r.problems).toEqual([]);
    expect(r.objects.map((o) => `${o.kind}/${o.name}`)).toEqual([
      'EventBus/default',
      'EventSource/webhook',
      'Sensor/sensor',
    ]);
  });

  it(`rejects ${INVALID_CASES.length} invalid manifests naming the offending field`, () => {
    expect(INVALID_CASES.length).toBeGreaterThanOrEqual(30);
    const missed: string[] = [];
    for (const c of INVALID_CASES) {
      const r = validateText(stringify(c.manifest));
      const paths = r.problems.map((p) => p.path);
      if (!paths.includes(c.lintPath))
        missed.push(`${c.name}: expected ${c.lintPath}, got ${JSON.stringify(r.problems)}`);
    }
    expect(missed).toEqual([]);
  });

  it('suggests the intended field for a typo', () => {
    const c = INVALID_CASES.find((x) => x.name === 'sensor: typo in dependency')!;
    const r = validateText(stringify(c.manifest));
    expect(r.problems).toContainEqual(
      expect.objectContaining({
        path: 'spec.dependencies[0].eventSourceNmae',
        message: 'unknown field (did you mean "eventSourceName"?)',
      }),
    );
  });

  it('reports YAML syntax errors with a line and skips other kinds', () => {
    const r = validateText('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\nkind: [unclosed\n');
    expect(r.skipped).toBe(1);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]!.message).toMatch(/^YAML error at line \d+/);
  });

  it('prints file: kind/name: path: message and exits 1 on problems, 0 when clean', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-lint-'));
    const bad = INVALID_CASES.find((x) => x.name === 'eventbus: replicas 2')!;
    writeFileSync(join(dir, 'bad.yaml'), stringify(bad.manifest));
    writeFileSync(join(dir, 'good.yaml'), stringify(validSensor()));
    const res = spawnSync(bin, ['lint', dir], { encoding: 'utf8' });
    expect(res.status).toBe(1);
    expect(res.stdout.trim().split('\n')).toEqual([
      `${join(dir, 'bad.yaml')}: EventBus/default: spec.jetstream.replicas: replicas may be 1 or 3 and more, but not 2 (no quorum)`,
    ]);
    const ok = execFileSync(bin, ['lint', join(dir, 'good.yaml')], { encoding: 'utf8' });
    expect(ok).toBe('');
  });

  it('counts files and objects across folders', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-lint-'));
    writeFileSync(
      join(dir, 'a.yaml'),
      [validEventBus(), validSensor()].map((m) => stringify(m)).join('---\n'),
    );
    const lines: string[] = [];
    const s = lint([dir, join(dir, 'missing.yaml')], (l) => lines.push(l));
    expect(s).toEqual({ files: 1, objects: 2, problems: 1, warnings: 0, unreadable: 1 });
    expect(lines[0]).toMatch(/missing\.yaml: cannot read: no such file or folder$/);
  });

  it('reads "-" from standard input', () => {
    const res = spawnSync(bin, ['lint', '-'], { encoding: 'utf8', input: stringify(validSensor()) });
    expect(res.status).toBe(0);
    expect(res.stderr).toContain('1 valid object(s), 0 problem(s)');
    const bad = spawnSync(bin, ['lint', '-'], {
      encoding: 'utf8',
      input: 'kind: EventBus\nmetadata: {name: x}\n',
    });
    expect(bad.status).toBe(1);
    expect(bad.stdout).toContain('<stdin>: EventBus/x: apiVersion missing');
  });
});

const problemsOf = (yaml: string) =>
  validateText(yaml).problems.map((p) => `${p.object}: ${p.path ? `${p.path}: ` : ''}${p.message}`);
type Obj = Record<string, unknown>;
interface SensorDoc {
  spec: Obj & { dependencies: Obj[]; triggers: Array<Obj & { template?: Obj }> };
}
const sensorYaml = (patch: (s: SensorDoc) => void) => {
  const s = validSensor() as unknown as SensorDoc;
  patch(s);
  return stringify(s);
};

describe('lint: kinds and versions', () => {
  it('refuses documents without apiVersion or kind, unknown argoproj.io kinds and versions', () => {
    expect(problemsOf('kind: EventBus\nmetadata: {name: a}\nspec: {}\n')).toEqual([
      'EventBus/a: apiVersion missing: not a Kubernetes manifest',
    ]);
    expect(problemsOf('apiVersion: argoproj.io/v1alpha1\nmetadata: {name: a}\n')[0]).toContain(
      'kind missing',
    );
    expect(problemsOf('apiVersion: argoproj.io/v1alpha1\nkind: Sensr\nmetadata: {name: a}\n')[0]).toContain(
      'unknown kind "Sensr" in argoproj.io/v1alpha1 (did you mean "Sensor"?)',
    );
    expect(problemsOf('apiVersion: argoproj.io/v1beta1\nkind: Sensor\nmetadata: {name: a}\n')[0]).toContain(
      'unknown apiVersion "argoproj.io/v1beta1" for Sensor',
    );
    expect(problemsOf('apiVersion: v1alpha1\nkind: EventSource\nmetadata: {name: a}\n')[0]).toContain(
      'unknown apiVersion "v1alpha1" for EventSource',
    );
  });

  it("skips other Kubernetes kinds and the other Argo projects' kinds", () => {
    const r = validateText(
      'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {name: w}\n',
    );
    expect(r.problems).toEqual([]);
    expect(r.skipped).toBe(2);
  });
});

describe('lint: wrong types are named as wrong types', () => {
  it('says what was expected and what was given', () => {
    const es = validEventSource() as { spec: { webhook: { example: Record<string, unknown> } } };
    es.spec.webhook.example.port = 12000;
    expect(problemsOf(stringify(es))).toContain(
      'EventSource/webhook: spec.webhook.example.port: expected string, got number 12000',
    );
    expect(
      problemsOf(sensorYaml((s) => Object.assign(s.spec.triggers[0]!, { atLeastOnce: 'yes' }))),
    ).toContain('Sensor/sensor: spec.triggers[0].atLeastOnce: expected boolean, got string "yes"');
    expect(
      problemsOf(
        sensorYaml((s) => Object.assign(s.spec.triggers[0]!, { retryStrategy: { duration: true } })),
      ),
    ).toContain(
      'Sensor/sensor: spec.triggers[0].retryStrategy.duration: expected number or string, got boolean',
    );
    expect(problemsOf(sensorYaml((s) => Object.assign(s.spec, { dependencies: 'dep-a' })))).toContain(
      'Sensor/sensor: spec.dependencies: expected list, got string "dep-a"',
    );
  });
});

describe('lint: the checks the runtime would make', () => {
  const calendar = (entry: Record<string, unknown>) =>
    stringify({
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'EventSource',
      metadata: { name: 'cal' },
      spec: { calendar: { tick: entry } },
    });

  it('cron schedules, time zones and exclusion dates of calendar sources', () => {
    expect(problemsOf(calendar({ schedule: '61 * * * *' }))[0]).toContain(
      'spec.calendar.tick.schedule: "61 * * * *" is not a valid cron',
    );
    expect(problemsOf(calendar({ schedule: '* * *' }))[0]).toContain('must be a cron expression');
    expect(problemsOf(calendar({ interval: '10s', timezone: 'Mars/Olympus' }))[0]).toContain(
      'spec.calendar.tick.timezone: "Mars/Olympus" is not a known IANA time zone',
    );
    expect(problemsOf(calendar({ interval: '10s', exclusionDates: ['someday'] }))[0]).toContain(
      'spec.calendar.tick.exclusionDates[0]',
    );
    expect(problemsOf(calendar({ schedule: '0 30 9 * * 1-5', timezone: 'Europe/Paris' }))).toEqual([]);
    expect(problemsOf(calendar({ schedule: '@every 90s' }))).toEqual([]);
  });

  it('conditionsReset cron and time zone, time filter time zone', () => {
    const reset = (byTime: Record<string, string>) =>
      sensorYaml((s) => Object.assign(s.spec.triggers[0]!.template!, { conditionsReset: [{ byTime }] }));
    expect(problemsOf(reset({ cron: 'every day' }))[0]).toContain(
      'spec.triggers[0].template.conditionsReset[0].byTime.cron: "every day" has 2 fields',
    );
    expect(problemsOf(reset({ cron: '0 0 * * *', timezone: 'Nowhere' }))[0]).toContain('byTime.timezone');
    expect(problemsOf(reset({ cron: '0 0 * * *', timezone: 'Asia/Tokyo' }))).toEqual([]);
    const tf = sensorYaml((s) =>
      Object.assign(s.spec.dependencies[0]!, {
        filters: { time: { start: '09:00', stop: '17:00', timezone: 'x' } },
      }),
    );
    expect(problemsOf(tf)[0]).toContain('spec.dependencies[0].filters.time.timezone');
  });

  it('paths sluice cannot evaluate, in filters, expression fields, parameter keys and ordering keys', () => {
    const bad = 'body.#(name=="x"';
    const cases: Array<[(s: SensorDoc) => void, string]> = [
      [
        (s) =>
          Object.assign(s.spec.dependencies[0]!, {
            filters: { data: [{ path: bad, type: 'string', value: ['x'] }] },
          }),
        'spec.dependencies[0].filters.data[0].path',
      ],
      [
        (s) =>
          Object.assign(s.spec.dependencies[0]!, {
            filters: { exprs: [{ expr: 'a == 1', fields: [{ name: 'a', path: bad }] }] },
          }),
        'spec.dependencies[0].filters.exprs[0].fields[0].path',
      ],
      [
        (s) => Object.assign(s.spec.dependencies[0]!, { orderingKey: bad }),
        'spec.dependencies[0].orderingKey',
      ],
      [
        (s) =>
          Object.assign(s.spec.triggers[0]!, {
            parameters: [{ src: { dependencyName: 'dep-a', dataKey: bad }, dest: 'x' }],
          }),
        'spec.triggers[0].parameters[0].src.dataKey',
      ],
    ];
    for (const [patch, path] of cases) {
      expect(problemsOf(sensorYaml(patch)).join('\n')).toContain(
        `${path}: invalid path ${JSON.stringify(bad)}: query at position 6 is not closed`,
      );
    }
    const good = sensorYaml((s) =>
      Object.assign(s.spec.dependencies[0]!, {
        filters: { data: [{ path: '[body.a,body.labels.#(name=="x").name]', type: 'string', value: ['x'] }] },
      }),
    );
    expect(problemsOf(good)).toEqual([]);
  });

  it('data filter values and expressions are compiled as the Sensor would (sluice lint)', () => {
    const lines: string[] = [];
    const yaml = sensorYaml((s) =>
      Object.assign(s.spec.dependencies[0]!, {
        filters: {
          data: [
            { path: 'a', type: 'string', value: ['a(b'] },
            { path: 'n', type: 'number', value: ['lots'] },
          ],
          exprs: [{ expr: 'a ==', fields: [{ name: 'a', path: 'x' }] }],
        },
      }),
    );
    const s = lint(
      ['-'],
      (l) => lines.push(l),
      () => yaml,
    );
    expect(s.problems).toBe(3);
    expect(lines[0]).toContain('spec.dependencies[0].filters.data[0]: invalid regular expression "a(b"');
    expect(lines[1]).toContain('spec.dependencies[0].filters.data[1]: value "lots" is not a number');
    expect(lines[2]).toContain('spec.dependencies[0].filters.exprs[0].expr: cannot parse');
  });

  it('streamConfig values of a bus', () => {
    const bus = validEventBus() as { spec: { jetstream: Record<string, unknown> } };
    bus.spec.jetstream.streamConfig = 'maxMsgs: lots\nmaxAge: 72h\n';
    expect(problemsOf(stringify(bus))).toEqual([
      'EventBus/default: spec.jetstream.streamConfig: streamConfig.maxMsgs: maxMsgs must be a whole number of events, or -1 for no limit',
    ]);
  });
});

describe('lint: what upstream accepts', () => {
  it('warns (exit 0) for types this build accepts but does not run, from the same sets as the controller', () => {
    const dir = new URL('../../../../shared/reference/argo-events/examples', import.meta.url).pathname;
    const lines: string[] = [];
    const lintOne = (file: string) => {
      lines.length = 0;
      return lint([join(dir, file)], (l) => lines.push(l));
    };
    // issue 20's types run now: no warning.
    for (const f of ['event-sources/kafka.yaml', 'event-sources/aws-sqs.yaml', 'event-sources/sftp.yaml']) {
      expect(lintOne(f).problems, f).toBe(0);
      expect(
        lines.filter((l) => l.includes('not run by this sluice build')),
        f,
      ).toEqual([]);
    }
    const pulsar = lintOne('event-sources/pulsar.yaml');
    expect(pulsar.problems).toBe(0);
    expect(lines.join('\n')).toMatch(
      /warning: source type pulsar: accepted but not run by this sluice build/,
    );
  });

  it('null for "not set" on optional fields; a trigger type given as null is that trigger', () => {
    const yaml = sensorYaml((s) => {
      Object.assign(s.spec, { eventBusName: null, template: null });
      Object.assign(s.spec.dependencies[0]!, { filters: null, transform: null });
      s.spec.triggers[0]!.template = { name: 'log-it', log: null } as never;
      Object.assign(s.spec.triggers[0]!, { rateLimit: null, retryStrategy: null, parameters: null });
    });
    const r = validateText(yaml);
    expect(r.problems).toEqual([]);
    const spec = (r.objects[0]!.value as { spec: Record<string, unknown> }).spec as {
      triggers: Array<Record<string, unknown>>;
    };
    expect(spec.triggers[0]).toEqual({ template: { name: 'log-it', log: {} } });
    expect('eventBusName' in spec).toBe(false);
    // A required field given as null is still an error, named as such.
    expect(
      problemsOf(sensorYaml((s) => Object.assign(s.spec.dependencies[0]!, { eventName: null }))),
    ).toContain('Sensor/sensor: spec.dependencies[0].eventName: expected string, got null');
    // A trigger type given as null still gets that type's checks.
    expect(
      problemsOf(sensorYaml((s) => (s.spec.triggers[0]!.template = { name: 't', http: null } as never))),
    ).toContain('Sensor/sensor: spec.triggers[0].template.http.url: url is required');
  });

  it('provider webhooks need no method; the plain webhook does', () => {
    const gh = stringify({
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'EventSource',
      metadata: { name: 'gh' },
      spec: {
        github: {
          e: { repositories: [{ owner: 'o', names: ['r'] }], webhook: { endpoint: '/gh', port: '12000' } },
        },
        sns: { s: { topicArn: 'arn', region: 'us-east-1', webhook: { endpoint: '/sns', port: '12000' } } },
      },
    });
    expect(problemsOf(gh)).toEqual([]);
    const es = validEventSource() as { spec: { webhook: { example: Record<string, unknown> } } };
    delete es.spec.webhook.example.method;
    expect(problemsOf(stringify(es))).toEqual([
      'EventSource/webhook: spec.webhook.example.method: required field is missing',
    ]);
  });

  it("legacy fields of upstream's stress test: k8s group/version/resource, EventSource replica", () => {
    const yaml = sensorYaml(
      (s) =>
        (s.spec.triggers[0]!.template = {
          name: 'wf',
          k8s: {
            group: 'argoproj.io',
            version: 'v1alpha1',
            resource: 'workflows',
            operation: 'create',
            source: { resource: { apiVersion: 'argoproj.io/v1alpha1', kind: 'Workflow' } },
          },
        } as never),
    );
    expect(problemsOf(yaml)).toEqual([]);
    const es = validEventSource() as { spec: Record<string, unknown> };
    delete es.spec.replicas;
    es.spec.replica = 2;
    expect(problemsOf(stringify(es))).toEqual([]);
  });

  it('reports discard: old as lossy and a bad streamConfig as a problem', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-lint-'));
    const bus = (streamConfig: string, name: string) => ({
      ...validEventBus(),
      metadata: { name },
      spec: { jetstream: { streamConfig } },
    });
    writeFileSync(
      join(dir, 'a.yaml'),
      [bus('maxMsgs: 50\ndiscard: old', 'lossy'), bus('maxMsgs: lots', 'bad'), bus('maxMsgs: 50', 'fine')]
        .map((m) => stringify(m))
        .join('---\n'),
    );
    const lines: string[] = [];
    const s = lint([dir], (l) => lines.push(l));
    // The bad streamConfig is reported once, by validation (so that object is not counted valid).
    expect(s).toEqual({ files: 1, objects: 2, problems: 1, warnings: 1, unreadable: 0 });
    expect(lines.join('\n')).toMatch(
      /EventBus\/lossy: warning: spec\.jetstream\.streamConfig: lossy: discard: old/,
    );
    expect(lines.join('\n')).toMatch(/EventBus\/bad: spec\.jetstream\.streamConfig: streamConfig\.maxMsgs/);
  });
});

describe('lint: input it must never crash on, and input that holds nothing', () => {
  const SENSOR_HEAD =
    'apiVersion: argoproj.io/v1alpha1\nkind: Sensor\nmetadata: {name: aliases}\nspec:\n  dependencies: [{name: d, eventSourceName: a, eventName: b}]\n  triggers:\n';

  it('many alias references are read as kubectl reads them; an alias bomb is one line, no stack trace', () => {
    // 150 references to one anchor: the yaml library's default limit (100) threw a ReferenceError.
    const refs = Array.from(
      { length: 50 },
      (_, i) =>
        `    - template: {name: t${i}, log: {}}\n      retryStrategy: ${i ? '*rs' : '&rs {steps: 3, duration: 1s}'}\n      rateLimit: ${i ? '*rl' : '&rl {unit: Second, requestsPerUnit: 1}'}\n      parameters: ${i ? '*ps' : '&ps []'}`,
    ).join('\n');
    const many = validateText(`${SENSOR_HEAD}${refs}\n`);
    expect(many.problems).toEqual([]);
    expect(many.objects).toHaveLength(1);

    const levels = Array.from(
      { length: 9 },
      (_, i) => `x${i + 1}: &a${i + 1} [${Array(10).fill(`*a${i}`).join(',')}]`,
    ).join('\n');
    const bomb = `apiVersion: argoproj.io/v1alpha1\nkind: Sensor\nmetadata: {name: bomb}\nx0: &a0 [lol,lol,lol]\n${levels}\n`;
    const r = validateText(bomb);
    expect(r.problems.map((p) => p.message)).toEqual([
      'YAML error: aliases expand to too much data (more than 10000 alias resolutions; a "billion laughs" document?)',
    ]);
    const res = spawnSync(bin, ['lint', '-'], { encoding: 'utf8', input: bomb });
    expect(res.status).toBe(1);
    expect(res.stderr).not.toMatch(/at |Error:/);
    expect(res.stdout.trim().split('\n')).toHaveLength(1);
  });

  it('a deeply nested document is a problem, not a RangeError', () => {
    const deep = `apiVersion: argoproj.io/v1alpha1\nkind: Sensor\nmetadata: {name: deep}\nx: ${'['.repeat(20_000)}${']'.repeat(20_000)}\n`;
    const r = validateText(deep);
    expect(r.problems.length).toBeGreaterThan(0);
    for (const p of r.problems) expect(p.message).not.toMatch(/Maximum call stack/);
  });

  it('merge keys (<<) are resolved as kubectl resolves them', () => {
    const text = `${SENSOR_HEAD}    - template: {name: t, log: {}}\n      retryStrategy:\n        <<: {steps: 3}\n        duration: 1s\n`;
    const r = validateText(text);
    expect(r.problems).toEqual([]);
    expect(
      (r.objects[0]!.value as { spec: { triggers: Array<{ retryStrategy: unknown }> } }).spec.triggers[0]!
        .retryStrategy,
    ).toMatchObject({ steps: 3 });
  });

  it('empty standard input, an empty file and a folder without manifests exit 1 with "no manifests found"', () => {
    const empty = spawnSync(bin, ['lint', '-'], { encoding: 'utf8', input: '' });
    expect(empty.status).toBe(1);
    expect(empty.stdout).toBe('<stdin>: no manifests found (empty input)\n');
    const dir = mkdtempSync(join(tmpdir(), 'sluice-lint-'));
    expect(lint([dir], () => {})).toMatchObject({ problems: 1 });
    writeFileSync(join(dir, 'only-comments.yaml'), '# nothing here\n---\n');
    const lines: string[] = [];
    expect(lint([dir], (l) => lines.push(l))).toMatchObject({ problems: 1 });
    expect(lines).toEqual([`${dir}: no manifests found (empty input)`]);
    // A folder with one real manifest beside an empty file is fine.
    writeFileSync(join(dir, 'sensor.yaml'), stringify(validSensor()));
    expect(lint([dir], () => {})).toMatchObject({ problems: 0, objects: 1 });
  });
});

describe('lint: what kubectl and the API server would refuse', () => {
  it('object names must be RFC 1123 subdomains of at most 63 characters; namespaces RFC 1123 labels', () => {
    const named = (name: string, namespace?: string) =>
      stringify({ ...validSensor(), metadata: { name, ...(namespace === undefined ? {} : { namespace }) } });
    expect(problemsOf(named('Bad_Name.x'))).toEqual([
      'Sensor/Bad_Name.x: metadata.name: "Bad_Name.x" is not a valid name: lowercase letters, digits, "-" and ".", starting and ending with a letter or digit (RFC 1123), as the API server requires',
    ]);
    expect(problemsOf(named('a'.repeat(64)))[0]).toMatch(
      /metadata.name: 64 characters is too long: at most 63/,
    );
    expect(problemsOf(named('a'.repeat(63)))).toEqual([]);
    expect(problemsOf(named('orders.v2-x'))).toEqual([]);
    expect(problemsOf(named('-x'))[0]).toMatch(/is not a valid name/);
    expect(problemsOf(named('ok', 'Bad NS'))).toEqual([
      'Sensor/ok: metadata.namespace: "Bad NS" is not a valid namespace: at most 63 lowercase letters, digits and "-", starting and ending with a letter or digit (RFC 1123 label)',
    ]);
    expect(problemsOf(named('ok', 'a.b'))[0]).toMatch(/not a valid namespace/);
    expect(problemsOf(named('ok', 'team-a'))).toEqual([]);
    const es = { ...validEventSource(), metadata: { name: 'hooks.v2' } } as Record<string, unknown>;
    expect(problemsOf(stringify(es))).toEqual([]);
    (es.spec as Record<string, unknown>).service = { ports: [{ port: 12000, targetPort: 12000 }] };
    expect(problemsOf(stringify(es))[0]).toMatch(
      /metadata.name: with spec.service the name must start with a letter and hold no "."/,
    );
  });

  it('kind: List items are linted one by one (kubectl applies them)', () => {
    const broken = validSensor() as Record<string, unknown>;
    (broken.spec as Record<string, unknown>).triggers = [{ template: { name: 't' } }];
    const list = stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: [validEventSource(), broken, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } }],
    });
    const r = validateText(list);
    expect(r.objects.map((o) => `${o.kind}/${o.name}`)).toEqual(['EventSource/webhook']);
    expect(r.skipped).toBe(1);
    expect(r.problems.map((p) => `${p.object}: ${p.path}: ${p.message}`)).toEqual([
      expect.stringMatching(
        /^items\[1\] Sensor\/sensor: spec.triggers\[0\].template: exactly one trigger type must be set/,
      ),
    ]);
    const typed = stringify({ apiVersion: 'argoproj.io/v1alpha1', kind: 'SensorList', items: [broken] });
    expect(validateText(typed).problems).toHaveLength(1);
  });

  it('warns about unquoted YAML 1.1 words (on, yes, no, y, n, off) and numbers where the CRD wants a string', () => {
    const text = [
      'apiVersion: argoproj.io/v1alpha1',
      'kind: Sensor',
      'metadata: {name: y11}',
      'spec:',
      '  dependencies:',
      '    - name: d',
      '      eventSourceName: w',
      '      eventName: on',
      '      filters:',
      '        data:',
      '          - {path: body.answer, type: string, value: [yes, n, "no", 1_000]}',
      '  triggers: [{template: {name: t, log: {}}}]',
      '',
    ].join('\n');
    const r = validateText(text);
    expect(r.problems).toEqual([]);
    expect(r.warnings.map((w) => `${w.path}: ${w.message}`)).toEqual([
      'spec.dependencies[0].eventName: kubectl reads the unquoted on as the boolean true (YAML 1.1) and the CRD wants a string here: quote it ("on")',
      'spec.dependencies[0].filters.data[0].value[0]: kubectl reads the unquoted yes as the boolean true (YAML 1.1) and the CRD wants a string here: quote it ("yes")',
      'spec.dependencies[0].filters.data[0].value[1]: kubectl reads the unquoted n as the boolean false (YAML 1.1) and the CRD wants a string here: quote it ("n")',
      'spec.dependencies[0].filters.data[0].value[3]: kubectl reads the unquoted 1_000 as the number 1000 (YAML 1.1) and the CRD wants a string here: quote it ("1_000")',
    ]);
    const lines: string[] = [];
    const s = lint(
      ['-'],
      (l) => lines.push(l),
      () => text,
    );
    expect(s).toMatchObject({ problems: 0, warnings: 4 });
    expect(lines[0]).toBe(
      '<stdin>: Sensor/y11: spec.dependencies[0].eventName: warning: kubectl reads the unquoted on as the boolean true (YAML 1.1) and the CRD wants a string here: quote it ("on")',
    );
    // Where the field takes a boolean anyway, or the word is quoted, nothing is said.
    expect(validateText(text.replace('eventName: on', 'eventName: "on"')).warnings).toHaveLength(3);
  });
});
