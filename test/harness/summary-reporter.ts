// Prints, after vitest's own summary, one plain line per failed test (file, name and the start of
// its error, on one line) and then `tests: N passed, N failed, N skipped`, so the tail of a CI log
// (often all a CI excerpt keeps) says what failed and why, in a form any tool can read.
import type { Reporter, TestModule } from 'vitest/node';

/** How much of a failure's message the closing lines keep (characters). */
const MESSAGE_CHARS = 600;

/** ANSI colour codes (ESC [ … m), which vitest puts into some messages. */
const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');

/** One line: ANSI colour codes removed, whitespace collapsed, cut to MESSAGE_CHARS. */
function oneLine(text: string): string {
  const plain = text.replace(ANSI, '').replace(/\s+/g, ' ').trim();
  return plain.length > MESSAGE_CHARS ? `${plain.slice(0, MESSAGE_CHARS)}…` : plain;
}

export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>, errors: ReadonlyArray<unknown>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    const lines: string[] = [];
    for (const mod of modules) {
      let moduleFailed = 0;
      for (const test of mod.children.allTests()) {
        const result = test.result();
        if (result.state === 'passed') passed++;
        else if (result.state === 'failed') {
          moduleFailed++;
          const why = result.errors.map((e) => e.message ?? String(e)).join(' | ');
          lines.push(
            `failed: ${mod.moduleId.split('/').slice(-3).join('/')} > ${test.fullName}: ${oneLine(why)}`,
          );
        } else skipped++;
      }
      // A file whose hooks or collection failed is a failure even if no single test is marked so.
      if (mod.state() === 'failed' && moduleFailed === 0) {
        moduleFailed = 1;
        const why = mod
          .errors()
          .map((e) => e.message ?? String(e))
          .join(' | ');
        lines.push(`failed: ${mod.moduleId.split('/').slice(-3).join('/')} (file): ${oneLine(why)}`);
      }
      failed += moduleFailed;
    }
    for (const e of errors)
      lines.push(`failed (unhandled): ${oneLine(e instanceof Error ? e.message : String(e))}`);
    failed += errors.length;
    const detail = lines.length ? `\n${lines.join('\n')}` : '';
    process.stdout.write(`${detail}\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
