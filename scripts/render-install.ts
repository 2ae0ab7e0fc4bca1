// `make install-yaml`: copies crds/*.yaml into config/crd/bases and charts/sluice/files/crds, the
// alerting rules and dashboard into the chart and config/prometheus/prometheusrule.yaml, and
// renders config/install.yaml from config/default (see scripts/install-manifests.ts).
// Run after `make crds` or after editing anything under config/.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { GENERATED_DIRS, generatedFiles, ROOT } from './install-manifests.ts';

const files = generatedFiles();
for (const dir of GENERATED_DIRS) {
  mkdirSync(join(ROOT, dir), { recursive: true });
  for (const f of readdirSync(join(ROOT, dir))) {
    if (f.endsWith('.yaml') && !files.has(`${dir}/${f}`)) {
      rmSync(join(ROOT, dir, f));
      console.log(`removed ${dir}/${f}`);
    }
  }
}
for (const [path, content] of files) {
  const abs = join(ROOT, path);
  let old: string | undefined;
  try {
    old = readFileSync(abs, 'utf8');
  } catch {}
  if (old === content) continue;
  mkdirSync(dirname(abs), { recursive: true });
  writeFileSync(abs, content);
  console.log(`wrote ${path} (${Math.round(content.length / 1024)} KiB)`);
}
