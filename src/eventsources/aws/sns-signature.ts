// Verifying the signature SNS puts on every message it sends to an HTTP(S) subscriber: the
// string to sign is built from the message's fields in AWS's documented order, and checked with
// the public key of the certificate at SigningCertURL (RSA with SHA-1 for SignatureVersion 1,
// SHA-256 for 2). The certificate is fetched only over HTTPS from an SNS host
// (sns.<region>.amazonaws.com[.cn]), verified against the system's CAs, and cached per URL.
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

const DEFAULT_HOSTS = /^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$/;

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
  if (!u.pathname.endsWith('.pem')) return 'SigningCertURL does not name a .pem file';
  return undefined;
}

const certs = new Map<string, Promise<X509Certificate>>();

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
  let p = certs.get(url);
  if (!p) {
    p = fetchCert(url);
    certs.set(url, p);
    p.catch(() => certs.delete(url));
  }
  return p;
}

/**
 * Checks the SNS signature of `m`. Resolves to undefined when it is valid, or to the reason it is
 * not (a forged or altered message); rejects when the certificate cannot be fetched (retryable).
 */
export async function snsSignatureProblem(m: SnsMessage): Promise<string | undefined> {
  const urlProblem = certUrlProblem(m.SigningCertURL);
  if (urlProblem) return urlProblem;
  if (!m.Signature) return 'Signature is missing';
  const algo =
    m.SignatureVersion === '2' ? 'RSA-SHA256' : m.SignatureVersion === '1' ? 'RSA-SHA1' : undefined;
  if (!algo) return `SignatureVersion ${m.SignatureVersion} is not 1 or 2`;
  const c = await cert(m.SigningCertURL!);
  const ok = createVerify(algo).update(stringToSign(m), 'utf8').verify(c.publicKey, m.Signature, 'base64');
  return ok ? undefined : 'signature does not match';
}
