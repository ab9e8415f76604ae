// How events look on the command line. On a terminal: assistant text as it streams, each tool call and its
// result condensed to a few lines, a spinner while waiting, colours. Otherwise: one JSON event per line.
// Everything shown came from a model or a sandbox: control characters (terminal escapes, carriage returns,
// bidi overrides) are stripped before anything reaches a terminal.
import type { RunEvent } from './sse.ts';

export interface Out {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

// C0 (but \n and \t), DEL, C1, and the bidi controls that can make a line read as something else.
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** Text fit for a terminal. */
export const safe = (s: unknown) => String(s ?? '').replace(UNSAFE, '');

/**
 * One line of JSON that no terminal or line splitter misreads: JSON text (`raw`, as the server sent it, or
 * `value` serialised) with DEL, C1 and U+2028/9 escaped too. Those characters can only stand inside JSON
 * strings, so escaping them in place keeps the text the same JSON.
 */
export function jsonLine(value: unknown, raw?: string): string {
  return (raw ?? JSON.stringify(value)).replace(/[\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`) + '\n';
}

const CODES = { bold: [1, 22], dim: [2, 22], italic: [3, 23], red: [31, 39], green: [32, 39], yellow: [33, 39], blue: [34, 39], cyan: [36, 39], magenta: [35, 39] } as const;
export type Style = keyof typeof CODES;

export function styler(color: boolean) {
  return (style: Style, s: string) => (color ? `\x1b[${CODES[style][0]}m${s}\x1b[${CODES[style][1]}m` : s);
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const RESULT_LINES = 4;

export const fmtBytes = (n: number) => (n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`);
const fmtInt = (n: unknown) => (typeof n === 'number' ? n.toLocaleString('en-US') : '?');
export const fmtCost = (usd: unknown) => (typeof usd === 'number' ? `$${usd < 0.01 && usd > 0 ? usd.toFixed(4) : usd.toFixed(2)}` : 'cost unknown');

/** The one line that says what a tool call does. */
function toolSummary(input: any): string {
  if (!input || typeof input !== 'object') return '';
  const pick = input.command ?? input.path ?? input.name ?? (Array.isArray(input.paths) ? input.paths.join(' ') : undefined);
  return pick === undefined ? JSON.stringify(input) : String(pick);
}

export class HumanRenderer {
  private readonly c: ReturnType<typeof styler>;
  private atLineStart = true;
  private streaming: 'assistant' | 'thinking' | null = null;
  private spinnerTimer: NodeJS.Timeout | undefined;
  private spinnerShown = false;
  private frame = 0;
  private label = 'starting the run';
  private since = Date.now();
  private readonly tools = new Map<string, string>();

  constructor(
    private readonly out: Out,
    opts: { color: boolean; spinner: boolean },
  ) {
    this.c = styler(opts.color);
    if (opts.spinner) {
      this.spinnerTimer = setInterval(() => this.spin(), 100);
      this.spinnerTimer.unref();
    }
  }

  private get width(): number {
    return Math.max(40, Math.min(this.out.columns || 100, 200)); // a pty without a size reports 0
  }

  private clip(s: string, width = this.width - 4): string {
    const one = s.replace(/\s+/g, ' ').trim();
    return one.length > width ? one.slice(0, width - 1) + '…' : one;
  }

  private spin(): void {
    if (!this.atLineStart) return;
    const secs = Math.floor((Date.now() - this.since) / 1000);
    this.out.write(`\r\x1b[2K${this.c('cyan', SPINNER[this.frame++ % SPINNER.length]!)} ${this.c('dim', `${this.clip(this.label, this.width - 12)}${secs >= 1 ? ` ${secs}s` : ''}`)}`);
    this.spinnerShown = true;
  }

  private write(s: string): void {
    if (s === '') return;
    if (this.spinnerShown) {
      this.out.write('\r\x1b[2K');
      this.spinnerShown = false;
    }
    this.out.write(s);
    this.atLineStart = s.endsWith('\n');
  }

  /** Ends a streamed text block so the next thing starts on its own line. */
  private endBlock(): void {
    if (!this.atLineStart) this.write('\n');
    this.streaming = null;
  }

  line(s: string): void {
    this.endBlock();
    this.write(s + '\n');
  }

  /** A note of the CLI's own (saved files, reattaching), in the flow of the output. */
  note(s: string, style: Style = 'dim'): void {
    this.line(this.c(style, safe(s)));
  }

  event(e: RunEvent, _raw?: string): void {
    this.since = Date.now();
    switch (e.type) {
      case 'assistant':
      case 'thinking': {
        const text = safe(e.content);
        if (this.streaming !== e.type) {
          this.endBlock();
          if (e.type === 'thinking') this.write(this.c('dim', this.c('italic', 'thinking: ')));
          this.streaming = e.type;
        }
        this.write(e.type === 'thinking' ? this.c('dim', this.c('italic', text)) : text);
        this.label = e.type === 'thinking' ? 'thinking' : 'writing';
        return;
      }
      case 'system':
        return this.system(e);
      case 'tool_use': {
        const where = e.sandbox && e.sandbox !== 'main' ? this.c('magenta', ` [${safe(e.sandbox)}]`) : '';
        this.tools.set(String(e.id), safe(e.toolName));
        this.line(`${this.c('cyan', '▸')} ${this.c('bold', safe(e.toolName))}${where} ${this.clip(safe(toolSummary(e.input)), this.width - 12)}`);
        this.label = `running ${safe(e.toolName)}`;
        return;
      }
      case 'tool_result':
        return this.toolResult(e);
      case 'file':
        this.line(`  ${this.c('blue', '⬇')} file ${safe(e.path)} ${this.c('dim', `(${fmtBytes(Number(e.size) || 0)})`)}`);
        this.label = 'finishing';
        return;
      case 'warning':
        this.line(this.c('yellow', `! ${safe(e.code)}: ${safe(e.content)}`));
        return;
      case 'result':
        return this.result(e);
      case 'error':
        this.line(this.c('red', `✖ ${this.c('bold', safe(e.code))}: ${safe(e.content)}`));
        if (e.hint) this.line(`  ${this.c('dim', 'hint:')} ${safe(e.hint)}`);
        return;
      default:
        this.line(this.c('dim', `${safe(e.type)}: ${this.clip(safe(JSON.stringify(e)))}`));
    }
  }

  private system(e: RunEvent): void {
    if (e.subtype === 'run_started') {
      this.line(this.c('dim', `● ${safe(e.runId)} · ${safe(e.model)} (${safe(e.provider)}) · ${safe(e.sandboxProvider)} sandbox`));
      this.label = 'creating the sandbox';
    } else if (e.subtype === 'sandbox_created') {
      this.line(this.c('dim', `  sandbox ${safe(e.sandbox)} ready`));
      this.label = 'waiting for the model';
    } else if (e.subtype === 'sandbox_destroyed') {
      this.label = 'finishing';
    } else {
      this.line(this.c('dim', `  ${safe(e.content ?? e.subtype)}`));
    }
  }

  private toolResult(e: RunEvent): void {
    const failed = e.isError === true || (typeof e.exitCode === 'number' && e.exitCode !== 0);
    const mark = failed ? this.c('red', '✗') : this.c('green', '✓');
    const content = safe(e.content).replace(/\n+$/, '');
    const lines = content === '' ? [] : content.split('\n');
    const status = typeof e.exitCode === 'number' ? `exit ${e.exitCode}` : failed ? 'error' : 'ok';
    this.line(`  ${mark} ${failed ? this.c('red', status) : status} ${this.c('dim', `· ${lines.length} line${lines.length === 1 ? '' : 's'}`)}`);
    for (const l of lines.slice(0, RESULT_LINES)) this.line(this.c('dim', `    ${this.clip(l, this.width - 6)}`));
    if (lines.length > RESULT_LINES) this.line(this.c('dim', `    … ${lines.length - RESULT_LINES} more`));
    this.label = 'waiting for the model';
  }

  private result(e: RunEvent): void {
    if (e.structuredOutput !== undefined) this.line(safe(JSON.stringify(e.structuredOutput, null, 2)));
    const parts = [
      e.subtype === 'max_turns' ? 'stopped at max turns' : 'done',
      `${fmtInt(e.numTurns)} turn${e.numTurns === 1 ? '' : 's'}`,
      `${fmtInt(e.inputTokens)} in / ${fmtInt(e.outputTokens)} out tokens`,
      fmtCost(e.costUsd),
      typeof e.durationSecs === 'number' ? `${e.durationSecs.toFixed(1)} s` : '',
    ].filter(Boolean);
    this.line(this.c('green', `✔ ${parts.join(' · ')}`));
  }

  stop(): void {
    clearInterval(this.spinnerTimer);
    this.spinnerTimer = undefined;
    if (this.spinnerShown) {
      this.out.write('\r\x1b[2K');
      this.spinnerShown = false;
    }
    this.endBlock();
  }
}

/** Events as JSON lines: the data line of each event, as the server sent it. */
export class JsonRenderer {
  constructor(private readonly out: Out) {}
  event(e: RunEvent, raw?: string): void {
    this.out.write(jsonLine(e, raw?.includes('\n') ? undefined : raw));
  }
  note(_s: string): void {
    /* stdout holds events only; notes go to stderr (see the commands) */
  }
  line(_s: string): void {}
  stop(): void {}
}

export type Renderer = HumanRenderer | JsonRenderer;
