// Data filter values are Go (RE2) regular expressions. Most RE2 syntax means the same in
// JavaScript; the differences that show up in practice are translated here: leading inline
// flags "(?i)" / "(?s)" / "(?m)", named groups "(?P<name>...)", and the anchors \A and \z.
// Matching is a search, not a full match, exactly like upstream's regexp.Match: "hello" matches
// "hello world"; anchor with ^...$ for an exact match.

export class RegexError extends Error {
  readonly code = 'InvalidRegex';
}

export function goRegex(pattern: string): RegExp {
  let src = pattern;
  let flags = '';
  const lead = /^\(\?([imsU]+)\)/.exec(src);
  if (lead) {
    for (const f of lead[1]!) {
      if (f === 'U')
        throw new RegexError(
          `regular expression ${JSON.stringify(pattern)}: flag U (ungreedy) is not supported`,
        );
      if (!flags.includes(f)) flags += f;
    }
    src = src.slice(lead[0].length);
  }
  src = src
    .replace(/\(\?P</g, '(?<')
    .replace(/(^|[^\\])\\A/g, '$1^')
    .replace(/(^|[^\\])\\z/g, '$1(?![\\s\\S])');
  try {
    return new RegExp(src, flags);
  } catch (e) {
    throw new RegexError(`invalid regular expression ${JSON.stringify(pattern)}: ${(e as Error).message}`);
  }
}
