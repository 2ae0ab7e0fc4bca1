// Offline validation of manifests with the same zod schemas the controller uses. Pure: text in,
// problems out. Used by `sluice lint` and by `sluice dev` when it loads manifests.
import { LineCounter, parseAllDocuments } from 'yaml';
import type { z } from 'zod';
import { EventBus } from './eventbus.ts';
import { EventSource } from './eventsource.ts';
import { Sensor } from './sensor.ts';
import { parseStreamConfig } from './stream-config.ts';

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

/** A value's type in the words of the messages: string, number, boolean, null, list, object. */
function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'list';
  return typeof v;
}

/** " 12000" / " \"yes\"" after the type name, for short scalars. */
function shortValue(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'boolean') return ` ${v}`;
  if (typeof v === 'string' && v.length <= 40) return ` ${JSON.stringify(v)}`;
  return '';
}

const EXPECTED: Record<string, string> = { array: 'list', record: 'object', int: 'integer', nan: 'number' };
const expectedName = (e: string) => EXPECTED[e] ?? e;

/** The types a union accepts, from its branches' type errors ("number or string"). */
function unionTypes(issue: z.core.$ZodIssueInvalidUnion): string | undefined {
  const types = new Set<string>();
  for (const branch of issue.errors) {
    const first = branch[0];
    if (first?.code !== 'invalid_type' || first.path.length) return undefined;
    types.add(expectedName(first.expected));
  }
  return types.size ? [...types].join(' or ') : undefined;
}

/** One issue as a message that names what was expected and what was given. */
function issueMessage(issue: z.core.$ZodIssue): string {
  const input = (issue as { input?: unknown }).input;
  switch (issue.code) {
    case 'invalid_type':
      if (input === undefined) return 'required field is missing';
      return `expected ${expectedName(issue.expected)}, got ${typeName(input)}${shortValue(input)}`;
    case 'invalid_union': {
      const types = unionTypes(issue);
      if (input === undefined) return 'required field is missing';
      return types ? `expected ${types}, got ${typeName(input)}` : issue.message;
    }
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${JSON.stringify(input)}`;
    default:
      return issue.message;
  }
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
    } else {
      out.push({ object, path: formatPath(issue.path), message: issueMessage(issue) });
    }
  }
  return out;
}

/** Kinds of other Argo projects in the argoproj.io group: valid, not sluice's, skipped. */
const OTHER_ARGO_KINDS = new Set([
  'Workflow',
  'WorkflowTemplate',
  'ClusterWorkflowTemplate',
  'CronWorkflow',
  'WorkflowEventBinding',
  'WorkflowTaskSet',
  'WorkflowTaskResult',
  'WorkflowArtifactGCTask',
  'Rollout',
  'AnalysisTemplate',
  'ClusterAnalysisTemplate',
  'AnalysisRun',
  'Experiment',
  'Application',
  'ApplicationSet',
  'AppProject',
]);

/**
 * Whether a document is one of ours, another kind to skip, or a mistake: a document without
 * apiVersion or kind, an EventBus/EventSource/Sensor under another apiVersion, or an unknown
 * kind in the argoproj.io group.
 */
function classify(d: { apiVersion?: unknown; kind?: unknown }, label: string): Problem | 'ours' | 'skip' {
  const kind = typeof d.kind === 'string' ? d.kind : '';
  const apiVersion = typeof d.apiVersion === 'string' ? d.apiVersion : '';
  if (!apiVersion || !kind) {
    const missing = [!apiVersion && 'apiVersion', !kind && 'kind'].filter(Boolean).join(' and ');
    return { object: label, path: '', message: `${missing} missing: not a Kubernetes manifest` };
  }
  const ours = Object.hasOwn(SCHEMAS, kind);
  if (apiVersion === API_VERSION) {
    if (ours) return 'ours';
    if (OTHER_ARGO_KINDS.has(kind)) return 'skip';
    return {
      object: label,
      path: 'kind',
      message: `unknown kind "${kind}" in ${API_VERSION}${suggest(kind, Object.keys(SCHEMAS))} (sluice serves ${Object.keys(SCHEMAS).join(', ')})`,
    };
  }
  const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '';
  if (ours || group === 'argoproj.io') {
    if (!ours && OTHER_ARGO_KINDS.has(kind)) return 'skip';
    return {
      object: label,
      path: 'apiVersion',
      message: `unknown apiVersion "${apiVersion}" for ${kind}: sluice serves ${API_VERSION}`,
    };
  }
  return 'skip';
}

/** The bus's streamConfig text checked as the controller reads it (a YAML mapping of settings). */
function streamConfigProblems(bus: unknown, label: string): Problem[] {
  const spec = (bus as { spec?: Record<string, { streamConfig?: string } | undefined> }).spec ?? {};
  const out: Problem[] = [];
  for (const type of ['jetstream', 'jetstreamExotic']) {
    const text = spec[type]?.streamConfig;
    if (text === undefined) continue;
    const r = parseStreamConfig(text);
    if (!r.ok)
      for (const e of r.errors) out.push({ object: label, path: `spec.${type}.streamConfig`, message: e });
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
  const name = typeof d.metadata?.name === 'string' ? d.metadata.name : '';
  const label = `${kind || '<no kind>'}/${name || '<unnamed>'}`;
  const which = classify(d, label);
  if (which === 'skip') return { problems: [], skip: true };
  if (which !== 'ours') return { problems: [which] };
  const schema = SCHEMAS[kind]!;
  const problems: Problem[] = [];
  if (!name) problems.push({ object: label, path: 'metadata.name', message: 'required field is missing' });
  const parsed = schema.safeParse(doc, { reportInput: true });
  if (!parsed.success) problems.push(...issuesToProblems(schema, label, parsed.error.issues));
  else if (kind === 'EventBus') problems.push(...streamConfigProblems(parsed.data, label));
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
