// Data filter values and the `=~` / `!~` operators of `exprs` are Go (RE2) regular expressions.
// They run on re2js, a port of RE2: the same syntax and semantics as upstream's Go regexp (inline
// flags, (?P<name>...), \A, \z, ungreedy (?U)), and linear-time matching, so no pattern and no
// event text can make a match backtrack for seconds on the Sensor's event loop (a pattern built
// from event data in `exprs` included). Matching is a search, not a full match, exactly like
// upstream's regexp.Match: "hello" matches "hello world"; anchor with ^...$ for an exact match.
import { RE2JS } from 're2js';

export class RegexError extends Error {
  readonly code = 'InvalidRegex';
}

export interface GoRegex {
  readonly source: string;
  /** True when the pattern matches somewhere in `text`. Linear in the text's length. */
  test(text: string): boolean;
}

/** Compiles a Go regular expression; throws RegexError naming the pattern when it is invalid. */
export function goRegex(pattern: string): GoRegex {
  let re: RE2JS;
  try {
    re = RE2JS.compile(pattern);
  } catch (e) {
    throw new RegexError(`invalid regular expression ${JSON.stringify(pattern)}: ${(e as Error).message}`);
  }
  return { source: pattern, test: (text) => re.matcher(text).find() };
}
