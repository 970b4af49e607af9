/** Durations as people and Dask write them: `90s`, `30m`, `1h`, `2 days`; a bare number is seconds. */
import ms from 'ms';

/** Milliseconds, or undefined when `text` is not a positive duration. */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim();
  const value = /^\d+(\.\d+)?$/.test(trimmed)
    ? Number(trimmed) * 1000
    : (ms as (value: string) => number | undefined)(trimmed);
  return value !== undefined && Number.isFinite(value) && value > 0 ? value : undefined;
}

/** `90000` → `1m30s`, for messages. */
export function formatDuration(milliseconds: number): string {
  if (milliseconds < 10_000) return `${Number((milliseconds / 1000).toFixed(1))}s`;
  const seconds = Math.round(milliseconds / 1000);
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
}
