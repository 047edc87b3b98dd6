import type { ChildProcess } from 'node:child_process';

/** The `tokportal` binary for this platform (or `TOKPORTAL_BINARY_PATH`). */
export function binaryPath(): string;

/** A running `tokportal sandbox`. */
export interface Sandbox {
  /** Its base URL: point a TokPortal client at it, with any `sk_...` key. */
  url: string;
  /** The inspector page (`${url}/_sandbox/`): the live request log, state and webhook deliveries. */
  inspectorUrl: string;
  /** Stops it (its state is lost). */
  stop(): Promise<void>;
  process: ChildProcess;
}

/** Starts `tokportal sandbox --port 0`; extra `args` go to it. */
export function startSandbox(options?: { args?: string[]; timeoutMs?: number }): Promise<Sandbox>;
