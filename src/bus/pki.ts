// TLS material for a managed bus when the user names no Secret of their own: a CA, and one
// certificate for all servers that serves clients and routes alike (serverAuth + clientAuth, for
// mutual TLS between route peers), with the names the servers are reached by. ECDSA P-256 via
// WebCrypto and @peculiar/x509 (loaded only when a bus needs new certificates).
import { randomBytes, webcrypto } from 'node:crypto';

export interface BusPki {
  /** PEM CA certificate (public: clients verify servers with it). */
  ca: string;
  /** PEM CA private key (kept so server certificates can be re-issued for new names). */
  caKey: string;
  /** PEM server certificate and key. */
  cert: string;
  key: string;
}

/** @peculiar/x509 needs the Reflect metadata polyfill (tsyringe); both load on first use only. */
async function loadX509() {
  await import('reflect-metadata');
  return import('@peculiar/x509');
}

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 24 * 3600 * 1000;

const pem = (label: string, der: ArrayBuffer) =>
  `-----BEGIN ${label}-----\n${Buffer.from(der)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '')}\n-----END ${label}-----\n`;

const der = (text: string) => Buffer.from(text.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');

/**
 * Issues a server certificate for `names` (DNS names or IP addresses) from the CA in `reuse`, or
 * from a new CA. Valid for `days` (default 825, the longest most clients accept).
 */
export async function issueBusPki(
  names: readonly string[],
  reuse?: Pick<BusPki, 'ca' | 'caKey'>,
  days = 825,
): Promise<BusPki> {
  const x509 = await loadX509();
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  const notBefore = new Date(Date.now() - 3600_000);
  const notAfter = new Date(Date.now() + days * DAY);
  const serial = () => randomBytes(12).toString('hex');
  let ca: InstanceType<typeof x509.X509Certificate>;
  let caKey: webcrypto.CryptoKey;
  if (reuse) {
    ca = new x509.X509Certificate(reuse.ca);
    caKey = await webcrypto.subtle.importKey('pkcs8', der(reuse.caKey), ALG, true, ['sign']);
  } else {
    const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
    caKey = keys.privateKey;
    ca = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial(),
      name: 'CN=sluice bus CA',
      notBefore,
      notAfter: new Date(Date.now() + 10 * 365 * DAY),
      keys,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
  }
  const leafKeys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const isIp = (n: string) => /^[0-9.]+$/.test(n) || n.includes(':');
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${names[0] ?? 'nats'}`,
    issuer: ca.subject,
    notBefore,
    notAfter,
    signingKey: caKey,
    publicKey: leafKeys.publicKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.clientAuth,
      ]),
      new x509.SubjectAlternativeNameExtension(
        names.map((n) => (isIp(n) ? { type: 'ip' as const, value: n } : { type: 'dns' as const, value: n })),
      ),
    ],
  });
  return {
    ca: ca.toString('pem'),
    caKey: reuse?.caKey ?? pem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', caKey)),
    cert: leaf.toString('pem'),
    key: pem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', leafKeys.privateKey)),
  };
}

/** The names a PEM certificate is valid for and when it expires (for re-issue decisions). */
export async function certificateNames(certPem: string): Promise<{ names: string[]; notAfter: Date }> {
  const x509 = await loadX509();
  const cert = new x509.X509Certificate(certPem);
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const names = (san?.names.items ?? []).map((n) => n.value);
  return { names, notAfter: cert.notAfter };
}
