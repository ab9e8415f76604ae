// The names of the agent's tools, apart from their implementations (lib/tools.ts, lib/composite.ts), so that
// configuration and request validation can name them without loading what runs them.
// docs/api.md#tools lists what each does.

/** The tools every run has (unless `allowedTools` narrows them). */
export const BASE_TOOL_NAMES = ['bash', 'read_file', 'write_file', 'edit_file', 'list_files'] as const;
/** The tools of composite runs (several sandboxes). */
export const COMPOSITE_TOOL_NAMES = ['spawn_sandbox', 'exec_in', 'transfer_files', 'kill_sandbox', 'list_sandboxes'] as const;
export const ALL_TOOL_NAMES: readonly string[] = [...BASE_TOOL_NAMES, ...COMPOSITE_TOOL_NAMES];
