import { Logger } from '@nestjs/common';
import type { Cluster, Redis } from 'ioredis';
import type { FailureSignal } from '../../classifier/failure-signal.js';
import { tracing } from '../../diagnostics.js';
import { chunks } from '../../util/chunks.js';
import { MESSAGES } from '../../flow-failure.messages.js';
import type { RedisKeys } from '../../redis/redis-keys.js';
import type { FailureReads } from './failure-reads.js';
import { parseStreamEntry, streamReplyPairs } from './stream-entry.js';
import { type StreamPositions, toRecord } from './stream-position.js';

interface StreamBatch {
  signals: FailureSignal[];
  acks: [stream: string, ids: string[]][];
  count: number;
  /** A stream gave as many entries as asked for: more are waiting (a backlog). */
  full: boolean;
  /** Ends the hold on the room that claims taken by the read keep until their delivery counts them. */
  release?: () => void;
  /** Entries may have been handed to this consumer that the batch does not hold: read its own pending entries next. */
  rereadOwn?: boolean;
}

export interface StreamSourceOptions {
  queues: readonly string[];
  consumer: string;
  /** Entries pending longer than this in a consumer that stopped are taken over. */
  leaseMs: number;
  /**
   * The most runs one catch-up read claims: half the handlers' room, so that the next read
   * runs in Redis while the last one's failures are classified and run here.
   */
  catchUpClaims: number;
  /** The reader is behind the head, where BullMQ may trim what it has not read (the sweep follows it). */
  onBehind: () => void;
  /** The reader, behind a moment ago, has reached the head: what was trimmed behind it can be swept to the end. */
  onCaughtUp: () => void;
}

/** Entries per stream and read, at most. */
const BATCH = 500;
/**
 * The least share of entries taken to be failures when sizing a read to the handlers'
 * room: most entries of a busy stream are not failures (added, active, completed, ...).
 */
const MIN_FAILURE_SHARE = 0.1;
/** Idle entries of a stopped consumer taken over per call. */
const TAKEOVER_BATCH = 200;
const MAX_BATCHES_IN_FLIGHT = 4;
/** How long recorded entries wait to be acknowledged together (never longer than a lease). */
const ACK_DELAY_MS = 100;
const BLOCK_MS = 2000;
const MAX_ERROR_PAUSE_MS = 5000;
/** A consumer that has held nothing and done nothing this long belongs to a process that is gone. */
const STALE_CONSUMER_MS = 10 * 60 * 1000;

/**
 * Reads each watched queue's events stream through a consumer group, so each entry
 * reaches one replica and a restarted app resumes where the group stopped. An entry is
 * acknowledged only after its failure is recorded as an occurrence: a crash before that
 * leaves it pending, and another replica takes it over (XAUTOCLAIM).
 */
export class StreamSource {
  private readonly logger = new Logger('FlowFailureModule');
  private readonly queueOfStream = new Map<string, string>();
  private stopping = false;
  private loop?: Promise<void>;
  private recovery?: NodeJS.Timeout;
  private recovering?: Promise<void>;
  /** What the reader waits for, ended early by stop(). */
  private pause?: { timer?: NodeJS.Timeout; resolve: () => void };
  private backupPauseMs = 0;
  /** Entries whose failures are recorded, by stream, waiting to be acknowledged together. */
  private readonly recorded = new Map<string, string[]>();
  private recordedCount = 0;
  private ackTimer?: NodeJS.Timeout;
  /** Of the entries read lately, the share that reported failures: reads are sized by it. */
  private failureShare = 1;

  constructor(
    private readonly commands: Redis | Cluster,
    private readonly blocking: Redis | Cluster,
    private readonly keys: RedisKeys,
    private readonly positions: StreamPositions,
    private readonly deliver: (signals: FailureSignal[]) => Promise<void>,
    /** The handlers' room: reading waits for it, and reads no more entries than it. */
    private readonly capacity: { room(): number; whenRoom(): Promise<void>; hold(count: number): () => void },
    /** The reads through read-and-claim.lua: behind each blocking read, and a catch-up's. */
    private readonly reads: FailureReads,
    private readonly options: StreamSourceOptions,
  ) {
    for (const queue of options.queues) this.queueOfStream.set(keys.eventsStream(queue), queue);
  }

  /** Resolves once every stream has the group: from then on no failure event is missed. */
  async start(): Promise<void> {
    if (this.queueOfStream.size === 0) return;
    await this.ensureGroups('$');
    // Before the first read: this is when a gap left while no app ran is still visible.
    await this.checkForGaps();
    this.loop = this.readLoop();
    const every = Math.max(500, Math.floor(this.options.leaseMs / 2));
    this.recovery = setInterval(() => {
      this.recovering ??= this.recoverIdle().finally(() => (this.recovering = undefined));
    }, every);
  }

  /**
   * The app's own Workers report every watched queue's failures first (here or in another
   * replica): the stream only catches what they could not. It is then read in batches, with
   * a pause after each short one, instead of entry by entry: far fewer reads and
   * acknowledgements competing with the Workers and their reports.
   */
  serveAsBackup(pauseMs: number): void {
    this.backupPauseMs = pauseMs;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (!this.loop) return;
    clearInterval(this.recovery);
    if (this.pause) {
      clearTimeout(this.pause.timer);
      this.pause.resolve();
    }
    // Ends a blocked XREADGROUP at once; a batch being delivered still finishes.
    this.blocking.disconnect();
    await Promise.allSettled([this.loop, this.recovering]);
    await this.acknowledgeRecorded();
    await this.handBack();
  }

  /** True when the group has been handed every entry of every watched stream and holds none unacknowledged. */
  async caughtUp(): Promise<boolean> {
    if (!this.loop) return true;
    await this.acknowledgeRecorded();
    for (const queue of this.queueOfStream.values()) {
      if (!(await this.positions.read(queue))?.caughtUp) return false;
    }
    return true;
  }

  private async readLoop(): Promise<void> {
    // Batches being delivered while the next one is read, when there is a backlog.
    const batches = new Set<Promise<void>>();
    let errors = 0;
    // Deliveries that failed in a row: each re-read of what they left pending waits longer.
    let failedDeliveries = 0;
    let backOff = false;
    // After an error, first re-read what this consumer already holds ('0'), then new entries ('>').
    let ownPending = false;
    // Start-up may find a backlog (the app was down): the first read is a catch-up's.
    let backlog = this.reads.canCatchUp;
    // Behind since it was last at the head.
    let wasBehind = false;
    while (!this.stopping) {
      // When the handlers are behind, wait until they have room: not a fixed pause, which a catch-up spent idle.
      const waited = this.capacity.room() <= 0;
      await this.until(this.capacity.whenRoom());
      if (backOff && !this.stopping) await this.sleep(Math.min(MAX_ERROR_PAUSE_MS, 100 * 2 ** failedDeliveries));
      backOff = false;
      if (this.stopping) break;
      try {
        if (ownPending) {
          // Re-read only what no batch is working on, and nothing already recorded: its
          // acknowledgement, otherwise up to ACK_DELAY_MS away, goes first.
          await Promise.allSettled(batches);
          await this.acknowledgeRecorded();
        }
        const behind = (backlog || waited) && !ownPending;
        // Behind the head (a backlog, or handlers that made it wait), BullMQ may have trimmed
        // entries the group has not read. XREADGROUP would skip them silently, and past them
        // the gap no longer shows: look before reading (a gap found is swept at once), and
        // have the sweep follow the reader for a trim that falls between the look and the read.
        // The look goes on the reader's connection, sent ahead of the read: Redis runs it
        // first, and the read does not wait a round trip for it.
        let looked: Promise<void> | undefined;
        if (behind) {
          wasBehind = true;
          this.options.onBehind();
          looked = this.checkForGaps(this.blocking);
        }
        // No more entries than the handlers have room for failures: the rest stay for other replicas.
        const count = Math.max(1, Math.min(BATCH, Math.ceil(this.capacity.room() / Math.max(MIN_FAILURE_SHARE, this.failureShare))));
        // Behind, a catch-up's read: it claims no more than the room, which it holds meanwhile.
        const reading = behind && this.reads.canCatchUp ? this.catchUpRead() : this.headRead(count, ownPending);
        const [batch] = await Promise.all([reading, looked]);
        if (batch.count > 0) this.failureShare = 0.8 * this.failureShare + 0.2 * (batch.signals.length / batch.count);
        if (ownPending && batch.count === 0) ownPending = false;
        if (batch.rereadOwn) ownPending = true;
        backlog = batch.full;
        // Settles once the failures are recorded (their acknowledgement follows later), or once
        // a failure to record them is handled.
        const delivery: Promise<void> = this.complete(batch)
          .then(() => {
            failedDeliveries = 0;
          })
          .catch((error: unknown) => {
            // Unacknowledged: re-read from this consumer's pending entries, after a pause.
            ownPending = true;
            backOff = true;
            if (failedDeliveries++ === 0) this.logger.warn(MESSAGES.streamBatchFailed(error));
          })
          .finally(() => batches.delete(delivery));
        batches.add(delivery);
        // A full batch means a backlog (catching up): read on while it is delivered, up to
        // MAX_BATCHES_IN_FLIGHT. A short one means the reader is at the head: wait until its
        // failures are recorded, so the next read gathers more entries.
        if (batches.size >= MAX_BATCHES_IN_FLIGHT) await Promise.race(batches);
        if (!batch.full) await delivery;
        if (!batch.full && wasBehind && !this.stopping) {
          wasBehind = false;
          this.options.onCaughtUp();
        }
        if (!batch.full && this.backupPauseMs > 0 && !this.stopping) await this.sleep(this.backupPauseMs);
        errors = 0;
      } catch (error) {
        if (this.stopping) break;
        ownPending = true;
        errors++;
        if (String(error).includes('NOGROUP')) {
          this.logger.warn(MESSAGES.streamDeleted());
          await this.ensureGroups('0').catch(() => undefined);
        } else if (errors === 1) {
          this.logger.warn(MESSAGES.streamReadFailed(error));
        }
        await this.sleep(Math.min(MAX_ERROR_PAUSE_MS, 100 * 2 ** errors));
      }
    }
    await Promise.allSettled(batches);
  }

  /**
   * At the head of the streams: a blocking read of new entries ('>'), or after an error of
   * this consumer's own pending ones ('0'), with the script right behind it that fetches
   * (and, as the primary source, claims) the failed jobs among them.
   */
  private async headRead(count: number, ownPending: boolean): Promise<StreamBatch> {
    const streams = [...this.queueOfStream.keys()];
    const ids = streams.map(() => (ownPending ? '0' : '>'));
    const read = this.blocking.call(
      'XREADGROUP', 'GROUP', this.keys.group, this.options.consumer,
      'COUNT', count, 'BLOCK', BLOCK_MS, 'STREAMS', ...streams, ...ids,
    );
    // As a backup, nearly every failure read is one the Workers recorded already: its job is not wanted.
    const requested = this.backupPauseMs === 0 ? this.reads.request(count, this.capacity.room()) : undefined;
    const pairs = streamReplyPairs(await read);
    // Its reply comes right behind the read's, with what it read on of the other streams.
    const behind = await requested;
    if (behind) pairs.push(...behind.readOn);
    if (tracing.streamRead.hasSubscribers) tracing.streamRead.publish({ pairs });
    const batch = this.parse(pairs, count);
    this.reads.received(pairs, batch.signals, behind?.jobs);
    if (behind?.failed) batch.rereadOwn = true;
    return batch;
  }

  /**
   * A backlog's read: the script reads new entries, records and claims their failures (no
   * more runs than the handlers have room for) and acknowledges them in Redis; only the
   * failures claimed here come back.
   */
  private async catchUpRead(): Promise<StreamBatch> {
    const claims = Math.min(this.capacity.room(), this.options.catchUpClaims);
    // Taken by another source since the reader waited for it (the script reads one entry at least).
    if (claims <= 0) return { signals: [], acks: [], count: 0, full: true };
    // The claims the script takes count against the room from now until their delivery
    // counts them: the sweep or a take-over would otherwise take the same room meanwhile.
    const release = this.capacity.hold(claims);
    try {
      const read = await this.reads.catchUp(BATCH, claims);
      for (const [stream, id] of read.malformed) this.logger.warn(MESSAGES.streamEntryMalformed(stream, `failed entry ${id} has no jobId`));
      return { signals: read.signals, acks: [], count: read.entries, full: read.full, release };
    } catch (error) {
      release();
      throw error;
    }
  }

  /**
   * A gap found is reported to the sweep (StreamPositions). Two XINFO per stream, sent at
   * once on `via`: at start, and before each read while behind. Never rejects.
   */
  private async checkForGaps(via: Redis | Cluster = this.commands): Promise<void> {
    await Promise.all([...this.queueOfStream.values()].map((queue) => this.positions.read(queue, via)));
  }

  /** The failures in a reply, and every entry id to acknowledge once they are recorded. */
  private parse(reply: [string, unknown[]][], count = BATCH): StreamBatch {
    const batch: StreamBatch = { signals: [], acks: [], count: 0, full: false };
    for (const [stream, entries] of reply) {
      const queue = this.queueOfStream.get(stream);
      if (!queue || !Array.isArray(entries)) continue;
      if (entries.length >= count) batch.full = true;
      const ids: string[] = [];
      for (const entry of entries) {
        batch.count++;
        const parsed = parseStreamEntry(queue, entry);
        if (parsed.kind === 'failure') batch.signals.push(parsed.signal);
        if (parsed.kind === 'malformed') this.logger.warn(MESSAGES.streamEntryMalformed(stream, parsed.problem));
        if (Array.isArray(entry) && typeof entry[0] === 'string') ids.push(entry[0]);
      }
      if (ids.length > 0) batch.acks.push([stream, ids]);
    }
    return batch;
  }

  /** Delivers a batch's failures; once they are recorded, every entry in it is acknowledged (a little later). */
  private async complete(batch: StreamBatch): Promise<void> {
    // deliver() counts its signals against the room as it is called: the read's hold ends then.
    const delivered = batch.signals.length > 0 ? this.deliver(batch.signals) : undefined;
    batch.release?.();
    await delivered;
    this.acknowledgeLater(batch);
  }

  /**
   * A batch whose failures are recorded is acknowledged with the next ones, within
   * ACK_DELAY_MS: one XACK per stream then, instead of one after every read at the head
   * (each read there holds two or three entries). An entry left unacknowledged a little
   * longer costs nothing: read again, its failure is found recorded and not run twice.
   */
  private acknowledgeLater(batch: StreamBatch): void {
    for (const [stream, ids] of batch.acks) {
      const list = this.recorded.get(stream);
      if (list) list.push(...ids);
      else this.recorded.set(stream, [...ids]);
      this.recordedCount += ids.length;
    }
    if (this.recordedCount >= BATCH) void this.acknowledgeRecorded();
    else if (this.recordedCount > 0) this.ackTimer ??= setTimeout(() => void this.acknowledgeRecorded(), ACK_DELAY_MS);
  }

  private async acknowledgeRecorded(): Promise<void> {
    clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    const acks = [...this.recorded];
    this.recorded.clear();
    this.recordedCount = 0;
    try {
      await Promise.all(
        acks.flatMap(([stream, ids]) => chunks(ids, BATCH).map((chunk) => this.commands.xack(stream, this.keys.group, ...chunk))),
      );
    } catch (error) {
      // Still pending in the group: read again after a read error, or taken over once idle.
      if (!this.stopping) this.logger.warn(MESSAGES.streamAckFailed(error));
    }
  }

  /**
   * Takes over entries that a stopped or crashed consumer read but never acknowledged. Right
   * after an outage that consumer may be alive and still delivering them: their failures
   * then go through the claim rule twice, which grants each claim once, and takes no claim
   * whose lease ran out while its holder may be catching up (LeaseTrust).
   */
  private async recoverIdle(): Promise<void> {
    for (const stream of this.queueOfStream.keys()) {
      let cursor = '0-0';
      try {
        do {
          // What the handlers have no room for now waits for the next round, or another replica.
          const room = Math.min(TAKEOVER_BATCH, this.capacity.room());
          if (room <= 0) break;
          const [next, entries, deleted] = (await this.commands.call(
            'XAUTOCLAIM', stream, this.keys.group, this.options.consumer, this.options.leaseMs, cursor, 'COUNT', room,
          )) as [string, unknown[], string[] | undefined];
          cursor = next;
          if (entries.length > 0) await this.complete(this.parse([[stream, entries]]));
          // Entries trimmed while pending: nothing to read; the sweep finds their failures.
          if (deleted && deleted.length > 0) await this.commands.xack(stream, this.keys.group, ...deleted);
        } while (cursor !== '0-0' && !this.stopping);
        await this.forgetStaleConsumers(stream);
      } catch (error) {
        if (!String(error).includes('NOGROUP') && !this.stopping) {
          this.logger.warn(MESSAGES.streamTakeoverFailed(stream, error));
        }
      }
    }
  }

  private async forgetStaleConsumers(stream: string): Promise<void> {
    const consumers = (await this.commands.call('XINFO', 'CONSUMERS', stream, this.keys.group)) as unknown[][];
    for (const fields of consumers) {
      const info = toRecord(fields);
      if (info.name !== this.options.consumer && Number(info.pending) === 0 && Number(info.idle) > STALE_CONSUMER_MS) {
        await this.commands.call('XGROUP', 'DELCONSUMER', stream, this.keys.group, String(info.name));
      }
    }
  }

  /**
   * On close: entries this consumer still holds are marked idle for a full lease, so another
   * replica takes them at once; a consumer holding nothing leaves the group.
   */
  private async handBack(): Promise<void> {
    for (const stream of this.queueOfStream.keys()) {
      try {
        let from = '-';
        let held = 0;
        for (;;) {
          const pending = (await this.commands.call(
            'XPENDING', stream, this.keys.group, from, '+', BATCH, this.options.consumer,
          )) as [string, ...unknown[]][];
          if (pending.length === 0) break;
          held += pending.length;
          const ids = pending.map((p) => p[0]);
          await this.commands.call(
            'XCLAIM', stream, this.keys.group, this.options.consumer, 0, ...ids, 'IDLE', this.options.leaseMs, 'JUSTID',
          );
          if (pending.length < BATCH) break;
          from = `(${ids[ids.length - 1]}`;
        }
        if (held === 0) await this.commands.call('XGROUP', 'DELCONSUMER', stream, this.keys.group, this.options.consumer);
      } catch (error) {
        this.logger.warn(MESSAGES.streamHandBackFailed(stream, error));
      }
    }
  }

  private async ensureGroups(startId: '$' | '0'): Promise<void> {
    await Promise.all(
      [...this.queueOfStream.keys()].map((stream) =>
        this.commands.xgroup('CREATE', stream, this.keys.group, startId, 'MKSTREAM').catch((error: unknown) => {
          if (!String(error).includes('BUSYGROUP')) throw error;
        }),
      ),
    );
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pause = undefined;
        resolve();
      }, ms);
      this.pause = { timer, resolve };
    });
  }

  private until(event: Promise<void>): Promise<void> {
    return new Promise((resolve) => {
      this.pause = { resolve };
      void event.then(() => {
        this.pause = undefined;
        resolve();
      });
    });
  }
}
