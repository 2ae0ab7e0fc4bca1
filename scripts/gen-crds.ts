// `make crds`: writes crds/*.yaml from the zod schemas in src/api.
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateCrds } from '../src/api/crds.ts';

const dir = new URL('../crds/', import.meta.url).pathname;
mkdirSync(dir, { recursive: true });
const crds = generateCrds();
const keep = new Set(crds.map((c) => c.file));
for (const f of readdirSync(dir)) if (f.endsWith('.yaml') && !keep.has(f)) rmSync(join(dir, f));
for (const crd of crds) {
  writeFileSync(join(dir, crd.file), crd.yaml);
  console.log(`wrote crds/${crd.file} (${Math.round(crd.yaml.length / 1024)} KiB)`);
}
