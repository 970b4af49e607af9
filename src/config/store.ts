/** Changing the user's settings in `dcp.yaml` (under `dcp:`), through the safe YAML writer. */
import { isMap } from 'yaml';
import { userSettingsFile } from './paths.js';
import { flatten } from './load.js';
import { validateSettings, type Settings } from './schema.js';
import { deleteIn, setIn, updateYaml } from './yaml-file.js';

/** New values by key (`aws.region`); `undefined` removes the key. */
export type SettingChanges = Map<string, unknown>;

/**
 * Applies changes computed from the file's current settings, read inside the file's lock (so an
 * append never loses a concurrent one). The result is validated before anything is written.
 */
export async function changeUserSettings(
  changes: (current: Settings) => SettingChanges,
  env = process.env,
): Promise<{ file: string; changed: boolean }> {
  const file = userSettingsFile(env);
  const changed = await updateYaml(file, (doc) => {
    const current = ((doc.toJS() as { dcp?: Settings } | null)?.dcp ?? {}) as Settings;
    for (const [key, value] of changes(current)) {
      const path = ['dcp', ...key.split('.')];
      if (value === undefined) {
        deleteIn(doc, path);
        // Leave no empty `aws: {}` behind.
        const parent = path.slice(0, -1);
        const group = doc.getIn(parent);
        if (parent.length > 1 && isMap(group) && group.items.length === 0) doc.deleteIn(parent);
      } else {
        setIn(doc, path, value);
      }
    }
    validateSettings((doc.toJS() as { dcp?: unknown } | null)?.dcp, file, 'dcp');
  });
  return { file, changed };
}

/** Keeps `settings` as the user's defaults (what `dcp up --save` and the wizard's "save?" do). */
export function saveSettings(
  settings: Settings,
  env = process.env,
): Promise<{ file: string; changed: boolean }> {
  return changeUserSettings(() => flatten(settings), env);
}
