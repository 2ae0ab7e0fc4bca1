// The Go text/template engine: the syntax and functions Sensor manifests use, Go's printing
// rules, errors that say what went wrong, and the bounds that keep a template from stalling.
import { describe, expect, it } from 'vitest';
import { compileTemplate, TemplateError } from '../../../src/sensors/params/index.ts';
import { exampleFiles, haveExamples, loadSensor } from './helpers.ts';

// Go's "${1}" replacement syntax, spelled so that it is not read as a JavaScript template.
const GO_GROUP_1 = ['$', '{1}'].join('');
const run = (src: string, data: unknown) => compileTemplate(src).execute(data);
const input = {
  Input: {
    body: {
      message: 'hello world',
      name: 'Ada  Love',
      n: 1234567,
      f: 3.5,
      tiny: 0.00001,
      ok: true,
      none: null,
      list: [1, 'a', { b: 2 }],
      pr: { number: 42, head: { sha: 'abcdef0123456' } },
    },
    subject: 'example',
  },
};

describe('Go templates: syntax', () => {
  const cases: Array<[string, string]> = [
    ['{{ .Input.body.message }}', 'hello world'],
    ['{{.Input.body.pr.number}}-{{ .Input.body.pr.head.sha | substr 0 7 }}', '42-abcdef0'],
    ['{{ .Input.body.name | nospace | lower }}-', 'adalove-'],
    ['{{ .Input.body.message | title }}', 'Hello World'],
    ['{{ .Input.body.missing }}', '<no value>'],
    ['{{ .Input.body.none }}', '<nil>'],
    ['{{ .Input.body.list }}', '[1 a map[b:2]]'],
    ['{{ .Input.body.pr }}', 'map[head:map[sha:abcdef0123456] number:42]'],
    [
      '{{ .Input.body.n }} {{ .Input.body.f }} {{ .Input.body.tiny }} {{ .Input.body.ok }}',
      '1234567 3.5 1e-05 true',
    ],
    ['a  {{- " b " -}}  c', 'a b c'],
    ['{{/* a comment */}}x{{- /* trimmed */ -}} y', 'xy'],
    ['{{ if eq .Input.subject "example" }}yes{{ else }}no{{ end }}', 'yes'],
    ['{{ if .Input.body.missing }}a{{ else if .Input.body.ok }}b{{ else }}c{{ end }}', 'b'],
    ['{{ range $i, $v := .Input.body.list }}{{ $i }}={{ $v }};{{ end }}', '0=1;1=a;2=map[b:2];'],
    ['{{ range .Input.body.pr }}{{ . }},{{ end }}', 'map[sha:abcdef0123456],42,'],
    ['{{ range .Input.body.missing }}x{{ else }}empty{{ end }}', 'empty'],
    ['{{ range $v := .Input.body.list }}{{ if eq $v "a" }}{{ break }}{{ end }}{{ $v }}{{ end }}', '1'],
    ['{{ with .Input.body.pr }}{{ .number }}/{{ $.Input.subject }}{{ end }}', '42/example'],
    ['{{ $x := .Input.subject }}{{ $x = upper $x }}{{ $x }}', 'EXAMPLE'],
    ['{{ (index .Input.body.list 2).b }} {{ index .Input.body "message" }}', '2 hello world'],
    ['{{ and 1 0 }} {{ or 0 "" "z" }} {{ not false }}', '0 z true'],
    ['{{ len .Input.body.list }} {{ len "héllo" }}', '3 6'],
    [
      '{{ printf "%s has %d items (%.1f%%) %q %v" "x" 3 12.345 "q" .Input.body.ok }}',
      'x has 3 items (12.3%) "q" true',
    ],
    ['{{ print "a" 1 2 "b" }}|{{ println "x" }}', 'a1 2b|x\n'],
    ['{{ lt 1 2 }} {{ ge "b" "a" }} {{ ne 1 2 }} {{ eq 1 2 3 1 }}', 'true true true true'],
    ['{{ `raw\\n` }}{{ "esc\\t" }}', 'raw\\nesc\t'],
  ];
  for (const [src, want] of cases) it(src, () => expect(run(src, input)).toBe(want));
});

describe('Go templates: sprig functions', () => {
  const cases: Array<[string, string]> = [
    ['{{ "aGVsbG8gd29ybGQ=" | b64dec }}', 'hello world'],
    ['{{ .Input.body.message | b64enc }}', 'aGVsbG8gd29ybGQ='],
    ['{{ "%%%" | b64dec }}', 'illegal base64 data at input byte 0'],
    [
      '{{ "  x  " | trim }}|{{ trimAll "-" "--x--" }}|{{ trimPrefix "v" "v1.2" }}|{{ trimSuffix ".git" "r.git" }}',
      'x|x|1.2|r',
    ],
    ['{{ upper "a" }}{{ lower "B" }} {{ quote "a\\"b" }} {{ squote "c" }}', 'Ab "a\\"b" \'c\''],
    [
      '{{ default "d" .Input.body.missing }} {{ default "d" "" }} {{ default "d" "v" }} {{ empty "" }}',
      'd d v true',
    ],
    ['{{ coalesce "" .Input.body.none "c" }} {{ ternary "y" "n" true }}', 'c y'],
    ['{{ .Input.body.pr | toJson }}', '{"number":42,"head":{"sha":"abcdef0123456"}}'],
    ['{{ "<&>" | toJson }} {{ "<&>" | toRawJson }}', '"\\u003c\\u0026\\u003e" "<&>"'],
    ['{{ (fromJson "{\\"a\\":[1,2]}").a }}', '[1 2]'],
    [
      '{{ contains "ell" "hello" }} {{ hasPrefix "he" "hello" }} {{ hasSuffix "lo" "hello" }}',
      'true true true',
    ],
    [
      '{{ replace "o" "0" "foo" }} {{ repeat 3 "ab" }} {{ trunc 3 "abcdef" }} {{ trunc -2 "abcdef" }}',
      'f00 ababab abc ef',
    ],
    ['{{ splitList "," "a,b,c" | join "-" }} {{ (split "/" "x/y")._1 }}', 'a-b-c y'],
    ['{{ list 1 2 3 | first }} {{ list 1 2 3 | last }} {{ dict "k" "v" | toJson }}', '1 3 {"k":"v"}'],
    [
      '{{ add 1 2 3 }} {{ sub 5 2 }} {{ mul 2 3 }} {{ div 7 2 }} {{ mod 7 2 }} {{ max 1 5 2 }} {{ add1 9 }}',
      '6 3 6 3 1 5 10',
    ],
    ['{{ int "42" }} {{ float64 "2.5" }} {{ toString 12 }} {{ atoi "7" }}', '42 2.5 12 7'],
    [
      `{{ regexMatch "^v[0-9]+$" "v12" }} {{ regexFind "[0-9]+" "ab123c" }} {{ regexReplaceAll "a(x*)b" "-ab-axxb-" "${GO_GROUP_1}W" }}`,
      'true 123 -W-xxW-',
    ],
    ['{{ sha256sum "abc" | trunc 8 }}', 'ba7816bf'],
    ['{{ indent 2 "a\\nb" }}|{{ nindent 2 "c" }}', '  a\n  b|\n  c'],
    [
      '{{ hasKey .Input.body "ok" }} {{ keys .Input.body.pr | join "," }} {{ get .Input.body.pr "number" }}',
      'true head,number 42',
    ],
    ['{{ date "2006-01-02T15:04:05Z07:00" (toDate "" "2024-03-01T10:20:30Z") }}', '2024-03-01T10:20:30Z'],
  ];
  for (const [src, want] of cases) it(src, () => expect(run(src, input)).toBe(want));

  it('uuidv4 and now give fresh values', () => {
    expect(run('{{ uuidv4 }}', {})).toMatch(/^[0-9a-f-]{36}$/);
    expect(Number(run('{{ now | unixEpoch }}', {}))).toBeGreaterThan(1_700_000_000);
  });
});

describe('Go templates: errors and bounds', () => {
  const parseErrors: Array<[string, RegExp]> = [
    ['{{ nosuch .Input }}', /function "nosuch" not defined/],
    ['{{ env "HOME" }}', /function "env" not defined/],
    ['{{ if .a }}x', /missing \{\{end\}\}/],
    ['{{ end }}', /unexpected \{\{end\}\}/],
    ['{{ .a', /unclosed action/],
    ['{{ "abc }}', /unterminated quoted string|unclosed action/],
    ['{{ template .x }}', /quoted template name/],
    ['line1\n{{ if }}', /tpl:2: missing value for if/],
  ];
  for (const [src, re] of parseErrors) {
    it(`parse error: ${JSON.stringify(src)}`, () => {
      expect(() => compileTemplate(src)).toThrow(TemplateError);
      expect(() => compileTemplate(src)).toThrow(re);
    });
  }

  const execErrors: Array<[string, RegExp]> = [
    ['{{ .Input.body.message.x }}', /can't evaluate field x in type string/],
    ['{{ .Input.body.none.x }}', /nil pointer evaluating interface \{\}\.x/],
    ['{{ .Input.body.missing | upper }}', /error calling upper: invalid value; expected string/],
    ['{{ $nope }}', /undefined variable: \$nope/],
    ['{{ div 1 0 }}', /integer divide by zero/],
    ['{{ index .Input.body.list 9 }}', /index out of range/],
    ['{{ fail "stop here" }}', /error calling fail: stop here/],
    ['{{ .Input.body.message 1 }}', /can't give argument to non-function/],
  ];
  for (const [src, re] of execErrors) {
    it(`execution error: ${src}`, () => {
      const t = compileTemplate(src);
      expect(() => t.execute(input)).toThrow(TemplateError);
      expect(() => t.execute(input)).toThrow(re);
    });
  }

  it('a missing field of a missing field is "<no value>", as in Go', () => {
    expect(run('{{ .Input.nope.deeper }}', input)).toBe('<no value>');
  });

  it('runaway templates are stopped', () => {
    expect(() => run('{{ range 100000 }}{{ range 100000 }}{{ end }}{{ end }}', {})).toThrow(
      /more than \d+ steps/,
    );
    expect(() => run('{{ repeat 100000000 "x" }}', {})).toThrow(/longer than/);
    expect(() => run('{{ range 2000 }}{{ repeat 1000 "x" }}{{ end }}', {})).toThrow(/output longer than/);
  });

  it('bounds what one call can allocate before any step or output check (sizes from the event)', () => {
    // An integer range is iterated lazily: a huge count costs steps, never an array of that size.
    const t0 = performance.now();
    expect(() => run('{{ range 1000000000000 }}{{ end }}', {})).toThrow(/more than \d+ steps/);
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(() => run('{{ indent .n "a" }}', { n: 500_000_000 })).toThrow(/longer than/);
    expect(() => run('{{ nindent 1000 .s }}', { s: '\n'.repeat(10_000) })).toThrow(/longer than/);
    expect(() => run('{{ replace "" .s .s }}', { s: 'x'.repeat(100_000) })).toThrow(/longer than/);
    expect(run('{{ printf "%*d" .w 7 }}', { w: 1_000_000_000 }).length).toBeLessThanOrEqual(1 << 16);
    expect(run('{{ indent 2 "a" }}|{{ replace "a" "b" "aa" }}', {})).toBe('  a|bb');
  });

  it('never evaluates JavaScript: constructor and prototype are plain missing keys', () => {
    expect(run('{{ .constructor }}|{{ .__proto__ }}', {})).toBe('<no value>|<no value>');
    expect(() => compileTemplate('{{ constructor }}')).toThrow(/not defined/);
    expect(run('{{ .Input.constructor.name }}', { Input: {} })).toBe('<no value>');
  });
});

describe.skipIf(!haveExamples)('Go templates in the upstream examples', () => {
  it('every dataTemplate, contextTemplate and data filter template parses', () => {
    const found: string[] = [];
    const walk = (v: unknown) => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object')
        for (const [k, x] of Object.entries(v)) {
          if ((k === 'dataTemplate' || k === 'contextTemplate' || k === 'template') && typeof x === 'string')
            found.push(x);
          else walk(x);
        }
    };
    for (const f of exampleFiles())
      walk(
        loadSensor(f)
          .spec.triggers.map((t) => t.parameters ?? [])
          .concat(loadSensor(f).spec.triggers.map((t) => t.template ?? {}) as never),
      );
    expect(found.length).toBeGreaterThanOrEqual(5);
    for (const src of found) expect(() => compileTemplate(src), src).not.toThrow();
  });
});

describe('Go templates: named templates and sprig ranges (valid upstream, once refused)', () => {
  it('{{define}}, {{template}} with and without a pipeline, {{block}}', () => {
    expect(run('{{define "x"}}[{{.}}]{{end}}a{{template "x" .Input.subject}}b', input)).toBe('a[example]b');
    // Defined after use, as text/template allows; no pipeline means nil data.
    expect(run('{{template "x"}}{{define "x"}}<{{.}}>{{end}}', input)).toBe('<<no value>>');
    expect(run('{{block "b" .Input.body}}n={{.pr.number}}{{end}}!', input)).toBe('n=42!');
    // A fresh scope: $ is the template's data, outer variables are not visible.
    expect(run('{{define "x"}}{{$}}{{end}}{{$v := 1}}{{template "x" 5}}', input)).toBe('5');
    expect(() =>
      compileTemplate('{{define "x"}}{{$v}}{{end}}{{$v := 1}}{{template "x"}}').execute(input),
    ).toThrow(/undefined variable/);
  });

  it('refuses what text/template refuses and stops runaway recursion', () => {
    expect(() => run('{{template "nope"}}', input)).toThrow(/template "nope" not defined/);
    expect(() => compileTemplate('{{if true}}{{define "x"}}{{end}}{{end}}')).toThrow(/top level/);
    expect(() => compileTemplate('{{define "x"}}a{{end}}{{define "x"}}b{{end}}')).toThrow(
      /multiple definition/,
    );
    expect(() => compileTemplate('{{template .x}}')).toThrow(/quoted template name/);
    expect(() => run('{{define "r"}}{{template "r" .}}{{end}}{{template "r" .}}', input)).toThrow(
      /nested more than/,
    );
  });

  it('sprig until and untilStep', () => {
    expect(run('{{range until 3}}{{.}},{{end}}', input)).toBe('0,1,2,');
    expect(run('{{until -3}}', input)).toBe('[0 -1 -2]');
    expect(run('{{untilStep 0 10 3}} {{untilStep 5 0 -2}} {{untilStep 5 0 1}}', input)).toBe(
      '[0 3 6 9] [5 3 1] []',
    );
    expect(() => run('{{until 100000000}}', input)).toThrow(/more than/);
  });
});
