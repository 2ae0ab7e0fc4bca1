// Data filter values, the `=~` / `!~` operators of `exprs` and the sprig regex functions of Go
// templates are Go (RE2) regular expressions. They run on re2js, a port of RE2: the same syntax
// and semantics as upstream's Go regexp (inline flags, (?P<name>...), \A, \z, ungreedy (?U)),
// and no backtracking, so no pattern (one taken from the event included) can take exponential
// time. RE2's time is still the input's length times the pattern's program size, so every match
// is charged to the evaluation's work budget (../inline-budget.ts) before it runs: a 1 MB field
// against `[a-z]{1000}[0-9]{1000}` is refused in microseconds instead of holding the event loop
// for a minute. Matching is a search, not a full match, exactly like upstream's regexp.Match:
// "hello" matches "hello world"; anchor with ^...$ for an exact match.
import { RE2JS } from 're2js';
import { currentMeter } from '../inline-budget.ts';

export class RegexError extends Error {
  readonly code = 'InvalidRegex';
}

/** One match: the text of each group (undefined when it did not take part), positions, names. */
export interface GoMatch {
  groups: Array<string | undefined>;
  start: number;
  end: number;
  named: Record<string, string | undefined>;
}

export interface GoRegex {
  readonly source: string;
  /** Program size (RE2's measure of the pattern's cost per input character). */
  readonly size: number;
  /** True when the pattern matches somewhere in `text`. Charged to the current budget. */
  test(text: string): boolean;
  /** Successive non-overlapping matches (at most `limit`, all when negative). Charged. */
  matches(text: string, limit?: number): GoMatch[];
}

/** Charges the cost of running `re` over `text` before it runs. */
function charge(re: { size: number; source: string }, text: string): void {
  currentMeter().charge(
    Math.max(1, text.length) * re.size,
    `regular expression ${JSON.stringify(re.source.length > 64 ? `${re.source.slice(0, 64)}…` : re.source)} over ${text.length} characters`,
  );
}

/** Compiles a Go regular expression; throws RegexError naming the pattern when it is invalid. */
export function goRegex(pattern: string): GoRegex {
  let re: RE2JS;
  try {
    re = RE2JS.compile(pattern);
  } catch (e) {
    throw new RegexError(`invalid regular expression ${JSON.stringify(pattern)}: ${(e as Error).message}`);
  }
  const names = Object.keys(re.namedGroups?.() ?? {});
  const self: GoRegex = {
    source: pattern,
    size: Math.max(1, re.programSize()),
    test(text) {
      charge(self, text);
      return re.matcher(text).find();
    },
    matches(text, limit = -1) {
      charge(self, text);
      const m = re.matcher(text);
      const out: GoMatch[] = [];
      const groups = re.groupCount();
      let from = 0;
      let prevEnd = -1;
      while ((limit < 0 || out.length < limit) && from <= text.length && m.find(from)) {
        const start = m.start();
        const end = m.end();
        // Go skips an empty match right after the previous match.
        if (start === end && start === prevEnd) {
          from = end + 1;
          continue;
        }
        const g: Array<string | undefined> = [];
        for (let i = 0; i <= groups; i++) g.push(m.group(i) ?? undefined);
        const named: Record<string, string | undefined> = {};
        for (const n of names) named[n] = m.group(n) ?? undefined;
        out.push({ groups: g, start, end, named });
        prevEnd = end;
        from = end > start ? end : end + 1;
      }
      return out;
    },
  };
  return self;
}
