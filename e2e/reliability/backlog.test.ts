// ../shared/cases/faults/stream-full as a test: an EventBus with maxMsgs 50 and a Sensor that keeps
// up. Backpressure is backlog, not history: 4x maxMsgs events sent one after another are all
// accepted without a single 503, and a burst from 16 senders is accepted too (any 503 is real
// unconsumed backlog and its retry succeeds); every accepted event is delivered once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { natsMissing, skipNote } from '../../test/harness/shared.ts';
import {
  type IdempotentSink,
  type Pipeline,
  report,
  startIdempotentSink,
  startPipeline,
} from './pipeline.ts';

describe.skipIf(natsMissing())(`backlog-bounded bus (stream-full case)${skipNote(natsMissing())}`, () => {
  let sink: IdempotentSink;
  let p: Pipeline;
  beforeAll(async () => {
    sink = await startIdempotentSink();
    p = await startPipeline({ sink, streamConfig: 'maxMsgs: 50' });
  }, 60_000);
  afterAll(async () => {
    await p?.stop();
    await sink?.close();
  });

  it('4x maxMsgs events through a consuming Sensor: all accepted, none refused, each delivered once', async () => {
    const ids = Array.from({ length: 200 }, (_, i) => `seq-${i}`);
    await p.send(ids, 1, 60_000);
    const v = await p.verdict(60_000);
    report('maxMsgs 50, 200 events one after another', v);
    expect(v.accepted).toBe(200);
    expect(v.answers).toEqual({ 200: 200 });
    expect(v.deliveredOnce).toBe(200);
    expect(v.duplicateEffects).toBe(0);
  }, 120_000);

  it('a burst of 4x maxMsgs from 16 senders: everything accepted (with retries on real backlog), delivered once', async () => {
    const ids = Array.from({ length: 200 }, (_, i) => `burst-${i}`);
    await p.send(ids, 16, 60_000);
    const v = await p.verdict(60_000);
    report('maxMsgs 50, 200 more events from 16 senders', v);
    expect(ids.every((id) => p.accepted.has(id))).toBe(true);
    expect(v.deliveredOnce).toBe(400);
    expect(v.duplicateEffects).toBe(0);
    expect(v.unaccountedOutputs).toBe(0);
  }, 120_000);
});
