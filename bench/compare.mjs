// Shared by the benchmarks: run dcp and its reference in alternating order, report the ratio of
// medians as one JSON line, and exit 1 when it misses the goal.

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/** Milliseconds taken by `run` (sync or async). */
export async function time(run) {
  const start = process.hrtime.bigint();
  await run();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/**
 * `measureDcp(i)` and `measureReference(i)` each return milliseconds. Which goes first
 * alternates, so neither always runs on a warmer machine.
 */
export async function compare({ bench, rounds, reference, goal, measureDcp, measureReference }) {
  const dcp = [];
  const ref = [];
  for (let i = 0; i < rounds; i++) {
    if (i % 2 === 0) {
      dcp.push(await measureDcp(i));
      ref.push(await measureReference(i));
    } else {
      ref.push(await measureReference(i));
      dcp.push(await measureDcp(i));
    }
  }
  const ratio = Number((median(dcp) / median(ref)).toFixed(2));
  console.log(
    JSON.stringify({
      bench,
      rounds,
      dcp_median_ms: Math.round(median(dcp)),
      [`${reference}_median_ms`]: Math.round(median(ref)),
      ratio,
      goal: `<= ${goal}`,
    }),
  );
  process.exitCode = ratio <= goal ? 0 : 1;
}
