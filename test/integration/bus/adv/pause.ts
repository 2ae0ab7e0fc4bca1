// Pausing a test's nats-server (SIGSTOP) and knowing it is paused before the test goes on.
import { readFileSync } from 'node:fs';
import { waitFor } from '../../../harness/proc.ts';
import { natsPid } from '../../eventsources/front-door.ts';

/** Process state letter of `pid` (/proc/<pid>/stat: "T" when stopped). */
const stateOf = (pid: number): string => readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '')[0]!;

/** SIGSTOPs the nats-server listening on `port`; resolves once it is stopped, with its resume. */
export async function pauseNats(port: number): Promise<() => void> {
  const pid = natsPid(port);
  process.kill(pid, 'SIGSTOP');
  await waitFor(`nats-server ${pid} stopped`, async () => stateOf(pid) === 'T', {
    timeoutMs: 2_000,
    intervalMs: 5,
  });
  return () => process.kill(pid, 'SIGCONT');
}
