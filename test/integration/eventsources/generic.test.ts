// The generic EventSource against a gRPC server of our own speaking upstream's protocol: the
// call carries the event name, config and bearer token; streamed events become events (JSON
// body, metadata); a full bus pauses the stream and loses nothing; a server that dies and comes
// back is called again with backoff; a wrong token fails the start with a clear error; one
// received event keeps its id across publish retries (a bus stalled past the publish deadline
// stores it once); an event too large for the bus is dropped and counted, the stream goes on
// (issue 20 review, 1 and 2).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SecretKeySelector } from '../../../src/api/k8s.ts';
import { BusConnection } from '../../../src/bus/connection.ts';
import { eventStreamName } from '../../../src/bus/subjects.ts';
import { defaultLimits } from '../../../src/eventsources/webhook/limits.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { GenericEventServer } from '../../harness/grpc-servers.ts';
import { startNats } from '../../harness/nats.ts';
import { waitFor } from '../../harness/proc.ts';
import { natsMissing, natsUrl, skipNote } from '../../harness/shared.ts';
import { sourceBed } from './fixtures.ts';
import { natsPid } from './front-door.ts';

const log = createLogger({ level: process.env.SLUICE_TEST_LOG ?? 'silent' });
const secrets: Record<string, string> = { 'g/token': 'tok-1', 'g/wrong': 'nope' };
const resolveSecret = async (sel: SecretKeySelector) => secrets[`${sel.name}/${sel.key}`] ?? '';

const skip = natsMissing();
describe.skipIf(skip)(`generic EventSource${skipNote(skip)}`, () => {
  let conn: BusConnection;
  beforeAll(async () => {
    conn = await BusConnection.open({ url: natsUrl() });
  });
  afterAll(async () => {
    await conn?.close();
  });
  const setup = (streamConfig = '', on = conn, publishDeadlineMs = defaultLimits().publishDeadlineMs) =>
    sourceBed(on, {
      prefix: 'gen',
      name: 'gen-es',
      log,
      streamConfig,
      resolveSecret,
      runtime: { limits: { ...defaultLimits(), publishDeadlineMs } },
    });
  const entry = (server: GenericEventServer, key = 'token') => ({
    url: server.address,
    insecure: true,
    jsonBody: true,
    config: 'interval: 5s\n',
    authSecret: { name: 'g', key },
    metadata: { origin: 'grpc' },
  });

  it('streams events with name, config and token; a full bus pauses the stream without loss', async () => {
    const server = new GenericEventServer('tok-1');
    await server.start();
    const s = await setup('maxMsgs: 2');
    const es = await s.start({ generic: { ticks: entry(server) } });
    try {
      await waitFor('stream open', () => server.open === 1);
      expect(server.calls[0]).toEqual({ name: 'ticks', config: 'interval: 5s\n' });
      for (let i = 0; i < 4; i++) server.push(JSON.stringify({ n: i }));
      await waitFor('two stored', async () => (await s.stored()).length === 2);
      const [first] = await s.stored();
      expect(first).toMatchObject({
        type: 'generic',
        subject: 'ticks',
        data: { body: { n: 0 }, metadata: { origin: 'grpc' } },
      });
      await s.jsm.streams.purge(eventStreamName(s.bus));
      await waitFor('the rest stored', async () => (await s.stored()).length === 2, { timeoutMs: 20_000 });
      expect((await s.stored()).map((e) => (e.data as { body: { n: number } }).body.n)).toEqual([2, 3]);
    } finally {
      await es.stop();
      server.stop();
    }
  }, 40_000);

  it('a server that dies is called again with backoff once it is back', async () => {
    const server = new GenericEventServer('tok-1');
    await server.start();
    const s = await setup();
    const es = await s.start({ generic: { again: entry(server) } });
    try {
      await waitFor('stream open', () => server.open === 1);
      server.push('{"n":1}');
      await waitFor('first event', async () => (await s.stored()).length === 1);
      server.stop();
      await new Promise((r) => setTimeout(r, 1500));
      await server.start();
      await waitFor('called again', () => server.open === 1, { timeoutMs: 20_000 });
      expect(server.calls.length).toBe(2);
      server.push('{"n":2}');
      await waitFor('event after the restart', async () => (await s.stored()).length === 2);
    } finally {
      await es.stop();
      server.stop();
    }
  }, 40_000);

  it('a wrong token fails the start with a clear error', async () => {
    const server = new GenericEventServer('tok-1');
    await server.start();
    const s = await setup();
    try {
      await expect(s.start({ generic: { bad: entry(server, 'wrong') } })).rejects.toThrow(
        /UNAUTHENTICATED.*authSecret/,
      );
    } finally {
      server.stop();
    }
  });

  it('an event whose publish outlived the deadline (bus stalled) is retried with the same id: stored once', async () => {
    const nats = await startNats();
    const own = await BusConnection.open({ url: nats.url });
    const server = new GenericEventServer('tok-1');
    await server.start();
    const pid = natsPid(nats.port);
    const s = await setup('', own, 1_500);
    const es = await s.start({ generic: { stall: { ...entry(server), jsonBody: false } } });
    try {
      await waitFor('stream open', () => server.open === 1);
      server.push('one');
      await waitFor('one stored', async () => (await s.stored()).length === 1, { timeoutMs: 10_000 });
      process.kill(pid, 'SIGSTOP');
      server.push('two');
      // Several publish deadlines (1.5 s) pass while the server answers nothing.
      await new Promise((r) => setTimeout(r, 6_000));
      process.kill(pid, 'SIGCONT');
      await waitFor('two stored', async () => (await s.stored()).length >= 2, { timeoutMs: 20_000 });
      server.push('three');
      await waitFor('three stored', async () =>
        (await s.stored()).some((e) => (e.data as { body: string }).body === 'three'),
      );
      expect((await s.stored()).map((e) => (e.data as { body: string }).body)).toEqual([
        'one',
        'two',
        'three',
      ]);
    } finally {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // gone
      }
      await es.stop();
      server.stop();
      await own.close();
      await nats.stop();
    }
  }, 60_000);

  it('an event too large for the bus is dropped and counted; the stream goes on', async () => {
    const server = new GenericEventServer('tok-1');
    await server.start();
    const s = await setup('maxMsgSize: 4KB');
    const es = await s.start({ generic: { big: { ...entry(server), jsonBody: false } } });
    try {
      await waitFor('stream open', () => server.open === 1);
      for (const m of ['small', 'x'.repeat(8_000), 'after']) server.push(m);
      await waitFor('small and after stored', async () => (await s.stored()).length === 2, {
        timeoutMs: 20_000,
      });
      expect((await s.stored()).map((e) => (e.data as { body: string }).body)).toEqual(['small', 'after']);
    } finally {
      await es.stop();
      server.stop();
    }
  }, 30_000);
});
