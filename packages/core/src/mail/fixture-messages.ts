/**
 * Test support (not built): where the 75 byte-exact real messages of shared/fixtures/messages are, for
 * the unit tests' round trips: MAILARK_FIXTURES_DIR, else ../shared beside the checkout (as CI lays it
 * out). One place, so no test hard-codes a machine's path.
 */
import { fileURLToPath } from 'node:url';

export function fixturesDir(): string {
  return (
    process.env.MAILARK_FIXTURES_DIR ??
    fileURLToPath(new URL('../../../../../shared/fixtures/messages', import.meta.url))
  );
}
