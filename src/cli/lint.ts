// `sluice lint FILE|DIR...`: validates manifests offline with the sluice schemas. Prints
// `file: kind/name: spec.path: message` per problem; exit status 1 on any problem, 0 otherwise.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { parseStreamConfig, streamSettingWarnings } from '../api/stream-config.ts';
import { type LoadedObject, validateText } from '../api/validate.ts';

const EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

/** Manifest files under `path` (a file, or a folder walked recursively), sorted. */
export function collect(path: string, out: string[]): void {
  const st = statSync(path);
  if (st.isDirectory()) {
    for (const entry of readdirSync(path).sort()) {
      if (entry.startsWith('.')) continue;
      const p = join(path, entry);
      if (statSync(p).isDirectory() || EXTENSIONS.has(extname(entry))) collect(p, out);
    }
  } else {
    out.push(path);
  }
}

export interface LintSummary {
  files: number;
  objects: number;
  problems: number;
  warnings: number;
}

/**
 * An EventBus's streamConfig: errors (as problems) and settings that lose accepted events or
 * count history against the limits (as warnings, which do not fail the lint).
 */
export function busFindings(o: LoadedObject): { problems: string[]; warnings: string[] } {
  if (o.kind !== 'EventBus') return { problems: [], warnings: [] };
  const spec = (o.value as { spec?: Record<string, { streamConfig?: string } | undefined> }).spec ?? {};
  const field = spec.jetstream ? 'jetstream' : spec.jetstreamExotic ? 'jetstreamExotic' : undefined;
  if (!field) return { problems: [], warnings: [] };
  const parsed = parseStreamConfig(spec[field]?.streamConfig);
  const at = `spec.${field}.streamConfig`;
  if (!parsed.ok) return { problems: parsed.errors.map((e) => `${at}: ${e}`), warnings: [] };
  const w = streamSettingWarnings(parsed.settings);
  return {
    problems: [],
    warnings: [...w.lossy.map((m) => `${at}: lossy: ${m}`), ...w.history.map((m) => `${at}: ${m}`)],
  };
}

export function lint(paths: string[], write: (line: string) => void): LintSummary {
  const files: string[] = [];
  const summary: LintSummary = { files: 0, objects: 0, problems: 0, warnings: 0 };
  for (const p of paths) {
    try {
      collect(p, files);
    } catch (err) {
      write(`${p}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      summary.problems++;
    }
  }
  for (const file of files) {
    summary.files++;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      write(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      summary.problems++;
      continue;
    }
    const result = validateText(text);
    summary.objects += result.objects.length;
    for (const p of result.problems) {
      summary.problems++;
      const where = [p.object, p.path].filter(Boolean).join(': ');
      write(`${file}: ${where ? `${where}: ` : p.line ? `line ${p.line}: ` : ''}${p.message}`);
    }
    for (const o of result.objects) {
      const f = busFindings(o);
      const label = `${o.kind}/${o.name}`;
      for (const m of f.problems) {
        summary.problems++;
        write(`${file}: ${label}: ${m}`);
      }
      for (const m of f.warnings) {
        summary.warnings++;
        write(`${file}: ${label}: warning: ${m}`);
      }
    }
  }
  return summary;
}

export function runLint(paths: string[], opts: { quiet?: boolean }): number {
  if (paths.length === 0) {
    process.stderr.write('sluice lint: give at least one file or folder\n');
    return 2;
  }
  const summary = lint(paths, (line) => process.stdout.write(`${line}\n`));
  if (!opts.quiet) {
    process.stderr.write(
      `${summary.files} file(s), ${summary.objects} valid object(s), ${summary.problems} problem(s), ${summary.warnings} warning(s)\n`,
    );
  }
  return summary.problems > 0 ? 1 : 0;
}
