// Pure parts of the round-2 sources and triggers: SNS's string to sign and certificate URL rule,
// the sftp listing diff and its stable ids, the Kafka event payload and fatal-error rule, the
// gRPC status mapping of the custom trigger, and the buckets an EventSource needs.
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { eventSourceBuckets, sftpBucket } from '../../../src/bus/source-state.ts';
import { isFatalAwsError } from '../../../src/eventsources/aws/credentials.ts';
import { certUrlProblem, stringToSign } from '../../../src/eventsources/aws/sns-signature.ts';
import { kafkaEventData } from '../../../src/eventsources/kafka/adapter.ts';
import { isFatalKafkaError } from '../../../src/eventsources/kafka/client.ts';
import { diffListings } from '../../../src/eventsources/sftp/adapter.ts';
import { classifyStatus } from '../../../src/sensors/triggers/custom.ts';

describe('sns signature', () => {
  it('signs notifications and confirmations over their own fields, in order, skipping absent ones', () => {
    expect(
      stringToSign({ Type: 'Notification', Message: 'm', MessageId: 'i', Timestamp: 't', TopicArn: 'a' }),
    ).toBe('Message\nm\nMessageId\ni\nTimestamp\nt\nTopicArn\na\nType\nNotification\n');
    expect(
      stringToSign({
        Type: 'SubscriptionConfirmation',
        Message: 'm',
        MessageId: 'i',
        SubscribeURL: 'u',
        Timestamp: 't',
        Token: 'k',
        TopicArn: 'a',
        Subject: 'ignored',
      }),
    ).toBe(
      'Message\nm\nMessageId\ni\nSubscribeURL\nu\nTimestamp\nt\nToken\nk\nTopicArn\na\nType\nSubscriptionConfirmation\n',
    );
  });
  it('fetches certificates only over HTTPS from SNS hosts', () => {
    expect(
      certUrlProblem('https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-x.pem'),
    ).toBeUndefined();
    expect(
      certUrlProblem('https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-9c6465fa.pem'),
    ).toBeUndefined();
    const ok = 'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem';
    expect(certUrlProblem(`${ok}?n=1`)).toMatch(/query or fragment/);
    expect(certUrlProblem(`${ok}#1`)).toMatch(/query or fragment/);
    expect(certUrlProblem(`${ok}?`)).toMatch(/query or fragment/);
    expect(certUrlProblem('https://u:p@sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem')).toMatch(
      /credentials/,
    );
    expect(
      certUrlProblem('https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-x.pem'),
    ).toMatch(/port/);
    expect(certUrlProblem('https://sns.us-east-1.amazonaws.com/other/x.pem')).toMatch(/signing certificate/);
    expect(certUrlProblem('http://sns.eu-west-1.amazonaws.com/a.pem')).toMatch(/HTTPS/);
    expect(certUrlProblem('https://sns.eu-west-1.amazonaws.com.evil.example/a.pem')).toMatch(
      /not an SNS host/,
    );
    expect(certUrlProblem('https://sns.eu-west-1.amazonaws.com/a.txt')).toMatch(/\.pem/);
    expect(certUrlProblem(undefined)).toMatch(/missing/);
  });
});

describe('sftp listing diff', () => {
  it('reports new and vanished files with ids stable for the same change', () => {
    const before = { 'a.csv': { size: 1, modified: 10 }, 'b.csv': { size: 2, modified: 20 } };
    const after = { 'b.csv': { size: 2, modified: 20 }, 'c.csv': { size: 3, modified: 30 } };
    expect(diffListings(before, after)).toEqual([
      { name: 'c.csv', op: 'CREATE', id: 'CREATE:c.csv:30:3' },
      { name: 'a.csv', op: 'REMOVE', id: 'REMOVE:a.csv:10:1' },
    ]);
    expect(diffListings(before, after)).toEqual(diffListings(before, after));
    expect(diffListings(after, after)).toEqual([]);
  });
});

describe('kafka', () => {
  it('builds upstream payload fields from a message', () => {
    const d = kafkaEventData(
      't',
      2,
      {
        key: Buffer.from('k'),
        value: null,
        offset: '7',
        timestamp: '0',
        headers: { h: Buffer.from('v'), l: ['a', 'b'] },
        attributes: 0,
      } as unknown as Parameters<typeof kafkaEventData>[2],
      'body',
      { m: '1' },
    );
    expect(d).toEqual({
      topic: 't',
      key: 'k',
      partition: 2,
      offset: 7,
      timestamp: '1970-01-01T00:00:00.000Z',
      headers: { h: 'v', l: 'a,b' },
      body: 'body',
      metadata: { m: '1' },
    });
  });
  it('treats credentials and rights errors as fatal, outages as retryable', () => {
    expect(isFatalKafkaError({ name: 'KafkaJSSASLAuthenticationError' })).toBe(true);
    expect(
      isFatalKafkaError({
        name: 'KafkaJSNumberOfRetriesExceeded',
        cause: { type: 'TOPIC_AUTHORIZATION_FAILED' },
      }),
    ).toBe(true);
    expect(isFatalKafkaError({ name: 'KafkaJSConnectionError' })).toBe(false);
  });
});

describe('aws errors', () => {
  it('fatal: credentials, rights, missing queue; also a 403 whose body the SDK could not read', () => {
    expect(isFatalAwsError({ name: 'InvalidClientTokenId' })).toBe(true);
    expect(isFatalAwsError({ name: 'SyntaxError', $metadata: { httpStatusCode: 403 } })).toBe(true);
    expect(isFatalAwsError({ name: 'TimeoutError' })).toBe(false);
  });
});

describe('custom trigger gRPC statuses', () => {
  const err = (code: grpc.status) =>
    Object.assign(new Error('x'), { code, details: 'd', metadata: new grpc.Metadata() });
  it('maps statuses to retry rules', () => {
    expect(classifyStatus(err(grpc.status.UNAVAILABLE), 'w').code).toBe('Transient');
    expect(classifyStatus(err(grpc.status.RESOURCE_EXHAUSTED), 'w').code).toBe('Transient');
    expect(classifyStatus(err(grpc.status.UNAUTHENTICATED), 'w').code).toBe('Misconfigured');
    expect(classifyStatus(err(grpc.status.INVALID_ARGUMENT), 'w').code).toBe('Rejected');
  });
});

describe('EventSource buckets', () => {
  it('an sftp entry needs the sftp bucket; a calendar without persistence none', () => {
    expect(eventSourceBuckets('ns', 'es', { sftp: { a: {} }, calendar: { c: {} } })).toEqual([
      sftpBucket('ns', 'es'),
    ]);
    expect(eventSourceBuckets('ns', 'es', { resource: { a: {} } })).toEqual([]);
  });
});
