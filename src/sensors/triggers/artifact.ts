// Loads the object a k8s or argoWorkflow trigger works with from its `source`: inline YAML/JSON
// text, a structured `resource`, a ConfigMap key, a file on the Sensor pod, or an HTTP(S) URL.
// Git and S3 sources are not implemented; they fail as Unsupported so the trigger is dead-lettered
// with a message that says so instead of retrying forever.
import { readFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { parseAllDocuments } from 'yaml';
import type { StandardK8STrigger } from '../../api/sensor.ts';
import { type TriggerContext, TriggerError } from './trigger.ts';

export type ArtifactSource = NonNullable<StandardK8STrigger['source']>;

/** A Kubernetes-style object as loaded from a source (plain JSON data). */
export interface KubeDoc {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    generateName?: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    resourceVersion?: string;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

const URL_TIMEOUT_MS = 30_000;
const MAX_URL_BYTES = 4 * 1024 * 1024;

/** Parses YAML or JSON text holding exactly one object. */
export function parseObjectText(text: string, where: string): KubeDoc {
  let docs: unknown[];
  try {
    const parsed = parseAllDocuments(text);
    const list = Array.isArray(parsed) ? parsed : [parsed];
    for (const d of list) {
      if (d.errors.length) throw new Error(d.errors[0]?.message ?? 'invalid YAML');
    }
    docs = list.map((d) => d.toJS()).filter((d) => d !== null && d !== undefined);
  } catch (err) {
    throw new TriggerError('Misconfigured', `${where}: not valid YAML or JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (docs.length !== 1) {
    throw new TriggerError('Misconfigured', `${where}: expected one object, found ${docs.length} documents`);
  }
  return asObject(docs[0], where);
}

function asObject(value: unknown, where: string): KubeDoc {
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new TriggerError(
      'Misconfigured',
      `${where}: expected an object, got ${Array.isArray(value) ? 'a list' : typeof value}`,
    );
  }
  return value as KubeDoc;
}

function fetchText(url: URL, verify: boolean, signal: AbortSignal): Promise<string> {
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<string>((resolve, reject) => {
    const req = send(
      url,
      {
        method: 'GET',
        signal: AbortSignal.any([signal, AbortSignal.timeout(URL_TIMEOUT_MS)]),
        ...(url.protocol === 'https:' ? { rejectUnauthorized: verify } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_URL_BYTES) {
            req.destroy(new Error(`document is larger than ${MAX_URL_BYTES} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          const text = Buffer.concat(chunks).toString('utf8');
          if (status >= 200 && status < 300) return resolve(text);
          const code = status === 408 || status === 429 || status >= 500 ? 'Transient' : 'Misconfigured';
          reject(new TriggerError(code, `source url ${url.origin}${url.pathname}: HTTP ${status}`));
        });
        res.on('error', reject);
      },
    );
    req.on('error', (err) =>
      reject(
        err instanceof TriggerError
          ? err
          : new TriggerError('Transient', `source url ${url.origin}${url.pathname}: ${err.message}`, {
              cause: err,
            }),
      ),
    );
    req.end();
  });
}

/**
 * The object named by `source`, as a fresh copy the caller may modify. Throws TriggerError:
 * Misconfigured for a missing/invalid source, Transient for a URL that failed to answer,
 * Unsupported for git and s3.
 */
export async function loadSource(source: ArtifactSource | undefined, ctx: TriggerContext): Promise<KubeDoc> {
  if (!source) throw new TriggerError('Misconfigured', 'the trigger has no source');
  if (source.resource !== undefined && source.resource !== null) {
    const r = source.resource as unknown;
    if (typeof r === 'string') return parseObjectText(r, 'source.resource');
    return structuredClone(asObject(r, 'source.resource'));
  }
  if (source.inline) return parseObjectText(source.inline, 'source.inline');
  if (source.configmap) {
    const where = `source.configmap ${source.configmap.name}/${source.configmap.key}`;
    let text: string;
    try {
      text = await ctx.resolveConfigMap({ name: source.configmap.name, key: source.configmap.key });
    } catch (err) {
      if (err instanceof TriggerError) throw err;
      throw new TriggerError('Misconfigured', `${where}: ${(err as Error).message}`, { cause: err });
    }
    return parseObjectText(text, where);
  }
  if (source.file) {
    const path = source.file.path;
    if (!path) throw new TriggerError('Misconfigured', 'source.file has no path');
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new TriggerError('Misconfigured', `source.file ${path}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    return parseObjectText(text, `source.file ${path}`);
  }
  if (source.url) {
    let url: URL;
    try {
      url = new URL(source.url.path);
    } catch {
      throw new TriggerError('Misconfigured', `source.url ${JSON.stringify(source.url.path)} is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new TriggerError('Misconfigured', `source.url must be http or https, not ${url.protocol}`);
    }
    // Upstream skips certificate checks unless verifyCert is set; sluice checks them unless
    // verifyCert is explicitly false.
    const verify = (source.url.verifyCert ?? source.url.verifycert) !== false;
    const text = await fetchText(url, verify, ctx.signal);
    return parseObjectText(text, `source.url ${url.origin}${url.pathname}`);
  }
  if (source.git) {
    throw new TriggerError(
      'Unsupported',
      'source.git is not supported by sluice yet: put the object in a ConfigMap (source.configmap), inline it, or serve it over HTTP (source.url)',
    );
  }
  if (source.s3) {
    throw new TriggerError(
      'Unsupported',
      'source.s3 is not supported by sluice yet: put the object in a ConfigMap (source.configmap), inline it, or serve it over HTTP (source.url)',
    );
  }
  throw new TriggerError('Misconfigured', 'source names no place to load the object from');
}
