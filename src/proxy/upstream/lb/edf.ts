// EdfSchedule: an earliest-deadline-first schedule over weighted entries, the core of weighted round robin.

// Each entry has a deadline on a virtual clock. Picking takes the earliest deadline and
// reschedules that entry one period (1 / weight) later, so over time each entry is picked in
// proportion to its weight, and picks are spread out rather than bunched. Weights are passed in
// at reschedule time, which is what lets least-request feed in weights that shrink with load.
// A binary heap keeps pick at O(log n) with no allocation.

/** Past this virtual time, deadlines are shifted back to keep float resolution (see rebase). */
const REBASE_AT = 2 ** 32;

export class EdfSchedule {
  private readonly deadline: Float64Array;
  /** Tie-break on equal deadlines: first scheduled, first picked (a stable, fair order). */
  private readonly seq: Float64Array;
  /** heap[k] is an entry index; the heap orders entries by (deadline, seq). */
  private readonly heap: Uint32Array;
  private nextSeq = 0;

  /** `firstDeadline[i]` is when entry i is first due; entries are numbered from 0. */
  constructor(firstDeadline: readonly number[]) {
    const n = firstDeadline.length;
    this.deadline = Float64Array.from(firstDeadline);
    this.seq = new Float64Array(n);
    this.heap = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      this.seq[i] = this.nextSeq++;
      this.heap[i] = i;
    }
    for (let k = (n >> 1) - 1; k >= 0; k--) this.siftDown(k);
  }

  /** The entry due next, without changing the schedule. */
  peek(): number {
    return this.heap[0]!;
  }

  /** Reschedules the entry due next `period` after its deadline (period = 1 / its weight). */
  advance(period: number): void {
    const i = this.heap[0]!;
    this.deadline[i] = this.deadline[i]! + period;
    this.seq[i] = this.nextSeq++;
    this.siftDown(0);
    if (this.deadline[this.heap[0]!]! > REBASE_AT) this.rebase();
  }

  // Floats lose resolution as the virtual clock grows; after ~2^32 picks, periods would start to
  // round. Shifting every deadline down by the earliest one keeps their order and spacing.
  private rebase(): void {
    const base = this.deadline[this.heap[0]!]!;
    for (let i = 0; i < this.deadline.length; i++) this.deadline[i] = this.deadline[i]! - base;
  }

  private before(i: number, j: number): boolean {
    const di = this.deadline[i]!;
    const dj = this.deadline[j]!;
    return di < dj || (di === dj && this.seq[i]! < this.seq[j]!);
  }

  private siftDown(k: number): void {
    const heap = this.heap;
    const n = heap.length;
    const item = heap[k]!;
    for (;;) {
      let child = 2 * k + 1;
      if (child >= n) break;
      if (child + 1 < n && this.before(heap[child + 1]!, heap[child]!)) child++;
      if (!this.before(heap[child]!, item)) break;
      heap[k] = heap[child]!;
      k = child;
    }
    heap[k] = item;
  }
}
