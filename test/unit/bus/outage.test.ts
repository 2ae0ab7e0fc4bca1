// isOutage: the bus failing under a request (no responders, timeouts, a 503 while a stream has no
// leader or quorum, the connection gone) is told apart from a refusal of the request itself.
import { describe, expect, it } from 'vitest';
import { isOutage } from '../../../src/bus/errors.ts';
import { BatchRefused } from '../../../src/bus/kv-group.ts';

const named = (name: string, message = name) => Object.assign(new Error(message), { name });
const api = (code: number, err_code: number, description: string) =>
  Object.assign(new Error(description), { apiError: () => ({ code, err_code, description }) });

describe('isOutage', () => {
  it('outages: timeouts, no responders, a lost connection, JetStream 503s, also as a cause', () => {
    expect(isOutage(named('TimeoutError', 'timeout'))).toBe(true);
    expect(isOutage(named('NoRespondersError', 'no responders: $KV.x.y'))).toBe(true);
    expect(isOutage(named('ClosedConnectionError', 'closed connection'))).toBe(true);
    expect(isOutage(api(503, 10008, 'JetStream system temporarily unavailable'))).toBe(true);
    expect(isOutage(new Error('the effect could not be recorded', { cause: named('TimeoutError') }))).toBe(
      true,
    );
  });

  it('refusals are not outages: a conflict, a full stream, a bad request, a plain bug', () => {
    expect(isOutage(api(400, 10071, 'wrong last sequence: 4'))).toBe(false);
    expect(isOutage(new BatchRefused(10071, 'wrong last sequence'))).toBe(false);
    expect(isOutage(api(400, 10077, 'maximum bytes exceeded'))).toBe(false);
    expect(isOutage(new TypeError('cannot read properties of undefined'))).toBe(false);
    expect(isOutage('a string')).toBe(false);
  });
});
