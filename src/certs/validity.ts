import { usageError } from '../errors.js';

const DAY_MS = 86_400_000;
/** Ten years of leap days past 100 years is plenty; beyond it is a typo. */
const MAX_DAYS = 36_525;

/** `--days`/`--ca-days`: a whole number of days from 1 to 100 years. */
export function parseDays(value: string | number, flag: string): number {
  const text = String(value).trim();
  const days = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(days) || days < 1 || days > MAX_DAYS) {
    throw usageError(
      `${flag} ${JSON.stringify(String(value))} is not a number of days from 1 to ${MAX_DAYS}`,
      `for example ${flag} 365`,
    );
  }
  return days;
}

export function addDays(date: Date, days: number): Date {
  return new Date(date.getTime() + days * DAY_MS);
}

export function daysBetween(from: Date, to: Date): number {
  return Math.floor((to.getTime() - from.getTime()) / DAY_MS);
}

/** `2027-11-22` */
export function isoDay(date: Date): string {
  return date.toISOString().slice(0, 10);
}
