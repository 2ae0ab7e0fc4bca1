// Every upstream example manifest passes `sluice lint` (the compatibility contract).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateText } from '../../../src/api/validate.ts';

const examplesDir = new URL('../../../../shared/reference/argo-events/examples', import.meta.url).pathname;

function files(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((e) => {
      const p = join(dir, e);
      return statSync(p).isDirectory() ? files(p) : /\.ya?ml$/.test(e) ? [p] : [];
    });
}

describe.skipIf(!existsSync(examplesDir))('upstream examples under sluice lint', () => {
  it('accepts every EventBus, EventSource and Sensor example unchanged', () => {
    const problems: string[] = [];
    let objects = 0;
    const kinds = new Map<string, number>();
    for (const file of files(examplesDir)) {
      const r = validateText(readFileSync(file, 'utf8'));
      objects += r.objects.length;
      for (const o of r.objects) kinds.set(o.kind, (kinds.get(o.kind) ?? 0) + 1);
      for (const p of r.problems)
        problems.push(`${file.slice(examplesDir.length + 1)}: ${p.object}: ${p.path}: ${p.message}`);
    }
    expect(problems.join('\n')).toBe('');
    expect(objects).toBeGreaterThan(100);
    expect([...kinds.keys()].sort()).toEqual(['EventBus', 'EventSource', 'Sensor']);
  });
});
