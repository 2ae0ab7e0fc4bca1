// Asking the person at the terminal before a destructive step (`sluice dlq purge`).
import { createInterface } from 'node:readline/promises';

/** True when both standard input and standard error are terminals, so a question can be answered. */
export function interactive(
  input: { isTTY?: boolean } = process.stdin,
  output: { isTTY?: boolean } = process.stderr,
): boolean {
  return input.isTTY === true && output.isTTY === true;
}

/**
 * Asks `question` (on `output`, stderr by default, so stdout stays data) and resolves true only
 * for an answer of y or yes (any case); anything else, or end of input, is no.
 */
export async function confirm(
  question: string,
  input: NodeJS.ReadableStream = process.stdin,
  output: NodeJS.WritableStream = process.stderr,
): Promise<boolean> {
  const rl = createInterface({ input, output });
  try {
    const ended = new Promise<string>((resolve) => rl.once('close', () => resolve('')));
    const answer = await Promise.race([rl.question(`${question} [y/N] `), ended]);
    return /^\s*y(es)?\s*$/i.test(answer);
  } finally {
    rl.close();
  }
}
