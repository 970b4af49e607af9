/** Fault injection as every cloud fake does it: faults queued per method, taken in order. */

export interface FailOptions {
  /** How many calls fail; default 1, Infinity for every call; 0 removes the faults queued for the method. */
  times?: number;
  /** Let this many calls of the method through first. */
  skip?: number;
  /** Do the work, then answer the error: the "lost answer" case. */
  afterEffect?: boolean;
}

export class FaultQueue<Fault> {
  private readonly queue: {
    method: string;
    fault: Fault;
    times: number;
    skip: number;
    afterEffect: boolean;
  }[] = [];

  /** The next call(s) of `method` ('*' for any) answer `fault`, after the faults queued before it. */
  add(method: string, fault: Fault, options: FailOptions = {}): void {
    const times = options.times ?? 1;
    if (times <= 0) return this.clear(method);
    this.queue.push({
      method,
      fault,
      times,
      skip: options.skip ?? 0,
      afterEffect: options.afterEffect ?? false,
    });
  }

  /** Drops the faults queued for `method`, or all of them. */
  clear(method?: string): void {
    for (let i = this.queue.length - 1; i >= 0; i--)
      if (method === undefined || this.queue[i]?.method === method) this.queue.splice(i, 1);
  }

  /** The fault this call of `method` answers, if any. */
  take(method: string): { fault: Fault; afterEffect: boolean } | undefined {
    const index = this.queue.findIndex((f) => f.method === method || f.method === '*');
    const entry = this.queue[index];
    if (!entry) return undefined;
    if (entry.skip > 0) {
      entry.skip--;
      return undefined;
    }
    entry.times--;
    if (entry.times <= 0) this.queue.splice(index, 1);
    return { fault: entry.fault, afterEffect: entry.afterEffect };
  }
}
