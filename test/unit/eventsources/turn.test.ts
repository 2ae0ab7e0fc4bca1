// inTurn: publishes asked for by separate callbacks of one event-loop iteration start together,
// in one synchronous run (so the NATS client writes them in one socket write), and each caller
// gets its own outcome.
import { describe, expect, it } from 'vitest';
import { inTurn } from '../../../src/eventsources/turn.ts';

describe('inTurn', () => {
  it('starts the tasks of separate callbacks together, after them, in order', async () => {
    const log: string[] = [];
    const started = new Promise<Array<Promise<string>>>((resolve) => {
      const results: Array<Promise<string>> = [];
      // Three timers due together fire as three callbacks of one timers phase.
      for (const name of ['a', 'b', 'c']) {
        setTimeout(() => {
          log.push(`asked ${name}`);
          results.push(
            inTurn(async () => {
              log.push(`started ${name}`);
              return name;
            }),
          );
          if (results.length === 3) resolve(results);
        }, 0);
      }
    });
    const results = await started;
    expect(await Promise.all(results)).toEqual(['a', 'b', 'c']);
    expect(log).toEqual(['asked a', 'asked b', 'asked c', 'started a', 'started b', 'started c']);
  });

  it('gives each caller its own outcome: a rejection or a synchronous throw is that caller’s', async () => {
    const ok = inTurn(async () => 1);
    const rejected = inTurn(async () => {
      throw new Error('refused');
    });
    const thrown = inTurn((): Promise<number> => {
      throw new Error('thrown');
    });
    await expect(ok).resolves.toBe(1);
    await expect(rejected).rejects.toThrow('refused');
    await expect(thrown).rejects.toThrow('thrown');
  });

  it('never starts a task synchronously', async () => {
    let ran = false;
    const p = inTurn(async () => {
      ran = true;
    });
    expect(ran).toBe(false);
    await p;
    expect(ran).toBe(true);
  });
});
