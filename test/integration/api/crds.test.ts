// The generated CRDs on the real API server: every upstream example applies unchanged
// (`kubectl apply --dry-run=server`, strict field validation), every invalid case is rejected
// naming the field, and `kubectl explain` shows our descriptions.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { generateCrds } from '../../../src/api/crds.ts';
import { INVALID_CASES } from '../../fixtures/manifests.ts';
import { installCrds } from '../../harness/crds.ts';
import { run } from '../../harness/run.ts';
import { kubeConfig, kubeconfigPath, kubeMissing, skipNote, uniqueName } from '../../harness/shared.ts';
import { findTool } from '../../harness/tools.ts';

const examplesDir = new URL('../../../../shared/reference/argo-events/examples', import.meta.url).pathname;
const kubectl = findTool('kubectl');
const missing = kubeMissing() ?? kubectl.missing ?? null;
const KINDS = new Set(['EventBus', 'EventSource', 'Sensor']);

function exampleFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir).sort()) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...exampleFiles(p));
    else if (/\.ya?ml$/.test(e)) out.push(p);
  }
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

describe.skipIf(missing)(`CRDs on the API server${skipNote(missing)}`, () => {
  const ns = uniqueName('crds');
  const kcArgs = () => ['--kubeconfig', kubeconfigPath()!, '-n', ns];
  const dryRun = (yaml: string) =>
    run(kubectl.path!, [...kcArgs(), 'apply', '--dry-run=server', '-f', '-'], { input: yaml });

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

  describe.skipIf(!existsSync(examplesDir))('upstream examples', () => {
    it('every EventBus/EventSource/Sensor example is accepted by kubectl apply --dry-run=server', async () => {
      const docs: Array<{ file: string; yaml: string }> = [];
      for (const file of exampleFiles(examplesDir)) {
        for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
          const json = doc.toJSON() as { kind?: string; metadata?: { namespace?: string } } | null;
          if (!json || !KINDS.has(json.kind ?? '')) continue;
          // Some examples pin a namespace; apply them into this test's namespace instead.
          if (json.metadata) delete json.metadata.namespace;
          docs.push({ file, yaml: stringify(json) });
        }
      }
      expect(docs.length).toBeGreaterThan(100);
      const results = await pool(docs, 4, async (d) => ({ ...d, res: await dryRun(d.yaml) }));
      const failed = results
        .filter((r) => r.res.code !== 0)
        .map((r) => `${r.file.slice(examplesDir.length + 1)}: ${r.res.stderr.trim()}`);
      expect(failed.join('\n')).toBe('');
    });
  });

  it(`rejects the ${INVALID_CASES.length} invalid manifests naming the field (except those it cannot tell, each with its reason)`, async () => {
    const results = await pool(INVALID_CASES, 4, async (c) => ({
      c,
      res: await dryRun(stringify(c.manifest)),
    }));
    const wrong = results
      .filter(({ c, res }) =>
        c.apiAccepts ? res.code !== 0 : res.code === 0 || !res.stderr.includes(c.apiMentions),
      )
      .map(
        ({ c, res }) =>
          `${c.name}: exit ${res.code}, expected mention of "${c.apiMentions}": ${res.stderr.trim() || res.stdout.trim()}`,
      );
    expect(wrong.join('\n')).toBe('');
  });

  it('kubectl explain sensor.spec.triggers.template.http prints our descriptions', async () => {
    const res = await run(kubectl.path!, [
      '--kubeconfig',
      kubeconfigPath()!,
      'explain',
      'sensor.spec.triggers.template.http',
    ]);
    expect(res.code).toBe(0);
    const sensorCrd = generateCrds().find((g) => g.file.includes('sensors'))!.object as {
      spec: { versions: Array<{ schema: { openAPIV3Schema: Record<string, unknown> } }> };
    };
    type Node = { description?: string; properties?: Record<string, Node>; items?: Node };
    let node = sensorCrd.spec.versions[0]!.schema.openAPIV3Schema as Node;
    for (const seg of ['spec', 'triggers', 'template', 'http']) {
      node = node.properties![seg]!;
      if (node.items) node = node.items;
    }
    const flat = (s: string) => s.replace(/\s+/g, ' ').trim();
    expect(node.description).toBeTruthy();
    expect(flat(res.stdout)).toContain(flat(node.description!));
    const url = node.properties?.url?.description;
    expect(url).toBeTruthy();
    expect(flat(res.stdout)).toContain(flat(url!));
  });
});
