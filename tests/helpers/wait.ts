// Waiting on a condition instead of a fixed sleep: a test goes on as soon as what it waits for is true, and a
// slow machine only makes it slower, not wrong. Kept apart from server.ts so tests without a server can use it.

/** Polls `check` every `every` ms until it is true (returns true) or `ms` pass (returns false). */
export async function waitFor(check: () => Promise<boolean> | boolean, ms = 5000, every = 50): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, every));
  }
}
