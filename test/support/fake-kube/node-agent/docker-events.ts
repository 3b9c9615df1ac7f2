/**
 * One Docker event stream for the instance's containers (`die` only), instead of a wait or a poll
 * per pod. Reconnects from the last event's time if the engine drops the stream.
 */
import type Dockerode from 'dockerode';
import { z } from 'zod';
import { FAKE_KUBE_LABEL } from '../docker-labels.js';

const dieEventSchema = z.looseObject({
  status: z.string().optional(),
  id: z.string().optional(),
  time: z.number().optional(),
});

export class ContainerExits {
  private stream: NodeJS.ReadableStream | undefined;
  private closed = false;
  private since = Math.floor(Date.now() / 1000);

  constructor(
    private readonly docker: Dockerode,
    private readonly instanceId: string,
    private readonly onExit: (containerId: string) => void,
  ) {}

  /** Resolves once the stream is open, so that no exit after this call is missed. */
  async open(): Promise<void> {
    const stream = await this.docker.getEvents({
      since: this.since,
      filters: { type: ['container'], event: ['die'], label: [`${FAKE_KUBE_LABEL}=${this.instanceId}`] },
    });
    this.stream = stream;
    let pending = '';
    stream.on('data', (chunk: Buffer) => {
      pending += chunk.toString('utf8');
      let newline = pending.indexOf('\n');
      while (newline !== -1) {
        this.handle(pending.slice(0, newline));
        pending = pending.slice(newline + 1);
        newline = pending.indexOf('\n');
      }
    });
    const reopen = () => {
      if (this.closed || this.stream !== stream) return;
      this.stream = undefined;
      setTimeout(() => {
        if (!this.closed) this.open().catch(() => reopen());
      }, 500);
    };
    stream.on('end', reopen);
    stream.on('error', reopen);
  }

  close(): void {
    this.closed = true;
    const stream = this.stream as (NodeJS.ReadableStream & { destroy?: () => void }) | undefined;
    stream?.destroy?.();
    this.stream = undefined;
  }

  private handle(line: string): void {
    if (line.trim() === '') return;
    let event: z.infer<typeof dieEventSchema>;
    try {
      event = dieEventSchema.parse(JSON.parse(line));
    } catch {
      return;
    }
    if (event.time !== undefined) this.since = event.time;
    if (event.status === 'die' && event.id !== undefined) this.onExit(event.id);
  }
}
