/** Debian's chromium, which the browser tests drive through playwright-core (`npm test`'s pretest installs it). */
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
