// Setting a value at a dotted destination path the way upstream's sjson does: "a.b" creates
// objects as needed, "spec.args.0" indexes (and grows) arrays, "to.-1" appends to an array,
// "\." escapes a dot inside a key and ":0" makes a numeric segment an object key. A missing
// container is created as an array when the next segment is a number (or -1), else an object.

export class DestPathError extends Error {
  readonly code = 'InvalidDestPath';
}

interface Seg {
  key: string;
  index: number | undefined;
  append: boolean;
}

function parse(path: string): Seg[] {
  if (!path) throw new DestPathError('dest is empty');
  const raw: Array<{ text: string; forcedKey: boolean }> = [];
  let text = '';
  let forcedKey = false;
  let start = true;
  for (let i = 0; i < path.length; i++) {
    const c = path[i]!;
    if (start && c === ':') {
      forcedKey = true;
      start = false;
      continue;
    }
    start = false;
    if (c === '\\' && i + 1 < path.length) text += path[++i];
    else if (c === '.') {
      raw.push({ text, forcedKey });
      text = '';
      forcedKey = false;
      start = true;
    } else text += c;
  }
  raw.push({ text, forcedKey });
  return raw.map(({ text: t, forcedKey: f }) => ({
    key: t,
    index: !f && /^(0|[1-9][0-9]*)$/.test(t) ? Number(t) : undefined,
    append: !f && t === '-1',
  }));
}

const MAX_INDEX = 100_000;
const isContainer = (v: unknown): v is Record<string, unknown> | unknown[] =>
  v !== null && typeof v === 'object';

function fresh(next: Seg): Record<string, unknown> | unknown[] {
  return next.index !== undefined || next.append ? [] : {};
}

/** Sets `value` at `path` inside `root` (mutating it); returns the root (new if it was not a container). */
export function setPath(root: unknown, path: string, value: unknown): unknown {
  const segs = parse(path);
  const top = isContainer(root) ? root : fresh(segs[0]!);
  let cur: Record<string, unknown> | unknown[] = top;
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i]!;
    const last = i === segs.length - 1;
    const next = segs[i + 1];
    if (Array.isArray(cur)) {
      let idx: number;
      if (s.append) idx = cur.length;
      else if (s.index !== undefined) idx = s.index;
      else
        throw new DestPathError(
          `dest "${path}": "${s.key}" is not an index, but the value there is an array`,
        );
      if (idx > MAX_INDEX) throw new DestPathError(`dest "${path}": index ${idx} is too large`);
      while (cur.length < idx) cur.push(null);
      if (last) {
        cur[idx] = value;
        break;
      }
      const child: unknown = cur[idx];
      if (!isContainer(child)) cur[idx] = fresh(next!);
      cur = cur[idx] as Record<string, unknown> | unknown[];
    } else {
      if (s.key === '__proto__') throw new DestPathError(`dest "${path}": "__proto__" cannot be set`);
      if (last) {
        cur[s.key] = value;
        break;
      }
      const child = Object.hasOwn(cur, s.key) ? cur[s.key] : undefined;
      if (!isContainer(child)) cur[s.key] = fresh(next!);
      cur = cur[s.key] as Record<string, unknown> | unknown[];
    }
  }
  return top;
}
