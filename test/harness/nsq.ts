// NSQ for the nsq source tests: nsqlookupd and one nsqd (built by `make tools` from their Go
// module) on free loopback ports, nsqd registered with the lookupd and keeping every message on
// disk (--mem-queue-size=0), so `nsqd.kill()` + `nsqd.start()` is a crash and restart that loses
// nothing.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.ts';
import { ManagedProcess } from './proc.ts';
import { cachedTool, PortServer } from './servers.ts';

export function nsqMissing(): string | null {
  return cachedTool('nsq', 'NSQ_VERSION', 'nsqd').missing ?? null;
}

export interface Nsq {
  /** nsqlookupd's HTTP address, host:port (what the source's hostAddress names). */
  lookupdHttp: string;
  /** nsqd's HTTP address (publish with POST /pub?topic=). */
  nsqdHttp: string;
  nsqdTcp: string;
  nsqd: PortServer;
  /** Publishes through nsqd's HTTP API. */
  publish(topic: string, body: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startNsq(): Promise<Nsq> {
  const nsqdBin = cachedTool('nsq', 'NSQ_VERSION', 'nsqd');
  const lookupdBin = cachedTool('nsq', 'NSQ_VERSION', 'nsqlookupd');
  if (!nsqdBin.path || !lookupdBin.path) throw new Error(nsqMissing() ?? 'nsq missing');
  const dir = mkdtempSync(join(tmpdir(), 'sluice-nsq-'));
  const [lTcp, lHttp, dTcp, dHttp] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const lookupd = new PortServer(
    new ManagedProcess(
      'nsqlookupd',
      lookupdBin.path,
      [
        '-tcp-address',
        `127.0.0.1:${lTcp}`,
        '-http-address',
        `127.0.0.1:${lHttp}`,
        '-broadcast-address',
        '127.0.0.1',
      ],
      join(dir, 'nsqlookupd.log'),
    ),
    lHttp,
  );
  await lookupd.start();
  const nsqd = new PortServer(
    new ManagedProcess(
      'nsqd',
      nsqdBin.path,
      [
        '-tcp-address',
        `127.0.0.1:${dTcp}`,
        '-http-address',
        `127.0.0.1:${dHttp}`,
        '-broadcast-address',
        '127.0.0.1',
        '-lookupd-tcp-address',
        `127.0.0.1:${lTcp}`,
        '-data-path',
        dir,
        '-mem-queue-size',
        '0',
        '-msg-timeout',
        '10s',
      ],
      join(dir, 'nsqd.log'),
    ),
    dHttp,
  );
  await nsqd.start();
  return {
    lookupdHttp: `127.0.0.1:${lHttp}`,
    nsqdHttp: `127.0.0.1:${dHttp}`,
    nsqdTcp: `127.0.0.1:${dTcp}`,
    nsqd,
    async publish(topic, body) {
      const res = await fetch(`http://127.0.0.1:${dHttp}/pub?topic=${encodeURIComponent(topic)}`, {
        method: 'POST',
        body,
      });
      if (!res.ok) throw new Error(`nsqd /pub: ${res.status} ${await res.text()}`);
    },
    async stop() {
      await nsqd.stop();
      await lookupd.stop();
    },
  };
}
