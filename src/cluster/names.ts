/** Cluster names: given with --name, or made up as `dask-<word>-<word>`. */
import { randomInt } from 'node:crypto';
import { usageError } from '../errors.js';

const ADJECTIVES = [
  'amber',
  'brisk',
  'calm',
  'clever',
  'crisp',
  'daring',
  'eager',
  'fuzzy',
  'gentle',
  'happy',
  'jolly',
  'keen',
  'lively',
  'lucky',
  'mellow',
  'nimble',
  'plucky',
  'quiet',
  'rapid',
  'sunny',
  'swift',
  'tidy',
  'vivid',
  'witty',
  'zesty',
];
const NOUNS = [
  'badger',
  'comet',
  'falcon',
  'fern',
  'gecko',
  'harbor',
  'heron',
  'island',
  'lagoon',
  'lynx',
  'maple',
  'meadow',
  'otter',
  'panda',
  'pebble',
  'quokka',
  'raven',
  'river',
  'robin',
  'salmon',
  'spruce',
  'tiger',
  'tulip',
  'walrus',
  'willow',
];

const NAME = /^[a-z][a-z0-9-]{0,38}[a-z0-9]$/;

/** Whether `name` can be a cluster's (and so a state folder is one, not dcp's lock or a stray). */
export function isClusterName(name: string): boolean {
  return NAME.test(name) && !name.includes('--');
}

export function generateName(): string {
  return `dask-${ADJECTIVES[randomInt(ADJECTIVES.length)]}-${NOUNS[randomInt(NOUNS.length)]}`;
}

/**
 * Names become folder names, process names and cloud tags: lowercase letters, digits, dashes.
 * `given` says where the name came from: the --name flag, or a command's NAME argument.
 */
export function validateName(name: string, given: 'flag' | 'argument' = 'flag'): string {
  if (!isClusterName(name)) {
    throw usageError(
      given === 'flag'
        ? `--name ${JSON.stringify(name)} is not a valid cluster name`
        : `${JSON.stringify(name)} is not a cluster name`,
      `names are 2-40 lowercase letters, digits and single dashes, starting with a letter${given === 'flag' ? ', e.g. --name analytics-1' : ' (dcp list shows the clusters)'}`,
    );
  }
  return name;
}
