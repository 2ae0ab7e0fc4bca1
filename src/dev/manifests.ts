// Reads the manifests `sluice dev` runs: EventBus, EventSource and Sensor objects (validated with
// the same schemas as `sluice lint` and the CRDs), plus Secrets and ConfigMaps so credentials can
// live next to the manifests on a laptop. Invalid objects are reported and left out; the rest run.
// "-" stands for standard input, read by the caller beforehand (cli/stdin.ts) and passed in.
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { validateText } from '../api/validate.ts';
import { fileErrorText } from '../cli/errors.ts';
import { collect } from '../cli/lint.ts';
import { STDIN, STDIN_NAME } from '../cli/stdin.ts';

export interface DevObject {
  kind: 'EventBus' | 'EventSource' | 'Sensor';
  name: string;
  namespace: string;
  spec: Record<string, unknown>;
  file: string;
  /** Stable text of the spec, to tell whether a reload changed it. */
  fingerprint: string;
}

export interface DevManifests {
  objects: DevObject[];
  /** "namespace/name" → key → value */
  secrets: Map<string, Record<string, string>>;
  configMaps: Map<string, Record<string, string>>;
  problems: string[];
  files: string[];
}

/**
 * Reads the manifests under `paths` (files, folders walked as `sluice lint` walks them, "-" for
 * `stdin`, the text of standard input). Never throws: what cannot be read or is not valid is
 * listed in `problems`.
 */
export function loadManifests(paths: string[], defaultNamespace = 'default', stdin?: string): DevManifests {
  const out: DevManifests = {
    objects: [],
    secrets: new Map(),
    configMaps: new Map(),
    problems: [],
    files: [],
  };
  for (const p of paths) {
    try {
      collect(p, out.files);
    } catch (err) {
      out.problems.push(`${(err as NodeJS.ErrnoException).path ?? p}: cannot read: ${fileErrorText(err)}`);
    }
  }
  for (const path of out.files) {
    const file = path === STDIN ? STDIN_NAME : path;
    let text: string;
    try {
      if (path === STDIN && stdin === undefined) throw new Error('standard input was not read');
      text = path === STDIN ? (stdin ?? '') : readFileSync(path, 'utf8');
    } catch (err) {
      out.problems.push(`${file}: cannot read: ${fileErrorText(err)}`);
      continue;
    }
    const r = validateText(text);
    for (const p of r.problems)
      out.problems.push(`${file}: ${[p.object, p.path, p.message].filter(Boolean).join(': ')}`);
    for (const o of r.objects) {
      const value = o.value as { spec?: Record<string, unknown> };
      const spec = value.spec ?? {};
      out.objects.push({
        kind: o.kind as DevObject['kind'],
        name: o.name,
        namespace: o.namespace ?? defaultNamespace,
        spec,
        file,
        fingerprint: JSON.stringify(spec),
      });
    }
    // Secrets and ConfigMaps (skipped by the validator).
    for (const doc of parseAllDocuments(text)) {
      if (doc.errors.length) continue;
      const d = doc.toJS() as {
        apiVersion?: string;
        kind?: string;
        metadata?: { name?: string; namespace?: string };
        data?: Record<string, string>;
        stringData?: Record<string, string>;
      } | null;
      if (d?.apiVersion !== 'v1' || !d.metadata?.name) continue;
      const key = `${d.metadata.namespace ?? defaultNamespace}/${d.metadata.name}`;
      if (d.kind === 'Secret') {
        const values: Record<string, string> = {};
        for (const [k, v] of Object.entries(d.data ?? {}))
          values[k] = Buffer.from(String(v), 'base64').toString('utf8');
        Object.assign(values, d.stringData ?? {});
        out.secrets.set(key, values);
      } else if (d.kind === 'ConfigMap') {
        out.configMaps.set(key, { ...(d.data ?? {}) });
      }
    }
  }
  const seen = new Map<string, string>();
  for (const o of out.objects) {
    const id = `${o.kind}/${o.namespace}/${o.name}`;
    const first = seen.get(id);
    if (first)
      out.problems.push(`${o.file}: ${o.kind}/${o.name}: also defined in ${first}; the last one wins`);
    seen.set(id, o.file);
  }
  return out;
}
