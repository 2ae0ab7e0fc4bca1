// How Go's fmt prints the values a template works with (JSON values, missing map entries, times),
// and a printf with the verbs templates use. One deliberate difference: whole numbers below 1e21
// print in full ("1000000"), where Go prints float64 as "1e+06"; JSON numbers are float64 in Go,
// so upstream turns large ids into exponent form, which nobody wants in a resource name.

/** A map entry that does not exist: prints as "<no value>", like Go's invalid reflect.Value. */
export const NO_VALUE: unique symbol = Symbol('no value');

export function goFloat(n: number, fmtChar: 'g' | 'e' = 'g', prec = -1): string {
  if (Number.isNaN(n)) return 'NaN';
  if (!Number.isFinite(n)) return n > 0 ? '+Inf' : '-Inf';
  if (fmtChar === 'g' && prec < 0 && Number.isInteger(n) && Math.abs(n) < 1e21) {
    return Object.is(n, -0) ? '-0' : BigInt(n).toString();
  }
  const e = prec < 0 ? n.toExponential() : n.toExponential(prec);
  const [mant, expS] = e.split('e') as [string, string];
  const exp = Number(expS);
  const expo = () => `${mant}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  if (fmtChar === 'e') return expo();
  if (exp < -4 || exp >= (prec < 0 ? 21 : prec)) return expo();
  return prec < 0 ? String(n) : String(Number(n.toPrecision(prec)));
}

/** fmt.Sprint of one value (%v). */
export function printValue(v: unknown): string {
  if (v === NO_VALUE) return '<no value>';
  if (v === null || v === undefined) return '<nil>';
  switch (typeof v) {
    case 'string':
      return v;
    case 'number':
      return goFloat(v);
    case 'boolean':
      return v ? 'true' : 'false';
    case 'bigint':
      return v.toString();
    case 'object':
      break;
    default:
      return String(v);
  }
  if (v instanceof Date) return goTime(v);
  if (v instanceof Uint8Array) return `[${[...v].join(' ')}]`;
  if (Array.isArray(v)) return `[${v.map(printValue).join(' ')}]`;
  const o = v as Record<string, unknown>;
  return `map[${Object.keys(o)
    .sort()
    .map((k) => `${k}:${printValue(o[k])}`)
    .join(' ')}]`;
}

function goTime(d: Date): string {
  const iso = d.toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${iso.slice(20, 23).replace(/0+$/, '')} +0000 UTC`.replace(
    /\. \+/,
    ' +',
  );
}

/** strconv.Quote: a double-quoted Go string literal. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\r') out += '\\r';
    else if (cp < 0x20 || cp === 0x7f) out += `\\x${cp.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

const goType = (v: unknown): string => {
  if (v === null || v === undefined || v === NO_VALUE) return '<nil>';
  if (typeof v === 'number') return 'float64';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'boolean') return 'bool';
  if (Array.isArray(v)) return '[]interface {}';
  return 'map[string]interface {}';
};

/** Widths and precisions are capped here, so "%*d" with a huge width cannot allocate without bound. */
const MAX_WIDTH = 1 << 16;

/** fmt.Sprintf with the common verbs: %v %+v %s %q %d %f %e %g %t %x %X %c %T %% and width/precision. */
export function goSprintf(format: string, args: readonly unknown[]): string {
  let out = '';
  let argi = 0;
  const re = /%([-+# 0]*)(\d+|\*)?(?:\.(\d+|\*)?)?([a-zA-Z%])/g;
  let last = 0;
  for (let m = re.exec(format); m; m = re.exec(format)) {
    out += format.slice(last, m.index);
    last = re.lastIndex;
    const [, flags = '', widthS, precS, verb] = m as unknown as [
      string,
      string,
      string | undefined,
      string | undefined,
      string,
    ];
    if (verb === '%') {
      out += '%';
      continue;
    }
    const width = Math.min(MAX_WIDTH, widthS === '*' ? Number(args[argi++]) : widthS ? Number(widthS) : 0);
    const prec = Math.min(
      MAX_WIDTH,
      precS === '*' ? Number(args[argi++]) : precS !== undefined ? Number(precS) : -1,
    );
    if (argi >= args.length) {
      out += `%!${verb}(MISSING)`;
      continue;
    }
    const a = args[argi++];
    let s: string;
    const num = typeof a === 'number' ? a : Number.NaN;
    switch (verb) {
      case 'v':
      case 's':
        s = printValue(a);
        if (prec >= 0 && verb === 's') s = [...s].slice(0, prec).join('');
        break;
      case 'q':
        s = typeof a === 'string' ? goQuote(a) : printValue(a);
        break;
      case 'd':
        s =
          typeof a === 'number' && Number.isInteger(a)
            ? BigInt(a).toString()
            : `%!d(${goType(a)}=${printValue(a)})`;
        if (flags.includes('+') && num >= 0) s = `+${s}`;
        break;
      case 'f':
      case 'F':
        s = typeof a === 'number' ? a.toFixed(prec < 0 ? 6 : prec) : `%!f(${goType(a)}=${printValue(a)})`;
        if (flags.includes('+') && num >= 0) s = `+${s}`;
        break;
      case 'e':
        s =
          typeof a === 'number' ? goFloat(a, 'e', prec < 0 ? 6 : prec) : `%!e(${goType(a)}=${printValue(a)})`;
        break;
      case 'g':
        s = typeof a === 'number' ? goFloat(a, 'g', prec) : `%!g(${goType(a)}=${printValue(a)})`;
        break;
      case 't':
        s = typeof a === 'boolean' ? String(a) : `%!t(${goType(a)}=${printValue(a)})`;
        break;
      case 'x':
      case 'X': {
        if (typeof a === 'number' && Number.isInteger(a)) s = a.toString(16);
        else if (typeof a === 'string') s = Buffer.from(a, 'utf8').toString('hex');
        else s = `%!${verb}(${goType(a)}=${printValue(a)})`;
        if (verb === 'X') s = s.toUpperCase();
        break;
      }
      case 'c':
        s = typeof a === 'number' ? String.fromCodePoint(a) : `%!c(${goType(a)}=${printValue(a)})`;
        break;
      case 'T':
        s = goType(a);
        break;
      default:
        s = `%!${verb}(${goType(a)}=${printValue(a)})`;
    }
    if (width > s.length) {
      if (flags.includes('-')) s = s.padEnd(width);
      else if (flags.includes('0') && /[dfeFgxX]/.test(verb)) {
        const neg = s.startsWith('-') || s.startsWith('+');
        s = neg ? s[0] + s.slice(1).padStart(width - 1, '0') : s.padStart(width, '0');
      } else s = s.padStart(width);
    }
    out += s;
  }
  out += format.slice(last);
  if (argi < args.length)
    out += `%!(EXTRA ${args
      .slice(argi)
      .map((a) => `${goType(a)}=${printValue(a)}`)
      .join(', ')})`;
  return out;
}

/** Go's template truth: false, 0, nil, "" and empty collections are false. */
export function truthy(v: unknown): boolean {
  if (v === NO_VALUE || v === null || v === undefined) return false;
  switch (typeof v) {
    case 'boolean':
      return v;
    case 'number':
      return v !== 0;
    case 'string':
      return v.length > 0;
    case 'object':
      if (v instanceof Date) return true;
      if (Array.isArray(v)) return v.length > 0;
      return Object.keys(v).length > 0;
    default:
      return true;
  }
}

export { goType };
