// The wildcard match gjson uses for "*"/"?" keys and the "%" query operator
// (github.com/tidwall/match): "*" matches any run of characters, "?" exactly one, "\c" the
// character c. Matching is by Unicode code point and takes O(text × pattern) steps at worst
// (no backtracking blow-up, whatever the pattern).

type Token = { star: true } | { star: false; any: boolean; ch: string };

/** A compiled wildcard pattern. */
export interface Glob {
  test(text: string): boolean;
}

function tokenize(pattern: string): Token[] {
  const out: Token[] = [];
  const chars = Array.from(pattern);
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === '*') {
      if (out.at(-1)?.star !== true) out.push({ star: true });
    } else if (c === '?') out.push({ star: false, any: true, ch: '' });
    else if (c === '\\') {
      // A trailing "\" matches nothing, as in tidwall/match.
      const n = chars[++i];
      out.push(
        n === undefined
          ? { star: false, any: false, ch: '\u0000\u0001' }
          : { star: false, any: false, ch: n },
      );
    } else out.push({ star: false, any: false, ch: c });
  }
  return out;
}

/** Compiles a wildcard pattern. */
export function compileGlob(pattern: string): Glob {
  const toks = tokenize(pattern);
  if (toks.length === 1 && toks[0]!.star) return { test: () => true };
  return {
    test(text) {
      const s = Array.from(text);
      let p = 0;
      let i = 0;
      let starP = -1;
      let starI = 0;
      while (i < s.length) {
        const t = toks[p];
        if (t && !t.star && (t.any || t.ch === s[i])) {
          p++;
          i++;
        } else if (t?.star) {
          starP = p++;
          starI = i;
        } else if (starP >= 0) {
          p = starP + 1;
          i = ++starI;
        } else return false;
      }
      while (p < toks.length && toks[p]!.star) p++;
      return p === toks.length;
    },
  };
}
