/** The sync run's pacer: a window that grows while calls succeed and halves on timeouts, a rate cut on refusals. */
import { describe, expect, it } from 'vitest';
import { Pacer } from '../../src/run/sync/pacer.js';

async function fill(pacer: Pacer, n: number) {
  return Promise.all(Array.from({ length: n }, () => pacer.acquire()));
}

describe('Pacer', () => {
  it('starts with a small window, grows it while calls succeed, never past maxInFlight', async () => {
    const pacer = new Pacer({ maxInFlight: 20, maxPerSecond: Number.POSITIVE_INFINITY });
    expect(pacer.window).toBe(8);
    for (let round = 0; round < 4; round++) {
      const tickets = await fill(pacer, pacer.window);
      for (const t of tickets) pacer.release(t, 'ok');
    }
    expect(pacer.window).toBe(20);
    // A call past the window waits until one ends.
    const tickets = await fill(pacer, 20);
    let late = false;
    const waiting = pacer.acquire().then((t) => {
      late = true;
      return t;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(late).toBe(false);
    pacer.release(tickets[0]!, 'ok');
    pacer.release(await waiting, 'ok');
    for (const t of tickets.slice(1)) pacer.release(t, 'ok');
  });

  it('halves the window on a timeout, once for the calls of one round', async () => {
    const pacer = new Pacer({ maxInFlight: 64, maxPerSecond: Number.POSITIVE_INFINITY, initialInFlight: 32 });
    const tickets = await fill(pacer, 32);
    for (const t of tickets) pacer.release(t, 'timeout');
    expect(pacer.window).toBe(16);
  });

  it('cuts the rate on a refusal to under what was admitted, and not past the cap before', async () => {
    const pacer = new Pacer({ maxInFlight: 100, maxPerSecond: 50, initialInFlight: 100 });
    expect(pacer.rate).toBe(50);
    const tickets = await fill(pacer, 10);
    pacer.release(tickets[0]!, 'refused');
    // 10 started in the last second, 1 refused: at most 95% of 9.
    expect(pacer.rate).toBeLessThanOrEqual(9 * 0.95);
    expect(pacer.rate).toBeGreaterThanOrEqual(1);
    for (const t of tickets.slice(1)) pacer.release(t, 'ok');
  });

  it('rejects waiters when their signal aborts or the pacer closes', async () => {
    const pacer = new Pacer({ maxInFlight: 1, maxPerSecond: Number.POSITIVE_INFINITY });
    const held = await pacer.acquire();
    const controller = new AbortController();
    const aborted = pacer.acquire(controller.signal);
    controller.abort(new Error('detached'));
    await expect(aborted).rejects.toThrow('detached');
    const closed = pacer.acquire();
    pacer.close(new Error('ended'));
    await expect(closed).rejects.toThrow('ended');
    pacer.release(held, 'ok');
  });
});
