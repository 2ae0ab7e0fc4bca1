// `sluice lint FILE|DIR|-...`: validates manifests offline with the sluice schemas (the same ones
// the CRDs and the controller use, including cron, time zone, path and streamConfig checks) and
// compiles each Sensor dependency's data filters and expressions as the Sensor would. Prints
// `file: kind/name: spec.path: message` per problem; exit status 1 on any problem, 0 otherwise,
// 2 when a path given does not exist or a file cannot be read (a user mistake, see errors.ts).
// "-" reads the manifests from standard input.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { type PodPolicy, podPolicyFromEnv, podSettingRefusals } from '../api/pod-policy.ts';
import type { SensorSpec } from '../api/sensor.ts';
import { parseStreamConfig, streamSettingWarnings } from '../api/stream-config.ts';
import { type LoadedObject, type Problem, validateText } from '../api/validate.ts';
import { compileDataFilters } from '../sensors/match/data.ts';
import { compileExpr } from '../sensors/match/expr.ts';
import { CliError, fileErrorText, USER_ERROR_EXIT } from './errors.ts';
import { supportWarnings } from './lint-support.ts';
import { readStdin, readsStdin, STDIN, STDIN_NAME } from './stdin.ts';

const EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

/**
 * Manifest files under `path` (a file, or a folder walked recursively), sorted. Throws the
 * errno error when `path` itself cannot be looked at.
 */
export function collect(path: string, out: string[]): void {
  if (path === STDIN) {
    out.push(path);
    return;
  }
  const st = statSync(path);
  if (st.isDirectory()) {
    for (const entry of readdirSync(path).sort()) {
      if (entry.startsWith('.')) continue;
      const p = join(path, entry);
      let folder = false;
      try {
        folder = statSync(p).isDirectory();
      } catch {
        // A dangling link or a file that cannot be looked at: reading it names the problem.
      }
      if (folder) collect(p, out);
      else if (EXTENSIONS.has(extname(entry))) out.push(p);
    }
  } else {
    out.push(path);
  }
}

export interface LintSummary {
  files: number;
  objects: number;
  /** Findings, unreadable files included. */
  problems: number;
  warnings: number;
  /** Files or folders that could not be read (missing, no permission): exit status 2. */
  unreadable: number;
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

/** Problems the Sensor would hit when it compiles its dependencies (bad regex, number, template...). */
export function sensorProblems(o: LoadedObject): Problem[] {
  if (o.kind !== 'Sensor') return [];
  const spec = (o.value as { spec: SensorSpec }).spec;
  const object = `Sensor/${o.name}`;
  const out: Problem[] = [];
  spec.dependencies.forEach((d, i) => {
    const at = `spec.dependencies[${i}].filters`;
    d.filters?.data?.forEach((f, j) => {
      try {
        compileDataFilters([f], false, '');
      } catch (err) {
        const message = (err as Error).message.replace(/^\.data\[0\] \(path "(?:[^"\\]|\\.)*"\): /, '');
        out.push({ object, path: `${at}.data[${j}]`, message });
      }
    });
    d.filters?.exprs?.forEach((e, j) => {
      try {
        compileExpr(
          e.expr,
          e.fields.map((x) => x.name),
        );
      } catch (err) {
        out.push({ object, path: `${at}.exprs[${j}].expr`, message: (err as Error).message });
      }
    });
  });
  return out;
}

/**
 * Pod settings the controller would refuse under `policy` (the same check, pod-policy.ts): the
 * object would be accepted by the API server and then never deployed.
 */
export function podProblems(o: LoadedObject, policy: PodPolicy): Problem[] {
  const object = `${o.kind}/${o.name}`;
  return podSettingRefusals(o.value as { kind: string }, policy).map((r) => ({
    object,
    path: r.path,
    message: r.message,
  }));
}

/** One file's findings, printed and counted into `summary`. */
function lintFile(
  name: string,
  text: string,
  write: (line: string) => void,
  summary: LintSummary,
  policy: PodPolicy,
): number {
  const result = validateText(text);
  const problems = [...result.problems];
  for (const o of result.objects) {
    const more = [...sensorProblems(o), ...podProblems(o, policy)].map((p) => ({ ...p, line: o.line }));
    if (more.length) problems.push(...more);
    else summary.objects++;
  }
  const where = (p: Problem) => {
    const at = [p.object, p.path].filter(Boolean).join(': ');
    return at ? `${at}: ` : p.line ? `line ${p.line}: ` : '';
  };
  for (const p of problems) {
    summary.problems++;
    write(`${name}: ${where(p)}${p.message}`);
  }
  for (const p of result.warnings) {
    summary.warnings++;
    write(`${name}: ${where(p)}warning: ${p.message}`);
  }
  for (const o of result.objects) {
    const f = busFindings(o);
    const label = `${o.kind}/${o.name}`;
    for (const m of f.problems) {
      summary.problems++;
      write(`${name}: ${label}: ${m}`);
    }
    for (const m of [...f.warnings, ...supportWarnings(o)]) {
      summary.warnings++;
      write(`${name}: ${label}: warning: ${m}`);
    }
  }
  return result.documents;
}

/**
 * Lints every manifest under `paths` (files, folders, "-" for standard input), writing one line
 * per finding. A path that holds no manifest at all (an empty file, folder or standard input)
 * is a problem: nothing was checked. `read` reads one file, "-" included (files only by default).
 */
export function lint(
  paths: string[],
  write: (line: string) => void,
  read: (file: string) => string = (file) => readFileSync(file, 'utf8'),
  policy: PodPolicy = {},
): LintSummary {
  const summary: LintSummary = { files: 0, objects: 0, problems: 0, warnings: 0, unreadable: 0 };
  const cannotRead = (name: string, err: unknown) => {
    write(`${(err as NodeJS.ErrnoException).path ?? name}: cannot read: ${fileErrorText(err)}`);
    summary.problems++;
    summary.unreadable++;
  };
  for (const p of paths) {
    const files: string[] = [];
    try {
      collect(p, files);
    } catch (err) {
      cannotRead(p, err);
      continue;
    }
    let documents = 0;
    let unreadable = false;
    for (const file of files) {
      const name = file === STDIN ? STDIN_NAME : file;
      summary.files++;
      let text: string;
      try {
        text = read(file);
      } catch (err) {
        cannotRead(name, err);
        unreadable = true;
        continue;
      }
      try {
        documents += lintFile(name, text, write, summary, policy);
      } catch (err) {
        // Every reader above reports its own problems; this is the guard against a stack trace.
        write(`${name}: cannot check: ${(err as Error).message}`);
        summary.problems++;
        documents++;
      }
    }
    if (documents === 0 && !unreadable) {
      const what = p === STDIN ? STDIN_NAME : p;
      write(
        `${what}: no manifests found${files.length === 0 ? ' (no .yaml, .yml or .json files)' : ' (empty input)'}`,
      );
      summary.problems++;
    }
  }
  return summary;
}

/**
 * `sluice lint PATH...`: exit status 0 clean, 1 problems found, 2 a file that could not be read.
 * A path given that does not exist throws (a one-line user error, nothing checked).
 */
export async function runLint(
  paths: string[],
  opts: { quiet?: boolean; allowPodSettings?: string },
): Promise<number> {
  if (paths.length === 0) {
    throw new CliError('Usage', 'give at least one file or folder, or "-" for standard input');
  }
  let policy: PodPolicy;
  try {
    // The controller's own environment (kubectl exec into it) gives the same answers it would.
    policy = podPolicyFromEnv(process.env, opts.allowPodSettings);
  } catch (err) {
    throw new CliError('Usage', (err as Error).message);
  }
  for (const p of paths) if (p !== STDIN) statSync(p);
  const stdin = readsStdin(paths) ? await readStdin() : '';
  // A closed pipe (`sluice lint dir | head`) ends the output, not the process with a stack trace.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(1);
  });
  const summary = lint(
    paths,
    (line) => process.stdout.write(`${line}\n`),
    (file) => (file === STDIN ? stdin : readFileSync(file, 'utf8')),
    policy,
  );
  if (!opts.quiet) {
    const unreadable = summary.unreadable ? `, ${summary.unreadable} unreadable` : '';
    process.stderr.write(
      `${summary.files} file(s), ${summary.objects} valid object(s), ${summary.problems} problem(s)${unreadable}, ${summary.warnings} warning(s)\n`,
    );
  }
  if (summary.unreadable > 0) return USER_ERROR_EXIT;
  return summary.problems > 0 ? 1 : 0;
}
