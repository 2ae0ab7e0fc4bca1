// Every upstream EventSource example parses with the EventSource schema, unchanged.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { EventSource } from '../../../src/api/eventsource/index.ts';

const examplesDir = new URL('../../../../shared/reference/argo-events/examples', import.meta.url).pathname;

function yamlFiles(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((entry) => {
      const p = join(dir, entry);
      return statSync(p).isDirectory() ? yamlFiles(p) : /\.ya?ml$/.test(entry) ? [p] : [];
    });
}

function eventSourceDocs(): Array<{ where: string; doc: unknown }> {
  const out: Array<{ where: string; doc: unknown }> = [];
  for (const file of yamlFiles(examplesDir)) {
    parseAllDocuments(readFileSync(file, 'utf8')).forEach((d, i) => {
      const doc = d.toJS() as { kind?: unknown } | null;
      if (doc?.kind === 'EventSource') out.push({ where: `${file.slice(examplesDir.length + 1)}#${i}`, doc });
    });
  }
  return out;
}

describe.skipIf(!existsSync(examplesDir))('upstream EventSource examples', () => {
  const docs = eventSourceDocs();

  it('finds the examples, tutorials included', () => {
    expect(docs.length).toBeGreaterThanOrEqual(34);
    expect(docs.some((d) => d.where.startsWith('tutorials/'))).toBe(true);
  });

  it('every one parses unchanged', () => {
    const failures: string[] = [];
    for (const { where, doc } of docs) {
      const r = EventSource.safeParse(doc);
      if (!r.success) {
        for (const issue of r.error.issues)
          failures.push(`${where}: ${issue.path.join('.')}: ${issue.message}`);
      }
    }
    expect(failures.join('\n')).toBe('');
  });
});
