// Pure helpers of the signed webhook sources: signature and token checks (401 missing, 403 wrong),
// Slack's 5-minute window, header canonicalisation, GitLab event field names, GitHub App JWTs,
// Stripe form encoding and the public hook URL.
import { createVerify, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { GithubEventSource } from '../../../src/api/eventsource.ts';
import { githubAppJwt, githubHookPaths } from '../../../src/eventsources/webhook/github.ts';
import { gitlabEventField } from '../../../src/eventsources/webhook/gitlab.ts';
import { formEncode, publicUrl } from '../../../src/eventsources/webhook/hooks.ts';
import {
  canonicalHeaderName,
  checkHubSignature,
  checkSlackSignature,
  checkToken,
  hmacHex,
  sameText,
} from '../../../src/eventsources/webhook/signed.ts';

describe('hub signatures (GitHub, Bitbucket Server)', () => {
  // The example from GitHub's documentation on validating deliveries.
  const secret = "It's a Secret to Everybody";
  const body = Buffer.from('Hello, World!');
  const good = 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17';

  it('accepts the documented sha256 signature and the legacy sha1 one', () => {
    expect(checkHubSignature(secret, body, good)).toBeUndefined();
    expect(
      checkHubSignature(secret, body, undefined, `sha1=${hmacHex('sha1', secret, body)}`),
    ).toBeUndefined();
  });
  it('answers 401 when unsigned and 403 when the signature, secret or body differ', () => {
    expect(checkHubSignature(secret, body, undefined)).toMatchObject({ status: 401 });
    expect(checkHubSignature('other', body, good)).toMatchObject({ status: 403 });
    expect(checkHubSignature(secret, Buffer.from('Hello, World?'), good)).toMatchObject({ status: 403 });
    expect(checkHubSignature(secret, body, good.slice(0, -1))).toMatchObject({ status: 403 });
    expect(checkHubSignature(secret, body, good.replace('sha256', 'sha1'))).toMatchObject({ status: 403 });
  });
  it('prefers sha256 when both are sent: a wrong sha256 is not rescued by a right sha1', () => {
    const sha1 = `sha1=${hmacHex('sha1', secret, body)}`;
    expect(checkHubSignature(secret, body, `sha256=${'0'.repeat(64)}`, sha1)).toMatchObject({ status: 403 });
  });
});

describe('slack signatures', () => {
  const secret = 'slack-signing';
  const body = Buffer.from('token=x&command=%2Fdeploy');
  const now = 1_700_000_000;
  const sign = (ts: number) => `v0=${hmacHex('sha256', secret, `v0:${ts}:${body.toString()}`)}`;

  it('accepts a signature over v0:<timestamp>:<body> within five minutes either way', () => {
    expect(checkSlackSignature(secret, body, String(now), sign(now), now)).toBeUndefined();
    expect(checkSlackSignature(secret, body, String(now - 300), sign(now - 300), now)).toBeUndefined();
    expect(checkSlackSignature(secret, body, String(now + 300), sign(now + 300), now)).toBeUndefined();
  });
  it('refuses stale or malformed timestamps (403), missing headers (401), wrong signatures (403)', () => {
    expect(checkSlackSignature(secret, body, String(now - 301), sign(now - 301), now)).toMatchObject({
      status: 403,
    });
    expect(checkSlackSignature(secret, body, '1.7e9', sign(now), now)).toMatchObject({ status: 403 });
    expect(checkSlackSignature(secret, body, undefined, sign(now), now)).toMatchObject({ status: 401 });
    expect(checkSlackSignature(secret, body, String(now), undefined, now)).toMatchObject({ status: 401 });
    // The timestamp is part of what is signed: a replay with a fresh timestamp fails.
    expect(checkSlackSignature(secret, body, String(now), sign(now - 10), now)).toMatchObject({
      status: 403,
    });
  });
});

describe('tokens and comparison', () => {
  it('compares in constant time and never matches different lengths', () => {
    expect(sameText('abc', 'abc')).toBe(true);
    expect(sameText('abc', 'abd')).toBe(false);
    expect(sameText('abc', 'abcd')).toBe(false);
    expect(sameText('', '')).toBe(true);
  });
  it('checkToken: 401 missing, 403 wrong', () => {
    expect(checkToken('t', 't', 'X-Gitlab-Token')).toBeUndefined();
    expect(checkToken('t', undefined, 'X-Gitlab-Token')).toMatchObject({ status: 401 });
    expect(checkToken('t', 'u', 'X-Gitlab-Token')).toMatchObject({ status: 403 });
  });
});

describe('payload and API helpers', () => {
  it('canonical header names as Go writes them', () => {
    expect(canonicalHeaderName('x-github-event')).toBe('X-Github-Event');
    expect(canonicalHeaderName('X-HUB-SIGNATURE-256')).toBe('X-Hub-Signature-256');
    expect(canonicalHeaderName('content-type')).toBe('Content-Type');
  });
  it('GitLab hook fields from upstream event names', () => {
    expect(gitlabEventField('PushEvents')).toBe('push_events');
    expect(gitlabEventField('MergeRequestsEvents')).toBe('merge_requests_events');
    expect(gitlabEventField('ConfidentialIssuesEvents')).toBe('confidential_issues_events');
    expect(gitlabEventField('push_events')).toBe('push_events');
  });
  it('GitHub App JWT: RS256 over header.payload, issuer = app id, 10 minutes at most', () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const jwt = githubAppJwt(42, pem, 1_000_000);
    const [h, p, s] = jwt.split('.');
    expect(JSON.parse(Buffer.from(h!, 'base64url').toString())).toEqual({ alg: 'RS256', typ: 'JWT' });
    expect(JSON.parse(Buffer.from(p!, 'base64url').toString())).toEqual({
      iat: 1_000_000 - 60,
      exp: 1_000_000 + 540,
      iss: '42',
    });
    expect(
      createVerify('RSA-SHA256').update(`${h}.${p}`).verify(publicKey, Buffer.from(s!, 'base64url')),
    ).toBe(true);
  });
  it('GitHub hook paths for repositories, the older owner/repository form, and organisations', () => {
    const spec = GithubEventSource.parse({
      webhook: { port: '1', endpoint: '/', method: 'POST' },
      repositories: [{ owner: 'a', names: ['x', 'y'] }],
      owner: 'a',
      repository: 'x',
    });
    expect(githubHookPaths(spec)).toEqual(['/repos/a/x/hooks', '/repos/a/y/hooks']);
    const orgs = GithubEventSource.parse({
      webhook: { port: '1', endpoint: '/', method: 'POST' },
      organizations: ['acme'],
    });
    expect(githubHookPaths(orgs)).toEqual(['/orgs/acme/hooks']);
  });
  it('Stripe form bodies and the public hook URL', () => {
    expect(formEncode({ url: 'https://e.x/a?b=1', enabled_events: ['charge.succeeded', '*'] })).toBe(
      'url=https%3A%2F%2Fe.x%2Fa%3Fb%3D1&enabled_events%5B%5D=charge.succeeded&enabled_events%5B%5D=*',
    );
    expect(publicUrl({ url: 'https://e.x/', endpoint: '/push' })).toBe('https://e.x/push');
    expect(publicUrl({ url: 'https://e.x', endpoint: 'push' })).toBe('https://e.x/push');
    expect(publicUrl({ endpoint: '/push' })).toBeUndefined();
  });
});
