import type { ChildProcess } from 'node:child_process';

/** The `tokportal` binary for this platform (or `TOKPORTAL_BINARY_PATH`). */
export function binaryPath(): string;

/** A key's clock. */
export interface Clock {
  now: string;
  simulated: boolean;
  delays: Record<string, string> | null;
  pending: Array<{ at: string; resource: string; bundle_id: string; position: number | null; step: string }>;
  next_at: string | null;
}

/** What an advance did, in time order. */
export interface Advanced {
  now: string;
  transitions: Array<{ at: string; resource: string; id: string | null; from: string | null; to: string; event: string | null }>;
  pending: number;
}

/** What to verify: every field optional; one count (at least once by default). */
export interface Verification {
  key?: string;
  operation?: string;
  status?: number | string;
  event?: string;
  dry_run?: boolean;
  replayed?: boolean;
  times?: number;
  at_least?: number;
  at_most?: number;
}

/** A control route's refusal (`code`: `NO_CLOCK`, `CLOCK_BACKWARDS`, ...). */
export class SandboxError extends Error {
  code?: string;
  status: number;
}

/** A verification whose count did not hold. */
export class VerificationError extends Error {
  code: 'ERR_ASSERTION';
  found: number;
  closest: object[];
}

/** A running `tokportal sandbox`. */
export interface Sandbox {
  /** The key's clock. */
  clock(key: string): Promise<Clock>;
  /** Puts the key on a simulated clock standing still at `frozenAt` (RFC 3339; now by default). */
  setClock(key: string, options?: { frozenAt?: string; delays?: Record<string, string> }): Promise<Clock>;
  /** Moves the key's clock forward `by` (`'36h'`, `'3d'`) or `to` a time, doing the manager's work on the way. */
  advance(by: string | undefined, options: { key: string; to?: string }): Promise<Advanced>;
  /** Puts the key back on real time. */
  realTime(key: string): Promise<Clock>;
  /** Makes the account manager flag that video at its next step. */
  flagDownloadIssue(key: string, bundleId: string, position: number): Promise<object>;
  /** The sandbox's state (or `key`'s part) as one JSON document: build a world once, `restore` it before each test. */
  snapshot(options?: { key?: string }): Promise<object>;
  /** Replaces each key `doc` (a `snapshot()`) names with what it holds (only `key`'s part when given). */
  restore(doc: object, options?: { key?: string }): Promise<{ restored: string[] }>;
  /** Checks what happened since start or reset; rejects with `VerificationError` when the count does not hold. */
  verify(verification: Verification): Promise<{ verified: true; found: number }>;
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
