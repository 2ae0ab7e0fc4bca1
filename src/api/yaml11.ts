// kubectl reads YAML 1.1 (sigs.k8s.io/yaml on go-yaml v2), where the unquoted words y, n, yes,
// no, on, off (any case variant go-yaml knows) are booleans and 0777, 0b101, 1_000 are numbers;
// sluice reads YAML 1.2, where they are strings. A manifest that relies on them being strings
// (`eventName: on`, `value: [yes, no]`) lints clean but `kubectl apply` sends a boolean the CRD
// refuses. These helpers find the scalars (and keys) the two readings disagree on, so lint can
// warn about the ones where the schema wants a string. Sexagesimal numbers (1:20) and
// timestamps are left out: go-yaml v2 keeps both as strings in JSON.
import type { z } from 'zod';
import { formatPath } from './format.ts';

/** A value the two YAML versions read differently. */
export interface Yaml11Difference {
  /** Path of the field (for a key: the path the key names). */
  path: Array<string | number>;
  /** The text as sluice (YAML 1.2) reads it. */
  text: string;
  /** The value kubectl (YAML 1.1) reads instead. */
  as: boolean | number | string;
  key: boolean;
}

const MAX_DEPTH = 200;

/** Scalars and keys that are strings in `v12` but booleans or numbers in `v11` (same document). */
export function yaml11Differences(v12: unknown, v11: unknown): Yaml11Difference[] {
  const out: Yaml11Difference[] = [];
  const walk = (a: unknown, b: unknown, path: Array<string | number>): void => {
    if (path.length > MAX_DEPTH || out.length >= 100) return;
    if (typeof a === 'string') {
      if ((typeof b === 'boolean' || typeof b === 'number') && !a.includes(':'))
        out.push({ path, text: a, as: b, key: false });
      return;
    }
    if (Array.isArray(a)) {
      if (!Array.isArray(b) || a.length !== b.length) return;
      for (let i = 0; i < a.length; i++) walk(a[i], b[i], [...path, i]);
      return;
    }
    if (a === null || typeof a !== 'object' || b === null || typeof b !== 'object' || Array.isArray(b))
      return;
    const ea = Object.entries(a);
    const eb = Object.entries(b);
    if (ea.length !== eb.length) return;
    ea.forEach(([k, val], i) => {
      const [k11, val11] = eb[i]!;
      if (k11 !== k && (k11 === 'true' || k11 === 'false' || /^[-+0-9.]/.test(k11)))
        out.push({ path: [...path, k], text: k, as: k11, key: true });
      else walk(val, val11, [...path, k]);
    });
  };
  walk(v12, v11, []);
  return out;
}

/**
 * The differences that matter: those where `schema` refuses the YAML 1.1 reading at that field,
 * as warnings naming the field.
 */
export function yaml11Warnings(
  schema: z.ZodType,
  v12: unknown,
  v11: unknown,
): Array<{ path: string; message: string }> {
  const diffs = yaml11Differences(v12, v11);
  if (!diffs.length) return [];
  const r = schema.safeParse(v11);
  if (r.success) return [];
  const refused = new Set<string>();
  for (const issue of r.error.issues) {
    refused.add(formatPath(issue.path));
    if (issue.code === 'unrecognized_keys')
      for (const k of issue.keys) refused.add(formatPath([...issue.path, k]));
  }
  const out: Array<{ path: string; message: string }> = [];
  for (const d of diffs) {
    const path = formatPath(d.path);
    if (!refused.has(path)) continue;
    out.push({
      path,
      message: d.key
        ? `kubectl reads the unquoted key ${d.text} as ${JSON.stringify(d.as)} (YAML 1.1), so the field is not found: quote it ("${d.text}")`
        : `kubectl reads the unquoted ${d.text} as the ${typeof d.as} ${d.as} (YAML 1.1) and the CRD wants a string here: quote it ("${d.text}")`,
    });
  }
  return out;
}
