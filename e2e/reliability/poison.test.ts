// Poison events: one bad event of each kind (jq loop, jq allocation, Lua error, Lua loop, deeply
// nested body, template error, undecodable envelope, missing id) among 1,000 good ones, through a
// real `sluice eventsource` and `sluice sensor` process and a real nats-server (the nested body,
// which the webhook refuses, the undecodable envelope and the id-less messages are put on the bus
// directly, as any other publisher could). Good events are all
// delivered once; each bad one is dead-lettered once with its reason (an id-less message is not bad
// in itself: it gets an id from its stream sequence and is delivered once, never deduplicated
// against another id-less message); /healthz answers throughout; SIGTERM ends the Sensor within
// its grace period. Prints `reliability poison-events: {...}`.
import { readFileSync } from 'node:fs';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import { dlqStreamName, eventSubject } from '../../src/bus/subjects.ts';
import { natsMissing, skipNote } from '../../test/harness/shared.ts';
import { report, startIdempotentSink, startPipeline } from './pipeline.ts';

const GOOD = 1000;
const GRACE_MS = 30_000;

/** Bad events sent through the webhook: body, and the reason each must be dead-lettered with. */
const BAD_HTTP: Array<{ id: string; body: string; reasons: string[] }> = [
  {
    id: 'bad-jq-loop',
    body: JSON.stringify({ id: 'bad-jq-loop', kind: 'jq-loop' }),
    reasons: ['eval-timeout'],
  },
  // a jq allocation ends at the engine's memory cap (or, on a slow machine, at the deadline)
  {
    id: 'bad-jq-alloc',
    body: JSON.stringify({ id: 'bad-jq-alloc', kind: 'jq-alloc' }),
    reasons: ['eval-memory', 'eval-timeout'],
  },
  {
    id: 'bad-lua-error',
    body: JSON.stringify({ id: 'bad-lua-error', kind: 'lua-error' }),
    reasons: ['filter-error'],
  },
  {
    id: 'bad-lua-loop',
    body: JSON.stringify({ id: 'bad-lua-loop', kind: 'lua-loop' }),
    reasons: ['eval-timeout'],
  },
  {
    id: 'bad-template',
    body: JSON.stringify({ id: 'bad-template', kind: 'template' }),
    reasons: ['parameter-error'],
  },
];

/** A body nested 2,000 levels deep: the webhook refuses it (400); put on the bus directly, the Sensor dead-letters it. */
const DEEP_BODY = `{"id":"bad-deep","kind":"deep","x":${'['.repeat(2000)}${']'.repeat(2000)}}`;

interface DeadLetter {
  kind?: string;
  reason?: string;
  trigger: string;
  raw?: string;
  events: Record<string, { data?: { body?: { id?: string } } }>;
}

describe.skipIf(natsMissing())(`reliability: poison events${skipNote(natsMissing())}`, () => {
  it('one bad event of each kind among 1,000 good ones: good delivered once, each bad one dead-lettered once with its reason, the Sensor healthy throughout', async () => {
    const sink = await startIdempotentSink();
    const p = await startPipeline({
      sink,
      sensorSpec: (url) => ({
        evaluation: { timeout: '1s', memoryMiB: 64 },
        dependencies: [
          {
            name: 'order',
            eventSourceName: 'hooks',
            eventName: 'orders',
            filters: {
              script: [
                'local k = event.body.kind',
                'if k == "lua-error" then error("poison: cannot filter this order") end',
                'if k == "lua-loop" then while true do end end',
                'return true',
              ].join('\n'),
            },
            transform: {
              jq: 'if .body.kind == "jq-loop" then last(range(1e15)) elif .body.kind == "jq-alloc" then [range(3e7)] else . end',
            },
          },
        ],
        triggers: [
          {
            template: {
              name: 'deliver',
              http: {
                url: `${url}/orders`,
                payload: [
                  {
                    src: {
                      dependencyName: 'order',
                      dataTemplate:
                        '{{ if eq .Input.body.kind "template" }}{{ fail "poison template" }}{{ else }}{{ .Input.body.id }}{{ end }}',
                    },
                    dest: 'id',
                  },
                ],
              },
            },
            // a good event must not be dead-lettered for one transient failure on a busy machine
            retryStrategy: { steps: 3, duration: '200ms' },
          },
        ],
      }),
    });
    const health = { checks: 0, failures: 0, worstMs: 0 };
    let polling = true;
    const poll = (async () => {
      while (polling) {
        const t0 = Date.now();
        const ok = await fetch(`http://127.0.0.1:${p.sensor.metricsPort}/healthz`, {
          signal: AbortSignal.timeout(2000),
        })
          .then((r) => r.ok)
          .catch(() => false);
        health.checks++;
        if (!ok) health.failures++;
        health.worstMs = Math.max(health.worstMs, Date.now() - t0);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    try {
      const js = jetstream(p.nc);
      const subject = eventSubject(p.bus, 'hooks', 'orders');
      const goodIds = Array.from({ length: GOOD }, (_, i) => `good-${i}`);
      // bad ones in the middle of the good traffic
      const sending = p.send(goodIds.slice(0, GOOD / 2), 16);
      for (const b of BAD_HTTP) expect((await p.post(b.id, b.body)).status).toBe(200);
      expect((await p.post('bad-deep', DEEP_BODY)).status).toBe(400);
      const deep = `{"id":"bad-deep","source":"hooks","subject":"orders","type":"webhook","data":{"body":${DEEP_BODY}}}`;
      await js.publish(subject, new TextEncoder().encode(deep));
      await js.publish(subject, new TextEncoder().encode('bad-undecodable: this is not a CloudEvent {'));
      for (const n of [1, 2]) {
        const noId = {
          source: 'hooks',
          subject: 'orders',
          type: 'webhook',
          data: { body: { id: `noid-${n}`, kind: 'good' } },
        };
        await js.publish(subject, new TextEncoder().encode(JSON.stringify(noId)));
      }
      await sending;
      await p.send(goodIds.slice(GOOD / 2), 16);
      expect(p.accepted.size).toBe(GOOD);

      const jsm = await jetstreamManager(p.nc);
      const deadLetters = async (): Promise<DeadLetter[]> => {
        const info = await jsm.streams.info(dlqStreamName(p.bus));
        const out: DeadLetter[] = [];
        for (let seq = info.state.first_seq; info.state.messages > 0 && seq <= info.state.last_seq; seq++) {
          const m = await jsm.streams.getMessage(dlqStreamName(p.bus), { seq }).catch(() => null);
          if (m) out.push(m.json<DeadLetter>());
        }
        return out;
      };
      /** Which bad event a record is about: its event's body.id, or the marker in its raw bytes. */
      const whose = (r: DeadLetter): string => {
        const id = Object.values(r.events)[0]?.data?.body?.id;
        if (id) return id;
        const raw = Buffer.from(r.raw ?? '', 'base64').toString('utf8');
        return /bad-[a-z-]+/.exec(raw)?.[0] ?? '?';
      };
      const expectedDead = BAD_HTTP.length + 2;
      const delivered = () => new Set(sink.effects.values());
      const deadline = Date.now() + 90_000;
      for (;;) {
        const d = delivered();
        if (
          goodIds.every((id) => d.has(id)) &&
          d.has('noid-1') &&
          d.has('noid-2') &&
          (await deadLetters()).length >= expectedDead
        )
          break;
        if (Date.now() > deadline)
          throw new Error(
            `timed out: ${d.size} delivered, ${(await deadLetters()).length} dead letters\n${p.sensor.logs()}`,
          );
        await new Promise((r) => setTimeout(r, 250));
      }
      await new Promise((r) => setTimeout(r, 1500)); // stragglers (redeliveries) before counting
      const dead = await deadLetters();
      const reasons = Object.fromEntries(dead.map((r) => [whose(r), r.reason ?? '?']));
      for (const r of dead)
        if (!whose(r).startsWith('bad-'))
          process.stdout.write(
            `unexpected dead letter ${whose(r)}: ${JSON.stringify((r as { error?: unknown }).error)}\n`,
          );
      const effectsPerId = new Map<string, number>();
      for (const id of sink.effects.values()) effectsPerId.set(id, (effectsPerId.get(id) ?? 0) + 1);

      // SIGTERM: the Sensor exits, cleanly, well within its grace period
      polling = false;
      await poll;
      const t0 = Date.now();
      await p.sensor.proc.stop(GRACE_MS);
      const exitMs = Date.now() - t0;
      const code = await p.sensor.proc.exited();

      const counts = {
        good: GOOD,
        goodDeliveredOnce: goodIds.filter((id) => effectsPerId.get(id) === 1).length,
        idLessDelivered: ['noid-1', 'noid-2'].filter((id) => effectsPerId.get(id) === 1).length,
        duplicateEffects: [...effectsPerId.values()].filter((n) => n > 1).length,
        badDeadLettered: dead.length,
        reasons,
        healthChecks: health.checks,
        healthFailures: health.failures,
        worstHealthMs: health.worstMs,
        sigtermExitMs: exitMs,
        exitCode: code,
      };
      report('poison-events', counts);
      expect(counts.goodDeliveredOnce).toBe(GOOD);
      expect(counts.idLessDelivered).toBe(2);
      expect(counts.duplicateEffects).toBe(0);
      // each bad one dead-lettered exactly once, with its reason; nothing else dead-lettered
      expect(dead).toHaveLength(expectedDead);
      for (const b of BAD_HTTP) expect(b.reasons, b.id).toContain(reasons[b.id]);
      expect(reasons['bad-undecodable']).toBe('invalid-event');
      expect(reasons['bad-deep']).toBe('invalid-event');
      for (const b of BAD_HTTP)
        expect(sink.effects.size && [...sink.effects.values()].includes(b.id), b.id).toBe(false);
      expect(health.failures).toBe(0);
      expect(health.worstMs).toBeLessThan(2000);
      expect(code).toBe(0);
      expect(exitMs).toBeLessThan(GRACE_MS);
    } finally {
      polling = false;
      await poll;
      await p.stop();
      await sink.close();
    }
  }, 240_000);

  it('Sensor RSS stays <= 200 MiB under an unbounded webhook burst and after it', async () => {
    const rssMiB = (pid: number): number => {
      const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return m ? Number(m[1]) / 1024 : 0;
    };
    const sink = await startIdempotentSink();
    const p = await startPipeline({ sink });
    try {
      const pid = p.sensor.proc.pid!;
      const start = rssMiB(pid);
      let peak = start;
      const sampler = setInterval(() => {
        peak = Math.max(peak, rssMiB(pid));
      }, 100);
      const ids = Array.from({ length: 6000 }, (_, i) => `burst-${i}`);
      const t0 = Date.now();
      await p.send(ids, 64, 120_000);
      const sentMs = Date.now() - t0;
      const v = await p.verdict(120_000);
      clearInterval(sampler);
      await new Promise((r) => setTimeout(r, 3000));
      const after = rssMiB(pid);
      const counts = {
        accepted: v.accepted,
        deliveredOnce: v.deliveredOnce,
        sentPerSec: Math.round(v.accepted / (sentMs / 1000)),
        rssStartMiB: Math.round(start),
        rssPeakMiB: Math.round(peak),
        rssAfterMiB: Math.round(after),
      };
      report('sensor-rss-burst', counts);
      expect(v.deliveredOnce).toBe(ids.length);
      expect(v.duplicateEffects).toBe(0);
      expect(peak).toBeLessThanOrEqual(200);
      expect(after).toBeLessThanOrEqual(200);
    } finally {
      await p.stop();
      await sink.close();
    }
  }, 240_000);
});
