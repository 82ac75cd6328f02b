import { createHash } from 'node:crypto';

/** What the synchronous endpoints answered, as a bill would count it. */
export interface SyncTallySnapshot {
  /** Calls received so far (every status). */
  calls: number;
  /** Calls being handled now (received, not yet answered or dropped). */
  inFlight: number;
  /** Answers with status 200 (the billed ones: "Only successful requests billed"), by SHA-256 of the request body. */
  answered: Record<string, number>;
}

/**
 * The service's count of synchronous calls (chat completions, embeddings): how many, how many in
 * flight, and which request bodies got a billed answer how often, so a test can tell a client that
 * pays twice for one request. Kept in memory (never the bodies themselves), across restarts.
 */
export class SyncTally {
  #calls = 0;
  #inFlight = 0;
  readonly #answered = new Map<string, number>();

  begin(): () => void {
    this.#calls++;
    this.#inFlight++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#inFlight--;
    };
  }

  /** Counts a billed answer to the request whose body is `text`. */
  answered(text: string): void {
    const key = createHash('sha256').update(text).digest('hex');
    this.#answered.set(key, (this.#answered.get(key) ?? 0) + 1);
  }

  snapshot(): SyncTallySnapshot {
    return {
      calls: this.#calls,
      inFlight: this.#inFlight,
      answered: Object.assign(
        Object.create(null) as Record<string, number>,
        Object.fromEntries(this.#answered),
      ),
    };
  }
}
