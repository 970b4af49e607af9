/** How settings look to a person. */
import { describeOrigin, type Origin } from '../config/load.js';
import type { Style } from './style.js';

/** Scalars as they are; lists and groups as one line of JSON, which `dcp config set` takes back. */
export function renderValue(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

export function renderList(
  entries: { key: string; value: unknown; origin: Origin }[],
  showOrigin: boolean,
  style: Style,
): string {
  const width = Math.max(0, ...entries.map((e) => `${e.key} = ${renderValue(e.value)}`.length));
  return (
    entries
      .map(({ key, value, origin }) => {
        const line = `${key} = ${renderValue(value)}`;
        return showOrigin ? `${line.padEnd(width)}  ${style.dim(`(${describeOrigin(origin)})`)}` : line;
      })
      .join('\n') + '\n'
  );
}
