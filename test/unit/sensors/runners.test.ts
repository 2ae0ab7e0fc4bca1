import { describe, expect, it } from 'vitest';
import { TRIGGER_TYPES } from '../../../src/api/sensor.ts';
import { RUNNERS } from '../../../src/sensors/runners.ts';
import { SUPPORTED_TRIGGER_TYPES } from '../../../src/sensors/supported.ts';

describe('trigger runners', () => {
  it('run exactly the types the controller reports as supported', () => {
    expect(Object.keys(RUNNERS).sort()).toEqual([...SUPPORTED_TRIGGER_TYPES].sort());
  });
  it('each is a known trigger type and names itself', () => {
    for (const [type, make] of Object.entries(RUNNERS)) {
      expect(TRIGGER_TYPES).toContain(type);
      expect(make().type).toBe(type);
    }
  });
});
