// The sftp source's saved listing, one KV entry per file: key "<event>.f.<digest of the name>",
// value {name, size, modified}; "<event>.baseline" marks that a whole first listing was saved.
// Every value is small whatever the directory holds (no single value near the server's
// max_payload), and each change is saved on its own right after its event is stored, so a
// huge directory progresses change by change and a failure repeats nothing already saved. The
// listing is read from the bucket once (start, or after a failure) and kept in memory.
// Older builds kept the whole listing as one JSON value under "<event>": it is read once,
// rewritten per file, and removed.
import { createHash } from 'node:crypto';
import type { KV } from '@nats-io/kv';
import { kvKey } from '../../bus/kv.ts';

export interface FileInfo {
  size: number;
  modified: number;
}
export type Listing = Record<string, FileInfo>;

/** Writes at most this many entries at once (baseline, migration). */
const PARALLEL = 64;

/** Runs `fn` over `items`, at most PARALLEL at a time; rejects on the first failure. */
async function eachLimited<T>(items: T[], fn: (item: T) => Promise<unknown>): Promise<void> {
  for (let at = 0; at < items.length; at += PARALLEL)
    await Promise.all(items.slice(at, at + PARALLEL).map(fn));
}

/** One sftp entry's saved listing (see the file comment). */
export class ListingState {
  private readonly kv: KV;
  private readonly prefix: string;
  private readonly legacyKey: string;

  constructor(kv: KV, eventName: string) {
    this.kv = kv;
    this.prefix = kvKey(eventName);
    this.legacyKey = kvKey(eventName);
  }

  private fileKey(name: string): string {
    return `${this.prefix}.f.${createHash('sha256').update(name).digest('hex').slice(0, 40)}`;
  }

  /** The saved listing, or undefined when no baseline was ever saved. */
  async load(): Promise<Listing | undefined> {
    const legacy = await this.kv.get(this.legacyKey);
    if (legacy?.operation === 'PUT') {
      const listing = legacy.json<Listing>();
      await this.saveBaseline(listing);
      await this.kv.delete(this.legacyKey);
      return listing;
    }
    const marker = await this.kv.get(`${this.prefix}.baseline`);
    if (marker?.operation !== 'PUT') return undefined;
    const keys: string[] = [];
    for await (const k of await this.kv.keys(`${this.prefix}.f.*`)) keys.push(k);
    const out: Listing = {};
    await eachLimited(keys, async (k) => {
      const e = await this.kv.get(k);
      if (e?.operation !== 'PUT') return;
      const v = e.json<{ name: string } & FileInfo>();
      out[v.name] = { size: v.size, modified: v.modified };
    });
    return out;
  }

  /** Saves a whole listing as the baseline (entries first, then the marker). */
  async saveBaseline(listing: Listing): Promise<void> {
    await eachLimited(Object.entries(listing), ([name, f]) => this.saveFile(name, f));
    await this.kv.put(`${this.prefix}.baseline`, '1');
  }

  /** Records one file as present. */
  async saveFile(name: string, f: FileInfo): Promise<void> {
    await this.kv.put(this.fileKey(name), JSON.stringify({ name, size: f.size, modified: f.modified }));
  }

  /** Records one file as gone. */
  async removeFile(name: string): Promise<void> {
    await this.kv.delete(this.fileKey(name));
  }
}
