// Verifying the signature SNS puts on every message it sends to an HTTP(S) subscriber: the
// string to sign is built from the message's fields in AWS's documented order, and checked with
// the public key of the certificate at SigningCertURL (RSA with SHA-1 for SignatureVersion 1,
// SHA-256 for 2). The certificate is fetched only over HTTPS from an SNS host
// (sns.<region>.amazonaws.com[.cn], as AWS's message validators and upstream check), from a path
// like /SimpleNotificationService-<id>.pem with no query, fragment, credentials or port, and
// verified against the system's CAs. Before any fetch the signature must look like one (base64
// of 128-1024 bytes). Certificates are cached per URL in a small LRU (16 entries), failures are
// remembered for a minute, and fetches are limited to 10 a minute: forged messages with ever new
// URLs cannot make the pod fetch per message or grow its memory.
// SLUICE_SNS_CERT_HOSTS (a regular expression) and SLUICE_SNS_CERT_CA (a PEM file) replace the
// host rule and add a CA, for tests with generated certificates or an SNS-compatible service.
import { createVerify, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';

export interface SnsMessage {
  Type?: string;
  MessageId?: string;
  Token?: string;
  TopicArn?: string;
  Subject?: string;
  Message?: string;
  Timestamp?: string;
  SignatureVersion?: string;
  Signature?: string;
  SigningCertURL?: string;
  SubscribeURL?: string;
}

const NOTIFICATION_FIELDS = ['Message', 'MessageId', 'Subject', 'Timestamp', 'TopicArn', 'Type'] as const;
const SUBSCRIPTION_FIELDS = [
  'Message',
  'MessageId',
  'SubscribeURL',
  'Timestamp',
  'Token',
  'TopicArn',
  'Type',
] as const;

/** The text SNS signs for `m` (pure); fields absent from the message are left out. */
export function stringToSign(m: SnsMessage): string {
  const fields = m.Type === 'Notification' ? NOTIFICATION_FIELDS : SUBSCRIPTION_FIELDS;
  let out = '';
  for (const f of fields) {
    const v = m[f];
    if (v !== undefined) out += `${f}\n${v}\n`;
  }
  return out;
}

const DEFAULT_HOSTS = /^sns\.[a-z0-9-]{3,}\.amazonaws\.com(\.cn)?$/;
const DEFAULT_PATH = /^\/SimpleNotificationService-[A-Za-z0-9]+\.pem$/;

/** Why `url` may not serve a signing certificate, or undefined when it may. */
export function certUrlProblem(url: string | undefined): string | undefined {
  if (!url) return 'SigningCertURL is missing';
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'SigningCertURL is not a URL';
  }
  const hosts = process.env.SLUICE_SNS_CERT_HOSTS
    ? new RegExp(process.env.SLUICE_SNS_CERT_HOSTS)
    : DEFAULT_HOSTS;
  if (u.protocol !== 'https:') return 'SigningCertURL is not HTTPS';
  if (!hosts.test(u.hostname)) return `SigningCertURL host ${u.hostname} is not an SNS host`;
  if (u.search || u.hash || url.includes('#') || url.includes('?'))
    return 'SigningCertURL has a query or fragment';
  if (u.username || u.password) return 'SigningCertURL has credentials';
  // A port only where SLUICE_SNS_CERT_HOSTS names the hosts (a local SNS-compatible server).
  if (u.port && !process.env.SLUICE_SNS_CERT_HOSTS) return 'SigningCertURL has a port';
  if (!(process.env.SLUICE_SNS_CERT_HOSTS ? /^\/[^?#]*\.pem$/ : DEFAULT_PATH).test(u.pathname))
    return 'SigningCertURL does not name an SNS signing certificate (.pem)';
  return undefined;
}

/** Distinct certificate URLs kept (LRU), how long a failed fetch is remembered, fetches a minute. */
const CACHE_MAX = 16;
const FAILED_MS = 60_000;
const FETCHES_PER_MINUTE = 10;

const certs = new Map<string, { cert: Promise<X509Certificate>; failedAt?: number }>();
let fetchTimes: number[] = [];

/** Counts one fetch, or throws when FETCHES_PER_MINUTE were made in the last minute. */
function takeFetch(now = Date.now()): void {
  fetchTimes = fetchTimes.filter((t) => now - t < 60_000);
  if (fetchTimes.length >= FETCHES_PER_MINUTE)
    throw new Error('signing certificate: too many certificate fetches in the last minute; try again later');
  fetchTimes.push(now);
}

/** Resets the certificate cache and fetch budget (tests). */
export function resetSnsCertCache(): void {
  certs.clear();
  fetchTimes = [];
}

function fetchCert(url: string): Promise<X509Certificate> {
  const caFile = process.env.SLUICE_SNS_CERT_CA;
  return new Promise((resolve, reject) => {
    const req = request(url, { timeout: 10_000, ...(caFile ? { ca: readFileSync(caFile) } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > 64 * 1024) req.destroy(new Error('signing certificate larger than 64 KiB'));
        else chunks.push(c);
      });
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`signing certificate: HTTP ${res.statusCode}`));
        try {
          resolve(new X509Certificate(Buffer.concat(chunks)));
        } catch (err) {
          reject(err);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('signing certificate: timed out')));
    req.on('error', reject);
    req.end();
  });
}

function cert(url: string): Promise<X509Certificate> {
  const now = Date.now();
  const hit = certs.get(url);
  if (hit && (hit.failedAt === undefined || now - hit.failedAt < FAILED_MS)) {
    certs.delete(url);
    certs.set(url, hit); // most recently used last
    return hit.cert;
  }
  takeFetch(now);
  const entry: { cert: Promise<X509Certificate>; failedAt?: number } = { cert: fetchCert(url) };
  entry.cert.catch(() => {
    entry.failedAt = Date.now();
  });
  certs.delete(url);
  certs.set(url, entry);
  // Full: evict the oldest failed entry first, so forged URLs do not push out a real certificate.
  while (certs.size > CACHE_MAX) {
    const failed = [...certs].find(([, e]) => e.failedAt !== undefined)?.[0];
    certs.delete(failed ?? certs.keys().next().value!);
  }
  return entry.cert;
}

/** True when `sig` is base64 of a plausible RSA signature (128 to 1024 bytes). */
function looksLikeSignature(sig: string): boolean {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(sig)) return false;
  const bytes = Buffer.from(sig, 'base64').length;
  return bytes >= 128 && bytes <= 1024;
}

/**
 * Checks the SNS signature of `m`. Resolves to undefined when it is valid, or to the reason it is
 * not (a forged or altered message); rejects when the certificate cannot be fetched (retryable).
 */
export async function snsSignatureProblem(m: SnsMessage): Promise<string | undefined> {
  const urlProblem = certUrlProblem(m.SigningCertURL);
  if (urlProblem) return urlProblem;
  if (!m.Signature) return 'Signature is missing';
  if (!looksLikeSignature(m.Signature)) return 'Signature is not an RSA signature';
  const algo =
    m.SignatureVersion === '2' ? 'RSA-SHA256' : m.SignatureVersion === '1' ? 'RSA-SHA1' : undefined;
  if (!algo) return `SignatureVersion ${m.SignatureVersion} is not 1 or 2`;
  const c = await cert(new URL(m.SigningCertURL!).href);
  const ok = createVerify(algo).update(stringToSign(m), 'utf8').verify(c.publicKey, m.Signature, 'base64');
  return ok ? undefined : 'signature does not match';
}
