// The Dockerfile, checked without a container engine: its stages parse, every file it copies
// from the build context exists and is not left out by .dockerignore, and the image is built the
// way the cluster manifests expect (Node 24, production dependencies, non-root, `sluice`).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('../..', import.meta.url).pathname;

interface Instruction {
  op: string;
  args: string;
  line: number;
}
interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

/** Instructions with continuation lines joined and comments dropped. */
function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let buf = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!buf && (line === '' || line.startsWith('#'))) return;
    if (buf && line.startsWith('#')) return;
    if (!buf) start = i + 1;
    buf += (buf ? ' ' : '') + line.replace(/\\$/, '').trim();
    if (line.endsWith('\\')) return;
    const m = /^(\w+)\s*(.*)$/.exec(buf)!;
    out.push({ op: m[1]!.toUpperCase(), args: m[2]!, line: start });
    buf = '';
  });
  return out;
}

function stages(text: string): { args: Record<string, string>; stages: Stage[] } {
  const args: Record<string, string> = {};
  const list: Stage[] = [];
  for (const ins of instructions(text)) {
    if (ins.op === 'ARG' && list.length === 0) {
      const [k, v = ''] = ins.args.split('=', 2);
      args[k!.trim()] = v.trim();
    } else if (ins.op === 'FROM') {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args)!;
      const from = m[1]!.replace(/\$\{?(\w+)\}?/g, (_, k: string) => args[k] ?? '');
      list.push({ from, ...(m[2] ? { name: m[2] } : {}), instructions: [] });
    } else {
      if (!list.length) throw new Error(`line ${ins.line}: ${ins.op} before FROM`);
      list.at(-1)!.instructions.push(ins);
    }
  }
  return { args, stages: list };
}

/** COPY/ADD operands: flags, sources, destination (shell or JSON form). */
function copyOperands(args: string): { flags: Record<string, string>; sources: string[]; dest: string } {
  const flags: Record<string, string> = {};
  let rest = args;
  for (let m = /^--(\w[\w-]*)=(\S+)\s+/.exec(rest); m; m = /^--(\w[\w-]*)=(\S+)\s+/.exec(rest)) {
    flags[m[1]!] = m[2]!;
    rest = rest.slice(m[0].length);
  }
  const parts = rest.trim().startsWith('[') ? (JSON.parse(rest) as string[]) : rest.trim().split(/\s+/);
  return { flags, sources: parts.slice(0, -1), dest: parts.at(-1)! };
}

/** .dockerignore as Docker reads it: last matching pattern wins, a match on a parent folder counts. */
function dockerignore(text: string): (path: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pattern = (negate ? l.slice(1) : l).trim().replace(/^\/+/, '').replace(/\/+$/, '');
      const re = pattern
        .split('/')
        .map((seg) =>
          seg === '**'
            ? '.*'
            : seg
                .replace(/[.+^${}()|\\]/g, '\\$&')
                .replace(/\*/g, '[^/]*')
                .replace(/\?/g, '[^/]'),
        )
        .join('/')
        .replace(/\.\*\//g, '(?:.*/)?');
      return { negate, re: new RegExp(`^${re}$`) };
    });
  return (path: string) => {
    const parts = path.split('/');
    const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
    let excluded = false;
    for (const r of rules) if (prefixes.some((p) => r.re.test(p))) excluded = !r.negate;
    return excluded;
  };
}

function filesUnder(rel: string): string[] {
  const abs = join(ROOT, rel);
  if (!statSync(abs).isDirectory()) return [rel];
  return readdirSync(abs).flatMap((f) => filesUnder(`${rel}/${f}`));
}

const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const parsed = stages(dockerfile);
const ignored = dockerignore(
  existsSync(join(ROOT, '.dockerignore')) ? readFileSync(join(ROOT, '.dockerignore'), 'utf8') : '',
);

describe('Dockerfile', () => {
  it('has a dependency stage and a runtime stage on Node 24', () => {
    expect(parsed.stages.length).toBeGreaterThanOrEqual(2);
    for (const s of parsed.stages) expect(s.from, 'base image').toMatch(/^node:24[.-]/);
    const install = parsed.stages[0]!.instructions.find(
      (i) => i.op === 'RUN' && /npm (install|ci)/.test(i.args),
    );
    expect(install?.args, 'production dependencies only').toContain('--omit=dev');
  });

  it('copies only files that exist and that .dockerignore lets into the build context', () => {
    let copied = 0;
    parsed.stages.forEach((stage, index) => {
      for (const ins of stage.instructions.filter((i) => i.op === 'COPY' || i.op === 'ADD')) {
        const { flags, sources } = copyOperands(ins.args);
        if (flags.from) {
          const earlier = parsed.stages.slice(0, index).some((s) => s.name === flags.from);
          expect(earlier, `line ${ins.line}: --from=${flags.from} names an earlier stage`).toBe(true);
          continue;
        }
        for (const src of sources) {
          const rel = src.replace(/^\.\//, '').replace(/\/$/, '');
          expect(existsSync(join(ROOT, rel)), `line ${ins.line}: ${src} exists`).toBe(true);
          const files = filesUnder(rel);
          const left = files.filter((f) => ignored(f));
          expect(left, `line ${ins.line}: files of ${src} excluded by .dockerignore`).toEqual([]);
          copied += files.length;
        }
      }
    });
    expect(copied).toBeGreaterThan(10);
  });

  it('keeps tests, tools and local state out of the build context', () => {
    for (const p of [
      'node_modules/yaml/package.json',
      'test/unit/install.test.ts',
      'e2e',
      '.git/HEAD',
      'tools',
      '.sluice',
    ]) {
      expect(ignored(p), p).toBe(true);
    }
  });

  it('runs `sluice` as a non-root user', () => {
    const final = parsed.stages.at(-1)!.instructions;
    const user = final.filter((i) => i.op === 'USER').at(-1)?.args ?? 'root';
    expect(user).not.toMatch(/^(root|0)(:|$)/);
    // Numeric, so runAsNonRoot in the Deployment can check it without /etc/passwd.
    expect(user).toMatch(/^[1-9]\d*(:\d+)?$/);
    const entry = JSON.parse(final.find((i) => i.op === 'ENTRYPOINT')!.args) as string[];
    expect(entry).toEqual(['sluice']);
    const link = final.find((i) => i.op === 'RUN' && i.args.includes('/usr/local/bin/sluice'));
    expect(link?.args).toContain('ln -s /app/bin/sluice /usr/local/bin/sluice');
    // bin/sluice asks scripts/node.sh for Node; both must be in the image.
    const copiedSources = final
      .filter((i) => i.op === 'COPY')
      .flatMap((i) => copyOperands(i.args).sources.map((s) => s.replace(/\/$/, '')));
    for (const p of ['bin/sluice', 'scripts/node.sh', 'package.json']) expect(copiedSources).toContain(p);
  });

  it('ships the sources built to JavaScript (dist/), not src/: bin/sluice runs dist/ only where there is no src/', () => {
    const final = parsed.stages.at(-1)!.instructions;
    const copies = final.filter((i) => i.op === 'COPY').map((i) => copyOperands(i.args));
    expect(copies.flatMap((c) => c.sources)).not.toContain('src');
    const dist = copies.find((c) => c.sources.includes('/app/dist'));
    expect(dist?.flags.from).toBe('build');
    const build = parsed.stages.find((st) => st.name === 'build')!.instructions;
    expect(build.some((i) => i.op === 'COPY' && copyOperands(i.args).sources.includes('src'))).toBe(true);
    expect(build.some((i) => i.op === 'RUN' && i.args.includes('scripts/build.sh /app/dist'))).toBe(true);
    const launcher = readFileSync(join(ROOT, 'bin/sluice'), 'utf8');
    expect(launcher).toContain('[[ ! -d "$here/src" && -f "$here/dist/cli/main.js" ]]');
  });
});

describe('.dockerignore matching', () => {
  it('follows Docker rules: parent matches, negation, last match wins, **', () => {
    const m = dockerignore('*\n!src\n!bin/sluice\nsrc/**/*.test.ts\n');
    expect(m('README.md')).toBe(true);
    expect(m('src/cli/main.ts')).toBe(false);
    expect(m('src/a/b.test.ts')).toBe(true);
    expect(m('src/b.test.ts')).toBe(true);
    expect(m('bin/sluice')).toBe(false);
    expect(m('bin/other')).toBe(true);
  });
});
