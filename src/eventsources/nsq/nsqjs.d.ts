// The part of nsqjs (which ships no types) the nsq source uses.
declare module 'nsqjs' {
  import { EventEmitter } from 'node:events';

  export interface NsqMessage {
    /** The 16-character message id nsqd assigned; the same on every redelivery. */
    readonly id: string;
    /** Nanoseconds since the epoch, as a decimal string. */
    readonly timestamp: string;
    readonly attempts: number;
    readonly body: Buffer;
    finish(): void;
    requeue(delayMs?: number, backoff?: boolean): void;
    touch(): void;
  }

  export interface ReaderOptions {
    lookupdHTTPAddresses?: string[];
    nsqdTCPAddresses?: string[];
    lookupdPollInterval?: number;
    maxInFlight?: number;
    maxAttempts?: number;
    requeueDelay?: number;
    tls?: boolean;
    tlsVerification?: boolean;
    ca?: string;
    cert?: string;
    key?: string;
    clientId?: string;
  }

  export class Reader extends EventEmitter {
    constructor(topic: string, channel: string, options: ReaderOptions);
    connect(): void;
    close(): void;
  }

  export class Writer extends EventEmitter {
    constructor(host: string, port: number, options?: Record<string, unknown>);
    connect(): void;
    publish(topic: string, msgs: string | Buffer | Array<string | Buffer>, cb?: (err?: Error) => void): void;
    close(): void;
  }
}
