// Standard input as a manifest source ("-" in `sluice lint -`, `sluice dev -f -`,
// `sluice dlq replay -f -`). Read asynchronously to its end: a synchronous read of fd 0 fails with
// EAGAIN when the input is a pipe whose writer has not written yet (`helm template ... | sluice lint -`).

/** The path that stands for standard input. */
export const STDIN = '-';
/** The name standard input goes by in messages. */
export const STDIN_NAME = '<stdin>';

/**
 * Reads `input` (standard input by default) until end of file and returns it as UTF-8 text.
 * On a terminal it first says on stderr how to end the input, since it waits for that.
 */
export async function readStdin(
  input: NodeJS.ReadableStream & { isTTY?: boolean } = process.stdin,
  notice: (line: string) => unknown = (line) => process.stderr.write(line),
): Promise<string> {
  if (input.isTTY) notice('reading manifests from standard input (end with Ctrl-D)\n');
  const chunks: Buffer[] = [];
  for await (const chunk of input) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}

/** True when `paths` name standard input. */
export const readsStdin = (paths: readonly string[]): boolean => paths.includes(STDIN);
