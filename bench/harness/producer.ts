import { type FlowJob, FlowProducer, Queue, Worker } from 'bullmq';
import { connectionOf } from '../shared/connection.js';
import { type BenchJobData, CHILDREN_QUEUE, PARENTS_QUEUE, WATCHED_QUEUES, flowJobIds } from '../shared/queues.js';

/** Kept short so 50,000 successful jobs do not fill the bench's Redis; the same for every variant. */
const KEEP_COMPLETED = { count: 1000 };

/**
 * Adds the bench's jobs from the bench process, outside the app under test: fail-parent
 * flows (a parent in `parents`, one child in `children` that fails and fails the parent),
 * plain successful jobs and successful flows.
 */
export class Producer {
  private readonly flowProducer: FlowProducer;
  private readonly queues = new Map<string, Queue>();

  constructor(
    private readonly redisUrl: string,
    private readonly prefix: string,
    /** Declares `streams.events.maxLen` in the queues' meta (read by BullMQ's scripts at every XADD). */
    private readonly eventsMaxLen?: number,
  ) {
    this.flowProducer = new FlowProducer({ connection: connectionOf(redisUrl), prefix });
  }

  /** Creates the queues, which writes their meta (events max length) before any job is added. */
  async ready(): Promise<void> {
    for (const name of WATCHED_QUEUES) await this.queue(name).getVersion();
  }

  /** A flow whose parent (in `parents`) and child (in `children`) both succeed. */
  static successfulFlow(): FlowJob {
    const opts = { removeOnComplete: KEEP_COMPLETED };
    return { name: 'parent', queueName: PARENTS_QUEUE, data: {}, opts, children: [{ name: 'child', queueName: CHILDREN_QUEUE, data: {}, opts }] };
  }

  static failParentFlow(phase: string, index: number): FlowJob {
    const { parentId, childId } = flowJobIds(phase, index);
    const child: FlowJob = {
      name: 'child',
      queueName: CHILDREN_QUEUE,
      data: { fail: true } satisfies BenchJobData,
      opts: { jobId: childId, failParentOnFailure: true, attempts: 1 },
    };
    return { name: 'parent', queueName: PARENTS_QUEUE, data: {}, opts: { jobId: parentId }, children: [child] };
  }

  /** Adds flows `from` .. `from + count - 1` of a phase, in one MULTI per 500. */
  async addFlows(phase: string, from: number, count: number): Promise<void> {
    for (let start = from; start < from + count; start += 500) {
      const end = Math.min(from + count, start + 500);
      const flows: FlowJob[] = [];
      for (let i = start; i < end; i++) flows.push(Producer.failParentFlow(phase, i));
      await this.flowProducer.addBulk(flows);
    }
  }

  /** `count` successful flows, two jobs each. */
  async addSuccessfulFlows(count: number): Promise<void> {
    await this.flowProducer.addBulk(Array.from({ length: count }, () => Producer.successfulFlow()));
  }

  async addSuccesses(queueName: string, count: number): Promise<void> {
    const jobs = Array.from({ length: count }, () => ({ name: 'ok', data: {}, opts: { removeOnComplete: KEEP_COMPLETED } }));
    await this.queue(queueName).addBulk(jobs);
  }

  queue(name: string): Queue {
    let queue = this.queues.get(name);
    if (!queue) {
      const streams = this.eventsMaxLen ? { streams: { events: { maxLen: this.eventsMaxLen } } } : {};
      queue = new Queue(name, { connection: connectionOf(this.redisUrl), prefix: this.prefix, ...streams });
      this.queues.set(name, queue);
    }
    return queue;
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((queue) => queue.close()));
    await this.flowProducer.close();
  }
}

/**
 * Plain bullmq Workers in the bench process: they make failures happen while the app under
 * test is down (catch-up scenario), with the same processing rule as the app's processors.
 */
export class StandInWorkers {
  private readonly workers: Worker[];
  failed = 0;

  constructor(redisUrl: string, prefix: string, concurrency: number) {
    this.workers = WATCHED_QUEUES.map(
      (name) =>
        new Worker<BenchJobData>(
          name,
          async (job) => {
            if (job.data?.fail) throw new Error(`${job.name} failed on purpose`);
            return 'ok';
          },
          { connection: connectionOf(redisUrl), prefix, concurrency },
        ),
    );
    for (const worker of this.workers) {
      worker.on('failed', (job) => {
        if (job?.finishedOn) this.failed++;
      });
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.close()));
  }
}
