/**
 * Docker answers builds, pulls and imports with a stream of JSON lines. A failed build still
 * answers 200 and reports its error inside the stream, so the stream must be read to its end and
 * checked: that is what `followDockerStream` does, passing each message on for progress.
 */
import { createInterface } from 'node:readline';
import { z } from 'zod';
import { ImageBuildError } from './errors.js';

/** Where progress goes, one line at a time (the CLI and the test setup print it on stderr). */
export type ProgressLog = (line: string) => void;

const dockerStreamMessageSchema = z.looseObject({
  /** Build output text; not always whole lines. */
  stream: z.string().optional(),
  /** Pull and import progress. */
  status: z.string().optional(),
  id: z.string().optional(),
  progressDetail: z.looseObject({ current: z.number().optional() }).optional(),
  error: z.string().optional(),
  errorDetail: z.looseObject({ message: z.string().optional() }).optional(),
});
export type DockerStreamMessage = z.infer<typeof dockerStreamMessageSchema>;

/** Reads the stream to its end; rejects with the first error Docker reported in it. */
export async function followDockerStream(
  stream: NodeJS.ReadableStream,
  onMessage: (message: DockerStreamMessage) => void,
): Promise<void> {
  let failure: string | undefined;
  for await (const line of createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY })) {
    if (line.trim() === '') continue;
    const message = parseMessage(line);
    if (message.error !== undefined || message.errorDetail?.message !== undefined) {
      failure ??= message.errorDetail?.message ?? message.error;
      continue;
    }
    onMessage(message);
  }
  if (failure !== undefined) throw new ImageBuildError(failure);
}

function parseMessage(line: string): DockerStreamMessage {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    return { stream: `${line}\n` };
  }
  const parsed = dockerStreamMessageSchema.safeParse(json);
  return parsed.success ? parsed.data : { stream: `${line}\n` };
}

/**
 * Follows a pull or import stream, logging each status once, without the byte-count ticks that
 * repeat many times a second while a layer downloads or extracts.
 */
export function followStatusStream(stream: NodeJS.ReadableStream, log: ProgressLog): Promise<void> {
  return followDockerStream(stream, (message) => {
    if (message.status === undefined || message.progressDetail?.current !== undefined) return;
    log(message.id === undefined ? message.status : `${message.id}: ${message.status}`);
  });
}

/** Turns build output chunks (which may split or join lines) into whole lines for a log. */
export function lineSplitter(log: ProgressLog): { write(text: string): void; flush(): void } {
  let pending = '';
  return {
    write(text) {
      const parts = (pending + text).split('\n');
      pending = parts.pop() ?? '';
      for (const part of parts) log(part.replace(/\r$/, ''));
    },
    flush() {
      if (pending !== '') log(pending);
      pending = '';
    },
  };
}
