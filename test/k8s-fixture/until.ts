/** Polls `check` until it holds; returns how long that took, or throws naming what it waited for. */
export async function until(
  what: string,
  check: () => boolean,
  timeoutMs = 5000,
  everyMs = 20,
): Promise<number> {
  const start = performance.now();
  while (!check()) {
    if (performance.now() - start > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return performance.now() - start;
}
