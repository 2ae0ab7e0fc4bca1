// JSON from outside (request bodies, broker messages, form fields) parsed with a nesting bound:
// JSON.parse itself copes with any depth, but encoding the event again (JSON.stringify), filters
// and the Sensor's evaluators recurse, so a body nested thousands deep would fail later, where a
// sender or a broker sees a retryable error and sends the poison again. Refused here instead.

/** Deepest nesting accepted by default (SLUICE_WEBHOOK_MAX_JSON_DEPTH for webhooks). */
export const MAX_JSON_DEPTH = 128;

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

/** JSON.parse with the nesting bound; throws an Error saying what is wrong. */
export function parseJsonText(text: string, maxDepth = MAX_JSON_DEPTH): unknown {
  if (jsonDepthExceeds(Buffer.from(text, 'utf8'), maxDepth)) {
    throw new Error(`JSON nested deeper than ${maxDepth} levels`);
  }
  return JSON.parse(text);
}
