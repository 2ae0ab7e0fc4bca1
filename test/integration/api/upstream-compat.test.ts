// Every manifest of upstream's documentation, end-to-end tests and stress tests
// (../shared/reference/argo-events/{docs-manifests,e2e-testdata,stress-testdata}, read in place)
// goes through `sluice lint` and through the real API server (server-side apply, dry run, strict
// field validation, with the generated CRDs). Each is accepted by both, or rejected for a reason
// stated below. Plus what upstream's Go types accept that a strict schema could refuse: null for
// "not set" on optional fields.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { lint } from '../../../src/cli/lint.ts';
import { installCrds } from '../../harness/crds.ts';
import { run } from '../../harness/run.ts';
import { kubeConfig, kubeconfigPath, kubeMissing, skipNote, uniqueName } from '../../harness/shared.ts';
import { findTool } from '../../harness/tools.ts';

const corpus = new URL('../../../../shared/reference/argo-events/', import.meta.url).pathname;
const FOLDERS = ['docs-manifests', 'e2e-testdata', 'stress-testdata'];
const kubectl = findTool('kubectl');
const missing = kubeMissing() ?? kubectl.missing ?? (existsSync(corpus) ? null : `${corpus} absent`);

/** Why a sluice rejection of an upstream manifest is right. `api` undefined: the API server accepts it. */
interface Rejection {
  reason: string;
  /** Text `sluice lint` must print. */
  lint: string;
  /** Text the API server's (or kubectl's) refusal must contain; undefined when it accepts. */
  api?: string;
}

const NO_TRIGGERS: Rejection = {
  reason:
    'a documentation fragment: a Sensor without triggers, which upstream rejects too ("no triggers found")',
  lint: 'spec.triggers: required field is missing',
  api: 'spec.triggers: Required value',
};

const REJECTED: Record<string, Rejection> = {
  'docs-manifests/eventbus/kafka__0-0.yaml': {
    reason: 'the snippet has no apiVersion, so it is not a manifest any Kubernetes client can send',
    lint: 'apiVersion missing',
    api: 'apiVersion',
  },
  'docs-manifests/eventsources/setup/alibabacloud-mns__0-0.yaml': {
    reason:
      "the snippet omits `queue`, which upstream's own schema requires, and sets `waitTimeSeconds`, an SQS field MNS does not have",
    lint: 'spec.mns.example.queue: required field is missing',
    api: 'waitTimeSeconds: field not declared in schema',
  },
  'docs-manifests/sensors/filters/ctx__1-0.yaml': NO_TRIGGERS,
  'docs-manifests/sensors/filters/data__1-0.yaml': NO_TRIGGERS,
  'docs-manifests/sensors/filters/expr__1-0.yaml': NO_TRIGGERS,
  'docs-manifests/sensors/filters/intro__0-0.yaml': NO_TRIGGERS,
  'docs-manifests/sensors/filters/time__1-0.yaml': NO_TRIGGERS,
  'docs-manifests/sensors/filters/time__2-0.yaml': NO_TRIGGERS,
  'docs-manifests/sensors/transform__2-0.yaml': {
    reason:
      '`conditions: "test-dep-foo"` names a dependency the Sensor does not have, so the trigger could never fire; ' +
      'the API server cannot compare names across fields (no CEL rule: too costly for the CRD budget), ' +
      'lint and the controller (Ready=False, InvalidSpec) refuse it',
    lint: 'refers to unknown dependencies: test-dep-foo',
  },
};

function manifests(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir).sort()) {
      const p = join(dir, e);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.ya?ml$/.test(e)) out.push(p);
    }
  };
  for (const f of FOLDERS) walk(join(corpus, f));
  return out;
}

/** Runs `fn` over `items` with at most `n` at a time. */
async function pool<T, R>(items: T[], n: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

describe.skipIf(missing)(`upstream docs, e2e and stress manifests${skipNote(missing)}`, () => {
  const ns = uniqueName('compat');
  const apply = (yaml: string) =>
    run(
      kubectl.path!,
      [
        '--kubeconfig',
        kubeconfigPath()!,
        '-n',
        ns,
        'apply',
        '--server-side',
        '--dry-run=server',
        '--field-manager',
        'compat-test',
        '--validate=strict',
        '-f',
        '-',
      ],
      { input: yaml },
    );
  /** The file's documents with any pinned namespace removed (so they land in the test namespace). */
  const unpinned = (file: string) =>
    parseAllDocuments(readFileSync(file, 'utf8'))
      .map((d) => d.toJSON() as { metadata?: { namespace?: string } } | null)
      .filter((d) => d !== null)
      .map((d) => {
        if (d.metadata) delete d.metadata.namespace;
        return stringify(d);
      })
      .join('---\n');

  beforeAll(async () => {
    const kc = kubeConfig();
    await installCrds(kubeconfigPath()!, kc);
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: ns } } });
  });
  afterAll(async () => {
    await kubeConfig()
      .makeApiClient(CoreV1Api)
      .deleteNamespace({ name: ns })
      .catch(() => undefined);
  });

  it('every manifest is accepted by lint and the API server, or rejected for its stated reason', async () => {
    const files = manifests();
    expect(files.length).toBeGreaterThanOrEqual(67);
    const results = await pool(files, 4, async (file) => {
      const lines: string[] = [];
      const summary = lint([file], (l) => lines.push(l));
      const api = await apply(unpinned(file));
      return { file: relative(corpus, file), lintOk: summary.problems === 0, lines, api };
    });
    const wrong: string[] = [];
    for (const r of results) {
      const expected = REJECTED[r.file];
      const apiText = `${r.api.stderr}${r.api.stdout}`.trim();
      if (!expected) {
        if (!r.lintOk) wrong.push(`${r.file}: lint rejects: ${r.lines.join(' | ')}`);
        if (r.api.code !== 0) wrong.push(`${r.file}: API server rejects: ${apiText}`);
        continue;
      }
      if (r.lintOk || !r.lines.some((l) => l.includes(expected.lint)))
        wrong.push(
          `${r.file}: lint should say "${expected.lint}" (${expected.reason}), said: ${r.lines.join(' | ')}`,
        );
      if (expected.api === undefined && r.api.code !== 0)
        wrong.push(`${r.file}: API server should accept (${expected.reason}), said: ${apiText}`);
      if (expected.api !== undefined && (r.api.code === 0 || !apiText.includes(expected.api)))
        wrong.push(
          `${r.file}: API server should refuse with "${expected.api}" (${expected.reason}), said: ${apiText}`,
        );
    }
    const rejected = results.filter((r) => REJECTED[r.file]).length;
    console.log(
      `upstream manifests: ${results.length} files, ${results.length - rejected} accepted, ${rejected} rejected for stated reasons`,
    );
    expect(Object.keys(REJECTED).filter((f) => !results.some((r) => r.file === f))).toEqual([]);
    expect(wrong).toEqual([]);
  });

  it('null for "not set" is accepted where upstream\'s Go types accept it, and log: ~ is a log trigger', async () => {
    const sensor = `apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {name: nulls}
spec:
  eventBusName: ~
  template: ~
  dependencies:
    - name: ev
      eventSourceName: gh
      eventName: events
      filters: ~
      transform: ~
      orderingKey: ~
  triggers:
    - template:
        name: log-it
        conditions: ~
        conditionsReset: ~
        log: ~
      retryStrategy: {duration: ~, steps: ~}
      rateLimit: ~
      parameters: ~
      policy: ~
`;
    const source = `apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata: {name: nulls}
spec:
  template: ~
  service: ~
  github:
    gh:
      repositories: [{owner: o, names: [r]}]
      webhook: {endpoint: /gh, port: "12000", url: ~, metadata: ~}
      events: ~
      filter: ~
`;
    for (const yaml of [sensor, source]) {
      const res = await apply(yaml);
      expect(`${res.stderr}${res.stdout}`, yaml).toContain('serverside-applied');
      const lines: string[] = [];
      const s = lint(
        ['-'],
        (l) => lines.push(l),
        () => yaml,
      );
      expect(lines).toEqual([]);
      expect(s.objects).toBe(1);
    }
  });
});
