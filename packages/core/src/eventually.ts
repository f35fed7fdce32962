/**
 * Test helper (excluded from the build): work a test started goes on in the background (a temp file
 * removed after close, a handle closed after release), and a fixed sleep before the assertion fails on a
 * busy machine. eventually() retries the assertion until it holds, and fails with its last error once
 * `ms` have passed.
 */
export async function eventually(check: () => void | Promise<void>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      await check();
      return;
    } catch (err) {
      if (Date.now() > end) throw err;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}
