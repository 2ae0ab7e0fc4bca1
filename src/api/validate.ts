// Offline validation of manifests with the same zod schemas the controller uses. Pure: text in,
// problems out. Used by `sluice lint` and by `sluice dev` when it loads manifests.
import { LineCounter, parseAllDocuments } from 'yaml';
import type { z } from 'zod';
import { EventBus } from './eventbus.ts';
import { EventSource } from './eventsource.ts';
import { Sensor } from './sensor.ts';

export const API_VERSION = 'argoproj.io/v1alpha1';
export const SCHEMAS: Record<string, z.ZodType> = { EventBus, EventSource, Sensor };

export interface Problem {
  /** kind/name of the object, or "" when the document could not be read far enough. */
  object: string;
  /** Dotted path of the offending field, e.g. spec.triggers[0].template.http.url. */
  path: string;
  message: string;
  /** 1-based line of the document start (best effort). */
  line?: number;
}

export interface LoadedObject {
  kind: string;
  name: string;
  namespace?: string;
  /** The parsed object with schema-level transforms applied (defaults are applied elsewhere). */
  value: unknown;
  line: number;
}

export interface ValidationResult {
  objects: LoadedObject[];
  problems: Problem[];
  /** Documents of other kinds (ConfigMaps, Workflows, ...) that were skipped. */
  skipped: number;
}

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else {
      const s = String(seg);
      out += /^[A-Za-z_][A-Za-z0-9_-]*$/.test(s) ? (out ? `.${s}` : s) : `[${JSON.stringify(s)}]`;
    }
  }
  return out;
}

interface ZodDefLike {
  type: string;
  shape?: Record<string, ZodLike>;
  innerType?: ZodLike;
  in?: ZodLike;
  valueType?: ZodLike;
  element?: ZodLike;
}
interface ZodLike {
  _zod: { def: ZodDefLike };
}

/** Field names the schema allows at `path` (for "did you mean" hints). */
function knownKeysAt(schema: z.ZodType, path: ReadonlyArray<PropertyKey>): string[] {
  let node: ZodLike | undefined = schema as unknown as ZodLike;
  const unwrap = (n: ZodLike | undefined): ZodLike | undefined => {
    let cur = n;
    for (let i = 0; i < 20 && cur; i++) {
      const d: ZodDefLike = cur._zod.def;
      if (d.innerType) cur = d.innerType;
      else if (d.type === 'pipe' && d.in) cur = d.in;
      else break;
    }
    return cur;
  };
  for (const seg of path) {
    node = unwrap(node);
    if (!node) return [];
    const d: ZodDefLike = node._zod.def;
    if (d.type === 'object' && d.shape) node = d.shape[String(seg)];
    else if (d.type === 'record') node = d.valueType;
    else if (d.type === 'array') node = d.element;
    else return [];
  }
  node = unwrap(node);
  const d = node?._zod.def;
  return d?.type === 'object' && d.shape ? Object.keys(d.shape) : [];
}

function distance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]!;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j]!;
      dp[j] = Math.min(
        dp[j]! + 1,
        dp[j - 1]! + 1,
        prev + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1),
      );
      prev = tmp;
    }
  }
  return dp[b.length]!;
}

function suggest(key: string, known: string[]): string {
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const k of known) {
    const d = distance(key, k);
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best && bestD <= Math.max(2, Math.floor(key.length / 3)) ? ` (did you mean "${best}"?)` : '';
}

/** Turns zod issues into problems with one line per field. */
export function issuesToProblems(schema: z.ZodType, object: string, issues: z.core.$ZodIssue[]): Problem[] {
  const out: Problem[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeysAt(schema, issue.path);
      for (const key of issue.keys) {
        out.push({
          object,
          path: formatPath([...issue.path, key]),
          message: `unknown field${suggest(key, known)}`,
        });
      }
    } else if (issue.code === 'invalid_union' || issue.code === 'invalid_type') {
      const msg =
        issue.code === 'invalid_type' && issue.input === undefined
          ? 'required field is missing'
          : issue.message;
      out.push({ object, path: formatPath(issue.path), message: msg });
    } else {
      out.push({ object, path: formatPath(issue.path), message: issue.message });
    }
  }
  return out;
}

/** Validates one parsed object (a document's JSON). */
export function validateObject(doc: unknown): { problems: Problem[]; object?: LoadedObject; skip?: boolean } {
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) {
    return { problems: [{ object: '', path: '', message: 'document is not a YAML mapping' }] };
  }
  const d = doc as {
    apiVersion?: unknown;
    kind?: unknown;
    metadata?: { name?: unknown; namespace?: unknown };
  };
  const kind = typeof d.kind === 'string' ? d.kind : '';
  const schema = SCHEMAS[kind];
  if (d.apiVersion !== API_VERSION || !schema) return { problems: [], skip: true };
  const name = typeof d.metadata?.name === 'string' ? d.metadata.name : '';
  const label = `${kind}/${name || '<unnamed>'}`;
  const problems: Problem[] = [];
  if (!name) problems.push({ object: label, path: 'metadata.name', message: 'required field is missing' });
  const parsed = schema.safeParse(doc);
  if (!parsed.success) problems.push(...issuesToProblems(schema, label, parsed.error.issues));
  if (problems.length) return { problems };
  return {
    problems,
    object: {
      kind,
      name,
      namespace: typeof d.metadata?.namespace === 'string' ? d.metadata.namespace : undefined,
      value: parsed.data,
      line: 0,
    },
  };
}

/** Validates every document of a multi-document YAML text. */
export function validateText(text: string): ValidationResult {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter });
  const result: ValidationResult = { objects: [], problems: [], skipped: 0 };
  for (const doc of Array.isArray(docs) ? docs : [docs]) {
    const line = lineCounter.linePos(doc.range?.[0] ?? 0).line;
    if (doc.errors.length) {
      for (const err of doc.errors) {
        const at = err.linePos?.[0];
        result.problems.push({
          object: '',
          path: '',
          message: `YAML error${at ? ` at line ${at.line}, column ${at.col}` : ''}: ${err.message.split('\n')[0]}`,
          line: at?.line ?? line,
        });
      }
      continue;
    }
    const json: unknown = doc.toJSON();
    if (json === null || json === undefined) continue; // empty document (e.g. trailing ---)
    const r = validateObject(json);
    if (r.skip) {
      result.skipped++;
      continue;
    }
    for (const p of r.problems) result.problems.push({ ...p, line });
    if (r.object) result.objects.push({ ...r.object, line });
  }
  return result;
}
