// A deliberately badly behaved HTTP client for the front-door tests: sends bytes exactly as given
// (with pauses), then half-closes (FIN), resets (RST) or waits, and reports what the server did.
import { connect, type Socket } from 'node:net';

/** A piece of a raw request: bytes to send, or a pause in ms. */
export type Part = string | Buffer | number;

export interface RawResult {
  /** Status of the first response, if one arrived. */
  status: number | undefined;
  /** Every status line seen, in order (pipelined requests give several). */
  statuses: number[];
  text: string;
  /** How the exchange ended. */
  ended: 'closed' | 'reset' | 'timeout' | 'aborted';
  ms: number;
}

export interface RawOptions {
  /** After the parts: `fin` half-closes and reads on; `rst` resets at once; `wait` reads on. */
  finish?: 'fin' | 'rst' | 'wait';
  /** Give up reading after this long (ms). */
  timeoutMs?: number;
  /** Stop reading once this many responses arrived (default: read until closed). */
  responses?: number;
  host?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function statusesOf(text: string): number[] {
  return [...text.matchAll(/(?:^|\r\n)HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
}

/** Sends `parts` on a fresh connection to `port` and reports the server's answer. */
export function raw(port: number, parts: Part[], o: RawOptions = {}): Promise<RawResult> {
  const started = Date.now();
  return new Promise<RawResult>((resolve) => {
    const socket: Socket = connect(port, o.host ?? '127.0.0.1');
    let text = '';
    let settled = false;
    const done = (ended: RawResult['ended']) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!socket.destroyed) socket.destroy();
      const statuses = statusesOf(text);
      resolve({ status: statuses[0], statuses, text, ended, ms: Date.now() - started });
    };
    const timer = setTimeout(() => done('timeout'), o.timeoutMs ?? 15_000);
    socket.setNoDelay(true);
    socket.on('data', (d) => {
      text += d.toString('latin1');
      // A 100 Continue is not an answer.
      const final = statusesOf(text).filter((s) => s !== 100);
      if (o.responses && final.length >= o.responses && /\r\n\r\n/.test(text)) done('closed');
    });
    socket.on('end', () => done('closed'));
    socket.on('close', () => done('closed'));
    socket.on('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNRESET' ? 'reset' : 'closed'));
    socket.once('connect', async () => {
      for (const p of parts) {
        if (settled) return;
        if (typeof p === 'number') await sleep(p);
        else if (!socket.destroyed) socket.write(p);
      }
      if (o.finish === 'rst') {
        socket.resetAndDestroy();
        done('aborted');
      } else if (o.finish === 'fin') socket.end();
    });
  });
}

/** A POST head for `path` with these headers (Host included). */
export function head(path: string, headers: Record<string, string | number> = {}, method = 'POST'): string {
  const lines = [`${method} ${path} HTTP/1.1`, 'Host: test'];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** A complete JSON POST (Content-Length set) with optional extra headers. */
export function jsonPost(
  path: string,
  body: string | Buffer,
  headers: Record<string, string | number> = {},
): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  return Buffer.concat([
    Buffer.from(head(path, { 'Content-Type': 'application/json', 'Content-Length': b.length, ...headers })),
    b,
  ]);
}
