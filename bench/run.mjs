#!/usr/bin/env node
// Runs every benchmark in this folder; each prints one JSON line and exits 1 if it missed its goal.
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
let failed = false;
for (const file of readdirSync(here).filter(
  (name) => name.endsWith('.mjs') && !['run.mjs', 'compare.mjs'].includes(name),
)) {
  try {
    execFileSync(process.execPath, [`${here}${file}`], { stdio: 'inherit' });
  } catch {
    failed = true;
  }
}
process.exitCode = failed ? 1 : 0;
