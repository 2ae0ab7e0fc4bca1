// Offline validation of manifests with the same zod schemas the controller uses. Pure: text in,
// problems out. Used by `sluice lint` and by `sluice dev` when it loads manifests.
import { type Document, LineCounter, parseAllDocuments } from 'yaml';
import type { z } from 'zod';
import { EventBus } from './eventbus.ts';
import { EventSource } from './eventsource.ts';
import { formatPath } from './format.ts';
import { checkNamespace, checkObjectName } from './names.ts';
import { Sensor } from './sensor.ts';
import { parseStreamConfig } from './stream-config.ts';
import { yaml11Warnings } from './yaml11.ts';

export { formatPath };

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
  /** Findings that do not fail the lint (e.g. a YAML 1.1 scalar kubectl reads as a boolean). */
  warnings: Problem[];
  /** Documents of other kinds (ConfigMaps, Workflows, ...) that were skipped. */
  skipped: number;
  /** Non-empty documents read (ours, skipped and unreadable ones). */
  documents: number;
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

/** Problems with metadata.name / namespace that the API server or the controller would refuse. */
function metadataProblems(
  kind: string,
  name: string,
  namespace: unknown,
  spec: unknown,
  label: string,
): Problem[] {
  const out: Problem[] = [];
  const bad = (path: string, message: string | undefined) => {
    if (message) out.push({ object: label, path, message });
  };
  if (!name) bad('metadata.name', 'required field is missing');
  else bad('metadata.name', checkObjectName(name));
  if (typeof namespace === 'string') bad('metadata.namespace', checkNamespace(namespace));
  else if (namespace !== undefined && namespace !== null) bad('metadata.namespace', 'expected string');
  const service = (spec as { service?: unknown } | undefined)?.service;
  if (kind === 'EventSource' && service && name && !out.length && !/^[a-z][-a-z0-9]*$/.test(name))
    bad(
      'metadata.name',
      `with spec.service the name must start with a letter and hold no "." (the Service "${name}-eventsource-svc" is named after it, and Service names are RFC 1035 labels)`,
    );
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
    spec?: unknown;
  };
  const kind = typeof d.kind === 'string' ? d.kind : '';
  const name = typeof d.metadata?.name === 'string' ? d.metadata.name : '';
  const label = `${kind || '<no kind>'}/${name || '<unnamed>'}`;
  const which = classify(d, label);
  if (which === 'skip') return { problems: [], skip: true };
  if (which !== 'ours') return { problems: [which] };
  const schema = SCHEMAS[kind]!;
  const problems = metadataProblems(kind, name, d.metadata?.namespace, d.spec, label);
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

/** kubectl's list forms: `kind: List` (or any `...List` kind) with an `items` array. */
function listItems(json: unknown): unknown[] | undefined {
  if (!json || typeof json !== 'object' || Array.isArray(json)) return undefined;
  const { kind, items } = json as { kind?: unknown; items?: unknown };
  return typeof kind === 'string' && kind.endsWith('List') && Array.isArray(items) ? items : undefined;
}

/** Most alias expansions one document may make (the yaml library's count; kubectl takes thousands). */
export const MAX_ALIAS_COUNT = 10_000;

/** A document's JSON, or the one-line reason it cannot be read (never throws). */
function documentJson(doc: Document.Parsed): { json: unknown } | { error: string } {
  try {
    return { json: doc.toJS({ json: true, maxAliasCount: MAX_ALIAS_COUNT }) };
  } catch (err) {
    const e = err as Error;
    if (e instanceof RangeError) return { error: 'document is nested too deeply to read' };
    if (/alias/i.test(e.message))
      return {
        error: `aliases expand to too much data (more than ${MAX_ALIAS_COUNT} alias resolutions; a "billion laughs" document?)`,
      };
    return { error: e.message.split('\n')[0] ?? String(err) };
  }
}

interface DocContext {
  line: number;
  /** The same document read as YAML 1.1 (as kubectl reads it), when it could be read. */
  v11: unknown;
}

/** Validates one document's JSON (a List: each item) into `result`. */
function validateJson(json: unknown, ctx: DocContext, result: ValidationResult): void {
  const items = listItems(json);
  if (items) {
    const items11 = listItems(ctx.v11);
    items.forEach((item, i) => {
      const before = result.problems.length;
      const warnBefore = result.warnings.length;
      validateJson(item, { line: ctx.line, v11: items11?.[i] }, result);
      for (const p of [...result.problems.slice(before), ...result.warnings.slice(warnBefore)])
        p.object = `items[${i}] ${p.object}`.trim();
    });
    if (!items.length) result.skipped++;
    return;
  }
  const r = validateObject(json);
  if (r.skip) {
    result.skipped++;
    return;
  }
  for (const p of r.problems) result.problems.push({ ...p, line: ctx.line });
  const kind = (json as { kind?: unknown }).kind as string;
  if (ctx.v11 !== undefined && Object.hasOwn(SCHEMAS, kind)) {
    const label = r.problems[0]?.object ?? `${kind}/${r.object?.name ?? ''}`;
    for (const w of yaml11Warnings(SCHEMAS[kind]!, json, ctx.v11))
      result.warnings.push({ object: label, path: w.path, message: w.message, line: ctx.line });
  }
  if (r.object) result.objects.push({ ...r.object, line: ctx.line });
}

/**
 * Validates every document of a multi-document YAML text (lists expanded). Never throws: what
 * cannot be read (YAML syntax, alias bombs, nesting) is a problem with a line.
 */
export function validateText(text: string): ValidationResult {
  const result: ValidationResult = { objects: [], problems: [], warnings: [], skipped: 0, documents: 0 };
  const lineCounter = new LineCounter();
  let docs: Document.Parsed[];
  let docs11: Document.Parsed[] = [];
  try {
    // kubectl resolves "<<" merge keys; so does the YAML 1.2 reading here.
    docs = parseAllDocuments(text, { lineCounter, merge: true }) as Document.Parsed[];
    docs11 = parseAllDocuments(text, { version: '1.1' }) as Document.Parsed[];
  } catch (err) {
    result.problems.push({ object: '', path: '', message: `cannot read YAML: ${(err as Error).message}` });
    return result;
  }
  docs.forEach((doc, i) => {
    const line = lineCounter.linePos(doc.range?.[0] ?? 0).line;
    if (doc.errors.length) {
      result.documents++;
      for (const err of doc.errors) {
        const at = err.linePos?.[0];
        const why = /Maximum call stack/.test(err.message)
          ? 'document is nested too deeply to read'
          : err.message.split('\n')[0];
        result.problems.push({
          object: '',
          path: '',
          message: `YAML error${at ? ` at line ${at.line}, column ${at.col}` : ''}: ${why}`,
          line: at?.line ?? line,
        });
      }
      return;
    }
    const r = documentJson(doc);
    if ('error' in r) {
      result.documents++;
      result.problems.push({ object: '', path: '', message: `YAML error: ${r.error}`, line });
      return;
    }
    if (r.json === null || r.json === undefined) return; // empty document (e.g. trailing ---)
    result.documents++;
    const d11 = docs11[i];
    const v11 = d11 && !d11.errors.length ? documentJson(d11) : undefined;
    try {
      validateJson(r.json, { line, v11: v11 && 'json' in v11 ? v11.json : undefined }, result);
    } catch (err) {
      const e = err as Error;
      const why = e instanceof RangeError ? 'document is nested too deeply to read' : e.message;
      result.problems.push({
        object: '',
        path: '',
        message: `cannot check the document at line ${line}: ${why}`,
        line,
      });
    }
  });
  return result;
}
