/**
 * A wall clock with sub-millisecond resolution: `performance.now()` shifted onto the system clock
 * (CLOCK_REALTIME, the clock python's `time.time_ns()` reads). The offset is taken at the instants
 * `Date.now()` ticks to a new millisecond, so it is good to a few microseconds instead of Date's 1 ms.
 * Each thread calibrates its own (a worker's `performance.now()` has its own origin).
 */
export function calibrateWallClock(): () => number {
  const offsets: number[] = [];
  for (let edge = 0; edge < 7; edge++) {
    const start = Date.now();
    const deadline = performance.now() + 5;
    let now = performance.now();
    let wall = Date.now();
    // Bounded: a millisecond tick arrives within ~1 ms; give up after 5 ms.
    while (wall === start && now < deadline) {
      now = performance.now();
      wall = Date.now();
    }
    offsets.push(wall - now);
  }
  offsets.sort((a, b) => a - b);
  const offset = offsets[Math.floor(offsets.length / 2)]!;
  return () => offset + performance.now();
}
