// Regular expressions in data filters and exprs are Go's (RE2) dialect. Each row was run through Go's
// regexp (go1.26): the pattern, a text, and whether Go finds a match there, or 'error' when Go refuses
// the pattern, in which case lint and the Sensor refuse it too.
import { describe, expect, it } from 'vitest';
import { compileDataFilters } from '../../../src/sensors/match/data.ts';
import { goRegex, RegexError } from '../../../src/sensors/match/regex.ts';

const rows: Array<[pattern: string, text: string, go: boolean | 'error']> = [
  ['[[:alpha:]]+$', 'abc', true],
  ['\\pL', 'é', true],
  ['\\Q.*\\E', 'a.*', true],
  ['\\x{41}', 'A', true],
  ['^.$', '😀', true],
  ['^..$', '😀', false],
  ['\\s', ' ', false],
  ['\\s', ' ', false],
  ['\\w', 'é', false],
  ['\\d', '٣', false],
  ['\\b', 'é', false],
  ['(?<=a)b', 'ab', 'error'],
  ['(a)\\1', 'aa', 'error'],
  ['a{1001}', 'a', 'error'],
  ['a{1000}', 'a', false],
  ['\\C', 'a', 'error'],
  ['\\8', 'a', 'error'],
  ['[\\d-z]', '-', true],
  ['[\\d-z]', 'y', false],
  ['(?i)k', 'K', true],
  ['\\z', 'a', true],
  ['\\Z', 'a', 'error'],
  ['(?P<n>a)', 'a', true],
  ['(?<n>a)', 'a', true],
  ['a++', 'a', 'error'],
  ['x*?', 'x', true],
  ['(?s).', '\n', true],
  ['.', '\n', false],
  ['[^a]', '\n', true],
  ['\\v', '\u000b', true],
  ['$', 'a\n', true],
  ['a$', 'a\n', false],
  ['\\u0041', 'A', 'error'],
  ['\\cA', '\u0001', 'error'],
  ['(?m)^b', 'a\nb', true],
  ['\\e', '\u001b', 'error'],
  ['[a-\\d]', 'a', 'error'],
  ['[z-a]', 'a', 'error'],
  ['(?i)ſ', 's', true],
  ['\\p{Greek}', 'α', true],
  ['\\PL', '1', true],
  ['\\p{Foo}', 'a', 'error'],
  ['[[:word:]]', '_', true],
  ['[[:foo:]]', 'a', 'error'],
  ['x{2,1}', 'x', 'error'],
  ['a{,3}', 'a{,3}', true],
  ['a{', 'a{', true],
  ['{', '{', true],
  ['a{1', 'a{1', true],
  ['\\%', '%', true],
  ['\\_', '_', true],
  ['\\-', '-', true],
  ['\\ ', ' ', true],
  ['(?U)a+', 'a', true],
  ['(?x)a b', 'ab', 'error'],
  ['(?=a)', 'a', 'error'],
  ['(?!a)', 'b', 'error'],
  ['(?#c)', 'a', 'error'],
  ['\\0', '\u0000', true],
  ['\\01', '\u0001', true],
  ['\\123', 'S', true],
  ['\\x41', 'A', true],
  ['\\x4', 'A', 'error'],
  ['\\N{U+41}', 'A', 'error'],
  ['[\\b]', '\b', 'error'],
  ['\\B', 'ab', true],
  ['\\A', 'a', true],
  ['^*', 'a', true],
  ['a**', 'a', 'error'],
  ['a*+', 'a', 'error'],
  ['(?i)Σ', 'ς', true],
  ['\\pN', '²', true],
  ['[^\\D]', '5', true],
  ['[\\s\\S]', '\n', true],
  ['\\R', '\n', 'error'],
  ['\\h', ' ', 'error'],
  ['\\K', 'a', 'error'],
  ['(?i:a)', 'A', true],
  ['(?-i)a', 'A', false],
  ['(?im-s)a', 'A', true],
  ['(?)', 'a', true],
  ['(?P=n)', 'a', 'error'],
  ['(?<1a>x)', 'x', true],
  ['()', 'a', true],
  ['|', 'a', true],
  ['(|a)+', 'a', true],
  ['\\ua', 'a', 'error'],
  ['ab]', 'ab]', true],
  ['[]a]', ']', true],
  ['[^]a]', 'b', true],
  ['a\\', 'a', 'error'],
];

describe('Go regular expressions', () => {
  it.each(rows)('%j on %j: %j', (pattern, text, go) => {
    if (go === 'error') expect(() => goRegex(pattern)).toThrow(RegexError);
    else expect(goRegex(pattern).test(text)).toBe(go);
  });

  it('a data filter value Go refuses is a compile error, which lint reports', () => {
    for (const value of ['(?<=a)b', '(a)\\1', 'a{1001}', '\\C', '\\8'])
      expect(() => compileDataFilters([{ path: 'a', type: 'string', value: [value] }], false, '')).toThrow(
        /invalid regular expression/,
      );
  });
});
