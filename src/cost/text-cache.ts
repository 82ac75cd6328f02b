/**
 * Token counts of texts seen before, bounded by characters held: a system prompt or a template's fixed
 * part repeats on every line of a batch, a user text rarely does. When full it starts over, which costs
 * one recount per distinct text and never more memory.
 */
export class CountCache {
  private readonly counts = new Map<string, number>();
  private chars = 0;
  constructor(private readonly maxChars: number) {}

  get(text: string): number | undefined {
    return this.counts.get(text);
  }

  set(text: string, tokens: number): void {
    if (text.length > this.maxChars) return;
    if (this.chars + text.length > this.maxChars) {
      this.counts.clear();
      this.chars = 0;
    }
    this.counts.set(text, tokens);
    this.chars += text.length;
  }
}
