// A strict JSON validator that reads a body chunk by chunk, as it arrives, and refuses early what
// sluice will not carry: text that is not JSON (exactly what JSON.parse accepts: RFC 8259 with
// whitespace around one value, no trailing commas, no comments), nesting deeper than a bound, and
// more "nodes" (objects, arrays and object members) than a bound. Building a JS value from JSON
// costs time in proportion to its objects and keys, and some shapes cost far more than their size
// suggests (tens of thousands of distinct keys, deeply nested arrays: hundreds of ms for 1 MiB),
// time during which the event loop serves nobody; the scan itself is linear in the bytes and
// allocates nothing, so a request costs a bounded slice of the loop per chunk, and a body that is
// never needed as a value (the plain webhook without a filter) is never parsed at all.
//
// UTF-8 is not checked here (node:buffer isUtf8 does it once on the whole body).

/** What the scan found wrong; `limit` = a bound was exceeded (413), otherwise not JSON (400). */
export interface ScanProblem {
  limit: boolean;
  message: string;
}

const S = {
  Value: 0, // A value must come next (start, after `[`, `:` or `,` in an array).
  ArrayFirst: 1, // After `[`: a value or `]`.
  ObjectFirst: 2, // After `{`: a key or `}`.
  Key: 3, // After `,` in an object: a key.
  Colon: 4, // After a key: `:`.
  After: 5, // After a value: `,` or a closer (or the end, at top level).
  Str: 6, // Inside a string (a key when `inKey`).
  Escape: 7, // After a backslash in a string.
  Hex: 8, // In a \uXXXX escape; `hexLeft` digits to go.
  Literal: 9, // In a literal (true/false/null); `lit` and `litAt` say which and where.
  Number: 10, // In a number; `num` is the position in its grammar.
  Done: 11, // The top-level value is complete: only whitespace may follow.
} as const;
type State = (typeof S)[keyof typeof S];

// Number grammar positions: after '-', after leading '0', in integer digits, after '.', in
// fraction digits, after 'e', after the exponent sign, in exponent digits.
const N = {
  Minus: 0,
  Zero: 1,
  Int: 2,
  Dot: 3,
  Frac: 4,
  Exp: 5,
  ExpSign: 6,
  ExpDigits: 7,
} as const;
type NumberAt = (typeof N)[keyof typeof N];

const LITERALS = ['true', 'false', 'null'].map((s) => Buffer.from(s));

const isWs = (b: number) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
const isDigit = (b: number) => b >= 0x30 && b <= 0x39;
const isHex = (b: number) => isDigit(b) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
const ESCAPES = new Set([0x22, 0x5c, 0x2f, 0x62, 0x66, 0x6e, 0x72, 0x74]);

/** Incremental strict JSON validation with a depth and a node bound. */
export class JsonScan {
  readonly maxDepth: number;
  readonly maxNodes: number;
  /** Objects + arrays + object members seen so far. */
  nodes = 0;
  private state: State = S.Value;
  /** Open containers: true = object. */
  private readonly stack: boolean[] = [];
  private inKey = false;
  private hexLeft = 0;
  private lit: Buffer = LITERALS[0]!;
  private litAt = 0;
  private num: NumberAt = N.Int;
  private offset = 0;
  private problem: ScanProblem | undefined;

  constructor(maxDepth: number, maxNodes = Number.POSITIVE_INFINITY) {
    this.maxDepth = maxDepth;
    this.maxNodes = maxNodes;
  }

  /** Scans the next bytes; returns the problem once there is one (then every later call too). */
  feed(b: Uint8Array): ScanProblem | undefined {
    if (this.problem) return this.problem;
    for (let i = 0; i < b.length; i++) {
      // Plain string bytes are the bulk of most bodies: skip them in a tight loop.
      if (this.state === S.Str) {
        let c = b[i]!;
        while (c !== 0x22 && c !== 0x5c && c >= 0x20) {
          if (++i === b.length) break;
          c = b[i]!;
        }
        if (i === b.length) break;
      }
      const bad = this.step(b[i]!);
      if (bad) {
        this.problem = { limit: bad.limit, message: `${bad.message} (at byte ${this.offset + i})` };
        return this.problem;
      }
    }
    this.offset += b.length;
    return undefined;
  }

  /** After the last chunk: the problem, if the text is not one complete JSON value. */
  end(): ScanProblem | undefined {
    if (this.problem) return this.problem;
    if (this.state === S.Number && this.stack.length === 0 && this.numberComplete()) return undefined;
    if (this.state === S.Done) return undefined;
    if (this.offset === 0) return { limit: false, message: 'body is empty; expected JSON' };
    return { limit: false, message: 'unexpected end of JSON input' };
  }

  private numberComplete(): boolean {
    return this.num === N.Zero || this.num === N.Int || this.num === N.Frac || this.num === N.ExpDigits;
  }

  private open(object: boolean): ScanProblem | undefined {
    if (this.stack.length >= this.maxDepth) {
      return { limit: false, message: `JSON nested deeper than ${this.maxDepth} levels` };
    }
    if (++this.nodes > this.maxNodes) return this.tooMany();
    this.stack.push(object);
    this.state = object ? S.ObjectFirst : S.ArrayFirst;
    return undefined;
  }

  private tooMany(): ScanProblem {
    return {
      limit: true,
      message: `JSON has more than ${this.maxNodes} objects, arrays and members`,
    };
  }

  private close(object: boolean): ScanProblem | undefined {
    if (this.stack.length === 0 || this.stack[this.stack.length - 1] !== object) {
      return { limit: false, message: `unexpected '${object ? '}' : ']'}' in JSON` };
    }
    this.stack.pop();
    this.afterValue();
    return undefined;
  }

  private afterValue(): void {
    this.state = this.stack.length === 0 ? S.Done : S.After;
  }

  /** A value starts with byte `c` (state Value or ArrayFirst). */
  private value(c: number): ScanProblem | undefined {
    if (c === 0x7b) return this.open(true);
    if (c === 0x5b) return this.open(false);
    if (c === 0x22) {
      this.inKey = false;
      this.state = S.Str;
      return undefined;
    }
    if (c === 0x2d || isDigit(c)) {
      this.state = S.Number;
      this.num = c === 0x2d ? N.Minus : c === 0x30 ? N.Zero : N.Int;
      return undefined;
    }
    const lit = c === 0x74 ? 0 : c === 0x66 ? 1 : c === 0x6e ? 2 : -1;
    if (lit >= 0) {
      this.lit = LITERALS[lit]!;
      this.litAt = 1;
      this.state = S.Literal;
      return undefined;
    }
    return unexpected(c);
  }

  /** One number byte; false when `c` does not continue the number (it ends it, if complete). */
  private numberByte(c: number): boolean {
    switch (this.num) {
      case N.Minus:
        if (!isDigit(c)) return false;
        this.num = c === 0x30 ? N.Zero : N.Int;
        return true;
      case N.Zero:
      case N.Int:
        if (isDigit(c) && this.num === N.Int) return true;
        if (c === 0x2e) this.num = N.Dot;
        else if (c === 0x65 || c === 0x45) this.num = N.Exp;
        else return false;
        return true;
      case N.Dot:
        if (!isDigit(c)) return false;
        this.num = N.Frac;
        return true;
      case N.Frac:
        if (isDigit(c)) return true;
        if (c !== 0x65 && c !== 0x45) return false;
        this.num = N.Exp;
        return true;
      case N.Exp:
        if (c === 0x2b || c === 0x2d) this.num = N.ExpSign;
        else if (isDigit(c)) this.num = N.ExpDigits;
        else return false;
        return true;
      case N.ExpSign:
        if (!isDigit(c)) return false;
        this.num = N.ExpDigits;
        return true;
      case N.ExpDigits:
        return isDigit(c);
    }
  }

  private step(c: number): ScanProblem | undefined {
    switch (this.state) {
      case S.Str:
        if (c === 0x22) {
          if (this.inKey) this.state = S.Colon;
          else this.afterValue();
        } else if (c === 0x5c) this.state = S.Escape;
        else if (c < 0x20) return { limit: false, message: 'control character in a JSON string' };
        return undefined;
      case S.Escape:
        if (c === 0x75) {
          this.state = S.Hex;
          this.hexLeft = 4;
        } else if (ESCAPES.has(c)) this.state = S.Str;
        else return { limit: false, message: 'bad escape in a JSON string' };
        return undefined;
      case S.Hex:
        if (!isHex(c)) return { limit: false, message: 'bad \\u escape in a JSON string' };
        if (--this.hexLeft === 0) this.state = S.Str;
        return undefined;
      case S.Literal:
        if (c !== this.lit[this.litAt]) return unexpected(c);
        if (++this.litAt === this.lit.length) this.afterValue();
        return undefined;
      case S.Number:
        if (this.numberByte(c)) return undefined;
        if (!this.numberComplete()) return { limit: false, message: 'malformed number in JSON' };
        this.afterValue();
        return this.step(c);
      default:
        break;
    }
    if (isWs(c)) return undefined;
    switch (this.state) {
      case S.Value:
        return this.value(c);
      case S.ArrayFirst:
        if (c === 0x5d) return this.close(false);
        return this.value(c);
      case S.ObjectFirst:
        if (c === 0x7d) return this.close(true);
        return this.key(c);
      case S.Key:
        return this.key(c);
      case S.Colon:
        if (c !== 0x3a) return unexpected(c);
        this.state = S.Value;
        return undefined;
      case S.After:
        if (c === 0x2c) {
          this.state = this.stack[this.stack.length - 1] ? S.Key : S.Value;
          return undefined;
        }
        if (c === 0x7d) return this.close(true);
        if (c === 0x5d) return this.close(false);
        return unexpected(c);
      default:
        // Done: only whitespace may follow the value.
        return { limit: false, message: 'unexpected data after the JSON value' };
    }
  }

  private key(c: number): ScanProblem | undefined {
    if (c !== 0x22) return unexpected(c);
    if (++this.nodes > this.maxNodes) return this.tooMany();
    this.inKey = true;
    this.state = S.Str;
    return undefined;
  }
}

function unexpected(c: number): ScanProblem {
  const ch = c >= 0x20 && c < 0x7f ? `'${String.fromCharCode(c)}'` : `byte 0x${c.toString(16)}`;
  return { limit: false, message: `unexpected ${ch} in JSON` };
}

/** Scans a whole text or buffer at once. */
export function scanJson(
  text: string | Uint8Array,
  maxDepth: number,
  maxNodes = Number.POSITIVE_INFINITY,
): ScanProblem | undefined {
  const s = new JsonScan(maxDepth, maxNodes);
  return s.feed(typeof text === 'string' ? Buffer.from(text, 'utf8') : text) ?? s.end();
}
