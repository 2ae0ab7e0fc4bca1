// JSON from outside (request bodies, broker messages, form fields) checked with a nesting bound
// and a node bound: JSON.parse itself copes with any depth, but filters and the Sensor's
// evaluators recurse, so a body nested thousands deep would fail later, where a sender or a
// broker sees a retryable error and sends the poison again; and some shapes cost hundreds of ms
// to parse (json-scan.ts). Refused here instead. The text is carried as sent (raw-json.ts).
import { scanJson } from './json-scan.ts';
import { RawJson } from './raw-json.ts';

/** Deepest nesting accepted by default (SLUICE_WEBHOOK_MAX_JSON_DEPTH for webhooks). */
export const MAX_JSON_DEPTH = 128;
/** Most objects, arrays and object members accepted by default (SLUICE_WEBHOOK_MAX_BODY_NODES). */
export const MAX_JSON_NODES = 20_000;

/** True when JSON text nests arrays/objects deeper than `max` (strings are skipped). */
export function jsonDepthExceeds(raw: Uint8Array, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i]!;
    if (inString) {
      if (b === 0x5c)
        i++; // backslash: skip the escaped byte
      else if (b === 0x22) inString = false;
    } else if (b === 0x22) inString = true;
    else if (b === 0x5b || b === 0x7b) {
      if (++depth > max) return true;
    } else if (b === 0x5d || b === 0x7d) depth--;
  }
  return false;
}

/** JSON.parse within the nesting and node bounds; throws an Error saying what is wrong. */
export function parseJsonText(text: string, maxDepth = MAX_JSON_DEPTH, maxNodes = MAX_JSON_NODES): unknown {
  return parseJsonRaw(text, maxDepth, maxNodes).value;
}

/**
 * `text` as a RawJson (published exactly as sent) once it is checked to be JSON within the
 * bounds; throws an Error saying what is wrong. Nothing is parsed until the value is asked for.
 */
export function parseJsonRaw(text: string, maxDepth = MAX_JSON_DEPTH, maxNodes = MAX_JSON_NODES): RawJson {
  const problem = scanJson(text, maxDepth, maxNodes);
  if (problem) throw new Error(problem.message);
  return new RawJson(text);
}
