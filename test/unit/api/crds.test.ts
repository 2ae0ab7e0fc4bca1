import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { generateCrds } from '../../../src/api/crds.ts';

const crdDir = new URL('../../../crds/', import.meta.url);

describe('generated CRDs', () => {
  const generated = generateCrds();

  it('are up to date with the schemas (run `make crds` when this fails)', () => {
    const onDisk = readdirSync(crdDir)
      .filter((f) => f.endsWith('.yaml'))
      .sort();
    expect(onDisk).toEqual(generated.map((g) => g.file).sort());
    for (const g of generated) {
      expect(readFileSync(new URL(g.file, crdDir), 'utf8'), `crds/${g.file} is stale`).toBe(g.yaml);
    }
  });

  it('are structural: every node typed, no unions, no additionalProperties next to properties', () => {
    const problems: string[] = [];
    const walk = (node: Record<string, unknown>, path: string) => {
      const free = node['x-kubernetes-preserve-unknown-fields'] || node['x-kubernetes-int-or-string'];
      if (!node.type && !free) problems.push(`${path}: no type`);
      for (const k of ['anyOf', 'oneOf', 'allOf', '$ref', 'default'])
        if (k in node) problems.push(`${path}: has ${k}`);
      if (node.properties && node.additionalProperties)
        problems.push(`${path}: properties + additionalProperties`);
      for (const [k, v] of Object.entries(
        (node.properties ?? {}) as Record<string, Record<string, unknown>>,
      )) {
        if (!v.description && k !== 'metadata') problems.push(`${path}.${k}: no description`);
        walk(v, `${path}.${k}`);
      }
      if (node.items) walk(node.items as Record<string, unknown>, `${path}[]`);
      if (node.additionalProperties && typeof node.additionalProperties === 'object') {
        walk(node.additionalProperties as Record<string, unknown>, `${path}.*`);
      }
    };
    for (const g of generated) {
      const version = (
        g.object.spec as { versions: Array<{ schema: { openAPIV3Schema: Record<string, unknown> } }> }
      ).versions[0]!;
      walk(version.schema.openAPIV3Schema, g.file);
    }
    expect(problems).toEqual([]);
  });
});
