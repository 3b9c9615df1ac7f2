/**
 * A running command whose output streams in as NDJSON events. The handle is an async iterable of
 * output chunks; `wait()` gives the final result; `kill()` drops the connection, on which sandboxd
 * kills the command's whole process group.
 */
import './dispose.js';
import { execEventSchema } from '@runtime-sandbox/contract';
import { errorFromEvent, UpstreamError } from './errors.js';
import { parseNdjson } from './ndjson.js';
import type { ExecEvent, ExecResult } from './types.js';

/** One chunk of output, decoded as UTF-8. */
export interface CommandOutput {
  type: 'stdout' | 'stderr';
  data: string;
}

/** How a command ended. */
export interface CommandResult extends ExecResult {
  /**
   * `kill()` (or the caller's abort signal) ended the command before it reported its exit;
   * `exitCode` and `signal` are then null and stdout/stderr hold what arrived until then.
   */
  killed: boolean;
}

/** Called with each chunk as it arrives; a returned promise is awaited before the next chunk is read. */
export type OutputCallback = (data: string) => void | Promise<void>;

export interface StreamOptions {
  onStdout?: OutputCallback | undefined;
  onStderr?: OutputCallback | undefined;
  /** Aborting it kills the command. */
  signal?: AbortSignal | undefined;
}

export class CommandHandle implements AsyncIterable<CommandOutput>, AsyncDisposable {
  private stdoutText = '';
  private stderrText = '';
  private processId: number | undefined;
  private killed = false;
  private settled = false;
  private readonly startedAt = Date.now();
  private readonly source: AsyncGenerator<CommandOutput, void, undefined>;
  private readonly finished: Promise<CommandResult>;
  private resolveFinished: (result: CommandResult) => void = () => undefined;
  private rejectFinished: (error: unknown) => void = () => undefined;
  /** Who pulls events from `source`: nobody yet, the caller's iterator, or `wait()`'s drain. */
  private consumer: 'none' | 'iterator' | 'drain' = 'none';
  private waitRequested = false;
  private readonly onAbort = () => void this.kill();

  /** @internal Made by `Commands.start`. */
  constructor(
    body: ReadableStream<Uint8Array>,
    private readonly abortController: AbortController,
    private readonly options: StreamOptions,
  ) {
    this.finished = new Promise<CommandResult>((resolve, reject) => {
      this.resolveFinished = resolve;
      this.rejectFinished = reject;
    });
    // wait() hands this promise out; until someone asks, a failure must not count as unhandled.
    this.finished.catch(() => undefined);
    this.source = this.events(body);
    if (options.signal?.aborted) void this.kill();
    else options.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /** Process id inside the sandbox, once sandboxd has reported the start. */
  get pid(): number | undefined {
    return this.processId;
  }

  /** Everything written to stdout so far. */
  get stdout(): string {
    return this.stdoutText;
  }

  /** Everything written to stderr so far. */
  get stderr(): string {
    return this.stderrText;
  }

  /**
   * The output chunks in order. A handle can be iterated once, and before `wait()` is called;
   * leaving the loop early does not kill the command (call `kill()` for that).
   */
  [Symbol.asyncIterator](): AsyncIterator<CommandOutput> {
    if (this.consumer !== 'none') {
      throw new Error('a command handle can be iterated once, and only before wait() is called');
    }
    this.consumer = 'iterator';
    const detach = () => {
      if (this.consumer !== 'iterator') return;
      this.consumer = 'none';
      if (this.waitRequested) this.drain();
    };
    return {
      next: async () => {
        try {
          const step = await this.source.next();
          if (step.done) detach();
          return step;
        } catch (error) {
          detach();
          throw error;
        }
      },
      return: async () => {
        detach();
        return { done: true, value: undefined };
      },
    };
  }

  /**
   * Resolves when the command ends, with its exit code and complete output; rejects when the stream
   * fails (an `error` event, a dropped connection, a throwing output callback).
   * A non-zero exit code is a normal result, not an error.
   */
  wait(): Promise<CommandResult> {
    this.waitRequested = true;
    if (this.consumer === 'none') this.drain();
    return this.finished;
  }

  /**
   * Ends the command: closes the stream, on which sandboxd kills the command's process group.
   * Returns at once; `wait()` then resolves with `killed: true`. Does nothing after the command ended.
   */
  async kill(): Promise<void> {
    if (this.settled) return;
    this.killed = true;
    this.settle(this.killedResult());
    this.abortController.abort();
  }

  /** `await using handle = await sandbox.commands.start(...)` kills the command at scope exit. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.kill();
  }

  /** Reads every event; this generator is the only reader of the body. */
  private async *events(body: ReadableStream<Uint8Array>): AsyncGenerator<CommandOutput, void, undefined> {
    try {
      for await (const raw of parseNdjson(body)) {
        const event = toExecEvent(raw);
        switch (event.type) {
          case 'start':
            this.processId = event.pid;
            break;
          case 'stdout':
            this.stdoutText += event.data;
            await this.options.onStdout?.(event.data);
            yield { type: 'stdout', data: event.data };
            break;
          case 'stderr':
            this.stderrText += event.data;
            await this.options.onStderr?.(event.data);
            yield { type: 'stderr', data: event.data };
            break;
          case 'exit':
            this.settle({
              exitCode: event.exitCode,
              signal: event.signal,
              timedOut: event.timedOut,
              durationMs: event.durationMs,
              stdout: this.stdoutText,
              stderr: this.stderrText,
              stdoutTruncated: false,
              stderrTruncated: false,
              killed: false,
            });
            return;
          case 'error':
            throw errorFromEvent(event.code, event.message);
        }
      }
      if (!this.killed) {
        throw new UpstreamError({
          code: 'UPSTREAM_ERROR',
          message: 'the command stream ended before the command reported its exit',
        });
      }
    } catch (error) {
      if (this.killed) return;
      this.fail(error);
      throw error;
    }
  }

  private drain(): void {
    this.consumer = 'drain';
    void (async () => {
      try {
        while (!(await this.source.next()).done) {
          // Only the side effects (output kept, callbacks called, result settled) matter here.
        }
      } catch {
        // Already delivered through `finished`.
      }
    })();
  }

  private settle(result: CommandResult): void {
    if (this.settled) return;
    this.settled = true;
    this.options.signal?.removeEventListener('abort', this.onAbort);
    this.resolveFinished(result);
  }

  private fail(error: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.options.signal?.removeEventListener('abort', this.onAbort);
    this.rejectFinished(error);
    // A failure on our side (e.g. a throwing callback) must still end the command.
    this.abortController.abort();
  }

  private killedResult(): CommandResult {
    return {
      exitCode: null,
      signal: null,
      timedOut: false,
      durationMs: Date.now() - this.startedAt,
      stdout: this.stdoutText,
      stderr: this.stderrText,
      stdoutTruncated: false,
      stderrTruncated: false,
      killed: true,
    };
  }
}

/** An event as the contract describes it; fields it does not name are dropped. */
function toExecEvent(raw: unknown): ExecEvent {
  const parsed = execEventSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  throw new UpstreamError({
    code: 'UPSTREAM_ERROR',
    message: `the command stream carried an unknown event: ${JSON.stringify(raw).slice(0, 200)}`,
  });
}
