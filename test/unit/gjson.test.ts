// gjson paths: every example of gjson's SYNTAX.md (path → value), the cases where "." and "|"
// differ, modifiers, multipaths, literals, queries with every operator, wildcards, escapes,
// what happens after "|" when nothing was found, and the syntax that is refused. Expected values
// were checked against github.com/tidwall/gjson v1.18 itself.
import { describe, expect, it } from 'vitest';
import { compileGjson, MISSING, PathError } from '../../src/gjson/index.ts';

const DOC = {
  name: { first: 'Tom', last: 'Anderson' },
  age: 37,
  children: ['Sara', 'Alex', 'Jack'],
  'fav.movie': 'Deer Hunter',
  friends: [
    { first: 'Dale', last: 'Murphy', age: 44, nets: ['ig', 'fb', 'tw'] },
    { first: 'Roger', last: 'Craig', age: 68, nets: ['fb', 'tw'] },
    { first: 'Jane', last: 'Murphy', age: 47, nets: ['ig', 'tw'] },
  ],
};

const VALS = {
  vals: [
    { a: 1, b: true },
    { a: 2, b: true },
    { a: 3, b: false },
    { a: 4, b: '0' },
    { a: 5, b: 0 },
    { a: 6, b: '1' },
    { a: 7, b: 1 },
    { a: 8, b: 'true' },
    { a: 9, b: false },
    { a: 10, b: null },
    { a: 11 },
  ],
};

const get = (path: string, doc: unknown = DOC) => compileGjson(path).get(doc);
const table = (cases: Array<[string, unknown]>, doc: unknown = DOC) => {
  for (const [path, want] of cases) expect(get(path, doc), path).toEqual(want);
};

describe('gjson SYNTAX.md examples', () => {
  it('basic keys and indexes', () => {
    table([
      ['name.last', 'Anderson'],
      ['name.first', 'Tom'],
      ['age', 37],
      ['children', ['Sara', 'Alex', 'Jack']],
      ['children.0', 'Sara'],
      ['children.1', 'Alex'],
      ['friends.1', DOC.friends[1]],
      ['friends.1.first', 'Roger'],
    ]);
  });

  it('wildcards and escapes', () => {
    table([
      ['child*.2', 'Jack'],
      ['c?ildren.0', 'Sara'],
      ['fav\\.movie', 'Deer Hunter'],
      ['fav\\.mov*', 'Deer Hunter'],
      ['fav.movie', MISSING],
    ]);
  });

  it('arrays: "#" counts, "#.key" collects', () => {
    table([
      ['friends.#', 3],
      ['friends.#.age', [44, 68, 47]],
      ['friends.#.nets.#', [3, 2, 2]],
    ]);
  });

  it('queries: first match, all matches, like / not like, nested', () => {
    table([
      ['friends.#(last=="Murphy").first', 'Dale'],
      ['friends.#(last=="Murphy")#.first', ['Dale', 'Jane']],
      ['friends.#(age>45)#.last', ['Craig', 'Murphy']],
      ['friends.#(first%"D*").last', 'Murphy'],
      ['friends.#(first!%"D*").last', 'Craig'],
      ['children.#(!%"*a*")', 'Alex'],
      ['children.#(%"*a*")#', ['Sara', 'Jack']],
      ['friends.#(nets.#(=="fb"))#.first', ['Dale', 'Roger']],
      // The legacy #[...] brackets still work.
      ['friends.#[last=="Murphy"]#.first', ['Dale', 'Jane']],
    ]);
  });

  it('the "~" operator compares truthiness (a missing value is false)', () => {
    table(
      [
        ['vals.#(b==~true)#.a', [1, 2, 6, 7, 8]],
        ['vals.#(b==~false)#.a', [3, 4, 5, 9, 10, 11]],
        ['vals.#(b==~null)#.a', [10, 11]],
        ['vals.#(b==~*)#.a', [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]],
      ],
      VALS,
    );
  });

  it('dot vs pipe', () => {
    const murphys = [DOC.friends[0], DOC.friends[2]];
    table([
      ['friends.0.first', 'Dale'],
      ['friends|0.first', 'Dale'],
      ['friends.0|first', 'Dale'],
      ['friends|0|first', 'Dale'],
      ['friends|#', 3],
      ['friends.#', 3],
      ['friends.#(last="Murphy")#', murphys],
      ['friends.#(last="Murphy")#.first', ['Dale', 'Jane']],
      ['friends.#(last="Murphy")#|first', MISSING],
      ['friends.#(last="Murphy")#.0', []],
      ['friends.#(last="Murphy")#|0', DOC.friends[0]],
      ['friends.#(last="Murphy")#.#', []],
      ['friends.#(last="Murphy")#|#', 2],
    ]);
  });

  it('modifiers', () => {
    table([
      ['children.@reverse', ['Jack', 'Alex', 'Sara']],
      ['children.@reverse.0', 'Jack'],
      ['children|@reverse|0', 'Jack'],
      ['@this.name.first', 'Tom'],
      ['name.@keys', ['first', 'last']],
      ['name.@values', ['Tom', 'Anderson']],
      ['name|@reverse', { last: 'Anderson', first: 'Tom' }],
      ['friends.#.nets|@flatten', ['ig', 'fb', 'tw', 'fb', 'tw', 'ig', 'tw']],
      ['friends|@join.first', 'Jane'],
      ['name.@tostr', '{"first":"Tom","last":"Anderson"}'],
      ['name.@tostr|@fromstr.first', 'Tom'],
      ['@pretty:{"sortKeys":true}.age', 37],
      ['name|@valid|@ugly.last', 'Anderson'],
    ]);
    const doc = { nested: [[1, 2], [3, [4, 5]], []], grp: { id: [1, 2], name: ['a', 'b'] } };
    table(
      [
        ['nested|@flatten', [1, 2, 3, [4, 5]]],
        ['nested|@flatten:{"deep":true}', [1, 2, 3, 4, 5]],
        [
          'grp|@group',
          [
            { id: 1, name: 'a' },
            { id: 2, name: 'b' },
          ],
        ],
      ],
      doc,
    );
    const tree = { name: 'x', kids: [{ name: 'y' }, { name: 'z', kids: [{ name: 'w' }] }] };
    expect(get('@dig:name', tree)).toEqual(['x', 'y', 'z', 'w']);
  });

  it('multipaths, with names, and literals', () => {
    table([
      [
        '{name.first,age,"the_murphys":friends.#(last="Murphy")#.first}',
        { first: 'Tom', age: 37, the_murphys: ['Dale', 'Jane'] },
      ],
      [
        '{name.first,age,"company":!"Happysoft","employed":!true}',
        { first: 'Tom', age: 37, company: 'Happysoft', employed: true },
      ],
      ['[name.first,age,missing]', ['Tom', 37]],
      ['[name.first,age].1', 37],
      ['[name.first,age]|1', 37],
      ['{first:name.first,x:age}', { first: 'Tom', x: 37 }],
      ['{friends.#(last=="Craig")}', { _: DOC.friends[1] }],
      ['name.[first,last]', ['Tom', 'Anderson']],
      [
        'friends.#.[first,age]',
        [
          ['Dale', 44],
          ['Roger', 68],
          ['Jane', 47],
        ],
      ],
      ['![1,2,3].1', 2],
      ['!{"a":1}.a', 1],
    ]);
  });
});

describe('gjson semantics around missing values', () => {
  it('after "|" modifiers and multipaths run on nothing only when the lookup got that far', () => {
    table([
      ['missing|@keys', []],
      ['missing.@keys', []],
      ['name.missing|@tostr', ''],
      ['missing.name|@keys', MISSING],
      ['name.first.x|@keys', MISSING],
      ['missing.[a,b]', []],
    ]);
    expect(get('name|@keys', 'a string')).toBe(MISSING);
    expect(get('name|@keys', [1, 2])).toEqual([]);
  });

  it('a wildcard with more path tries each matching key in turn', () => {
    const doc = { a1: { b: 1 }, a2: { c: 2 }, x: 'a' };
    table(
      [
        ['a*.c', 2],
        ['a*.b', 1],
        ['a*', { b: 1 }],
        ['*.d', MISSING],
      ],
      doc,
    );
  });

  it('null exists; strings, numbers and booleans have no keys; indexes may have leading zeros', () => {
    const doc = { n: null, s: 'abc', arr: ['a', 'b'], '': 5, '@timestamp': 't', 'a.b': { c: 1 } };
    table(
      [
        ['n', null],
        ['s.0', MISSING],
        ['arr.01', 'b'],
        ['arr.-1', MISSING],
        ['arr.x', MISSING],
        ['@timestamp', 't'],
        ['a\\.b.c', 1],
      ],
      doc,
    );
  });

  it('query comparisons by type: strings, numbers, booleans; null and objects only exist', () => {
    const doc = { xs: [1, 'two', { three: 3 }, [4], null, true, false, { three: 33 }] };
    table(
      [
        ['xs.#(=="two")', 'two'],
        // A string compares as a string ("two" > "0"), a number with the value read as one.
        ['xs.#(>0)#', [1, 'two']],
        ['xs.#(==true)', true],
        ['xs.#(!=true)#', [1, 'two', false]],
        ['xs.#(three>10).three', 33],
        ['xs.#(three)#.three', [3, 33]],
        ['xs.#(==null)', MISSING],
      ],
      doc,
    );
  });
});

describe('gjson syntax that is refused', () => {
  it.each([
    ['', 'path is empty'],
    ['friends.#(last=="Murphy"', 'is not closed'],
    ['[a,b', 'is not closed'],
    ['friends.#(last=="M")x', 'unexpected'],
    ['friends.#(last!x)', 'no known operator'],
    ['a..b', 'empty key'],
    ['a.', 'ends with "."'],
    ['..a', 'JSON-lines'],
    ['@dig', 'needs a path'],
    ['!{"a":', 'is not closed'],
    ['[a,,b]', 'empty path'],
  ])('%j: %s', (path, message) => {
    expect(() => compileGjson(path)).toThrow(PathError);
    expect(() => compileGjson(path)).toThrow(message);
  });

  it('unknown "@name" components are keys, as in gjson ("@timestamp" is a common field)', () => {
    expect(get('body.@timestamp', { body: { '@timestamp': 1 } })).toBe(1);
    expect(get('@nosuch', { '@nosuch': 2 })).toBe(2);
  });

  it('a query or wildcard pattern cannot blow up on long text', () => {
    const long = 'a'.repeat(20_000);
    const t = performance.now();
    expect(get('xs.#(%"*a*a*a*a*a*a*a*a*b")', { xs: [long] })).toBe(MISSING);
    expect(performance.now() - t).toBeLessThan(2_000);
  });
});

describe('gjson edges, checked against gjson v1.18.0', () => {
  const doc = {
    friends: [
      { first: 'Dale', last: 'Murphy' },
      { first: 'Jane', last: 'Murphy' },
    ],
  };
  it('what follows an object multipath inside a projection applies per element, "|" included', () => {
    expect(get('friends.#.{"f":first}|#(f=="Jane").f', doc)).toEqual([]);
    expect(get('friends.#.{"f":first}|0', doc)).toEqual([]);
    expect(get('friends.#.{"f":first}|f', doc)).toEqual(['Dale', 'Jane']);
    expect(get('friends.#(last=="Murphy")#.{"f":first}|0', doc)).toEqual([]);
    // Not for [...] multipaths and plain keys: there "|" applies to the collected list.
    expect(get('friends.#.[first]|0', doc)).toEqual(['Dale']);
    expect(get('friends.#.first|0', doc)).toBe('Dale');
    expect(get('friends.0.{"f":first}|f', doc)).toBe('Dale');
  });
  it('a string or number literal reads to the end of the path', () => {
    expect(get('!"s".x', doc)).toBe('s');
    expect(get('!"s"|x', doc)).toBe('s');
    expect(get('!5|x', doc)).toBe(0);
    expect(get('!-1.5e2.x', doc)).toBe(0);
    expect(get('!-1.5e2', doc)).toBe(-150);
    expect(get('!{"a":1}.a', doc)).toBe(1);
    expect(get('!true.x', doc)).toBe(MISSING);
  });
});
