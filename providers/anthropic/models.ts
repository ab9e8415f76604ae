// What differs between Claude models: thinking support and style, and output limits (from the model id).

/** Family and version of a Claude model id ("claude-sonnet-4-5-20250929" -> sonnet 4.5), or null. */
function claudeVersion(model: string): { family: string; version: number } | null {
  // New style: claude-<family>-<major>[-<minor>][-<date>]; a one-digit minor, never the date.
  let m = /claude-([a-z]+)-(\d+)(?:-(\d)(?!\d))?/.exec(model);
  if (m?.[1] && !/^\d/.test(m[1])) return { family: m[1], version: Number(m[2]) + Number(m[3] ?? 0) / 10 };
  // Old style: claude-<major>[-<minor>]-<family>.
  m = /claude-(\d)(?:-(\d))?-([a-z]+)/.exec(model);
  if (m?.[3]) return { family: m[3], version: Number(m[1]) + Number(m[2] ?? 0) / 10 };
  if (/claude-mythos/.test(model)) return { family: 'mythos', version: 5 };
  return null;
}

export function anthropicSupportsThinking(model: string): boolean {
  const v = claudeVersion(model);
  return v !== null && v.version >= 3.7; // extended thinking arrived with Claude 3.7 Sonnet
}

/** Models on which `thinking: {type: 'enabled', budget_tokens}` is deprecated (the SDK warns) or refused. */
export function usesAdaptiveThinking(model: string): boolean {
  const v = claudeVersion(model);
  if (!v) return false;
  return v.version >= 4.7 || v.family === 'mythos' || (v.family === 'opus' && v.version >= 4.6);
}

/** Documented output limits; unknown ids get the common 64k. */
export function outputLimit(model: string): number {
  const v = claudeVersion(model);
  if (!v) return 64_000;
  if (v.version < 3.5) return 4_096;
  if (v.version < 3.7) return 8_192;
  if (v.family === 'opus' && v.version < 4.5) return 32_000;
  return 64_000;
}
