import { join } from 'node:path';
import { readJsonFile, writeFileAtomic } from './durable.js';

const CLOCK_FILE = 'clock.json';
/** How often a scaled clock records where it is, in real ms. */
const SAVE_EVERY_MS = 1000;

interface ClockState {
  serviceMs: number;
}

/**
 * The service's time. With `timeScale` 1 it is the wall clock. With a larger scale it runs faster
 * (3600: an hour a second) so completion windows, expiry and list windows can be rehearsed. It never
 * runs backwards across restarts: a scaled clock resumes where it stopped (downtime does not count,
 * or a restart would jump days ahead), and never behind the latest time it has stamped on a record.
 */
export class ServiceClock {
  readonly scale: number;
  readonly #path: string;
  readonly #anchorReal: number;
  readonly #anchorService: number;
  #timer: NodeJS.Timeout | undefined;

  private constructor(path: string, scale: number, anchorService: number) {
    this.#path = path;
    this.scale = scale;
    this.#anchorReal = Date.now();
    this.#anchorService = anchorService;
  }

  static async open(dataDir: string, scale: number, notBeforeMs: number): Promise<ServiceClock> {
    const path = join(dataDir, CLOCK_FILE);
    let saved = 0;
    try {
      const state = (await readJsonFile(path)) as Partial<ClockState>;
      if (typeof state.serviceMs === 'number' && Number.isFinite(state.serviceMs)) saved = state.serviceMs;
    } catch {
      // First start, or a torn write from an older version: the other bounds still hold.
    }
    const real = Date.now();
    // After a scaled run the wall clock may be behind: keep the lead rather than go back in time.
    const start = scale === 1 ? Math.max(real, saved, notBeforeMs) : Math.max(saved || real, notBeforeMs);
    const clock = new ServiceClock(path, scale, start);
    await clock.save();
    if (scale !== 1) {
      clock.#timer = setInterval(() => void clock.save().catch(() => {}), SAVE_EVERY_MS);
      clock.#timer.unref();
    }
    return clock;
  }

  /** Service time in ms since the epoch. */
  nowMs(): number {
    return this.#anchorService + (Date.now() - this.#anchorReal) * this.scale;
  }

  /** Service time in whole seconds, as the API's `*_at` fields. */
  now(): number {
    return Math.floor(this.nowMs() / 1000);
  }

  /** Real ms until the service clock reads `serviceSeconds` (0 when it already has). */
  realMsUntil(serviceSeconds: number): number {
    return Math.max(0, (serviceSeconds * 1000 - this.nowMs()) / this.scale);
  }

  async save(): Promise<void> {
    await writeFileAtomic(this.#path, JSON.stringify({ serviceMs: this.nowMs() } satisfies ClockState));
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    // A full disk must not keep the service from closing: the clock restarts no earlier than the
    // newest stamp on a stored file or batch anyway.
    await this.save().catch(() => {});
  }
}
