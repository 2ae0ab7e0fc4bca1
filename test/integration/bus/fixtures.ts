// Small helpers shared by the bus integration tests.
import type { JetStreamManager } from '@nats-io/jetstream';
import { parseStreamConfig, type StreamSettings } from '../../../src/api/stream-config.ts';
import type { BusRef } from '../../../src/bus/subjects.ts';
import { uniqueName } from '../../harness/shared.ts';

/**
 * Stream settings from streamConfig YAML. These tests look at what the stream stores with no
 * consumer attached, so unless the YAML says otherwise they keep history (retention: limits);
 * interest retention, the default, has tests of its own (retention.test.ts).
 */
export const settings = (yaml = ''): StreamSettings => {
  const r = parseStreamConfig(/retention/i.test(yaml) ? yaml : `retention: limits\n${yaml}`);
  if (!r.ok) throw new Error(r.errors.join('; '));
  return r.settings;
};

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A bus in a namespace of its own, so tests sharing one server never meet. */
export const newBus = (busName = 'default'): BusRef => ({ namespace: uniqueName('ns'), busName });

/** Every message body stored in `stream`, in sequence order. */
export async function storedBodies(jsm: JetStreamManager, stream: string): Promise<string[]> {
  const info = await jsm.streams.info(stream);
  const out: string[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
    if (m) out.push(m.string());
  }
  return out;
}
