import { existsSync } from 'node:fs';

import { CHROMIUM } from './browser-path';

export { CHROMIUM };

/**
 * Whether the browser tests can run here. Without chromium they are skipped with the reason
 * printed, except under CI=true, where a skipped browser test would hide a broken console: there
 * the suite fails instead.
 */
export function browserAvailable(file: string): boolean {
  if (existsSync(CHROMIUM)) return true;
  const why = `${file}: no chromium at ${CHROMIUM} (npm test's pretest installs Debian's chromium with apt-get when it can; or set CHROMIUM_PATH)`;
  if (process.env.CI === 'true') {
    test('the browser tests can run (CI=true)', () => {
      throw new Error(`${why}; under CI=true a skipped browser test is a failure`);
    });
  } else {
    process.stderr.write(`SKIPPED ${why}\n`);
  }
  return false;
}

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'];
