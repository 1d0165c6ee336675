import { randomBytes } from 'node:crypto';
import { type ConsoleLoggerOptions, type INestApplicationContext, Injectable, type LoggerService, Module, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { BullModule, Processor, WorkerHost } from '@nestjs/bullmq';
import { type ConnectionOptions, FlowProducer, type Job, type JobNode, type JobsOptions, Queue, UnrecoverableError, Worker, type WorkerOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { FlowFailureModule, FlowFailureService, type FlowFailureEvent, type FlowFailureModuleOptions, type LiveSource } from 'nestjs-flow-failure';
import { type HandlerDecorations, handlerClass } from './handler-class.js';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export function redisConnection(url = REDIS_URL): { host: string; port: number } {
  const parsed = new URL(url);
  return { host: parsed.hostname, port: Number(parsed.port || 6379) };
}

/** Every way the live sources can be configured: behaviour must not depend on which delivered a failure. */
export const SOURCE_MODES: LiveSource[][] = [['worker', 'stream'], ['worker'], ['stream']];

/** Each test file its own prefix, so files can run side by side and clean up only their keys. */
export function uniquePrefix(name: string): string {
  return `fft-${name}-${randomBytes(3).toString('hex')}`;
}

/** What a test job does, read from its data by the processors below. */
export interface JobBehaviour {
  /** Throw on every attempt (true), or on attempts before this number (n). */
  fail?: boolean | number;
  /** Throw an UnrecoverableError: no retries whatever `attempts` says. */
  unrecoverable?: boolean;
  reason?: string;
  /** Sleep before answering, in ms. */
  sleepMs?: number;
  /** What the processor returns when it succeeds (default 'ok'). */
  result?: unknown;
}

/** The processor of every test queue: what a job does is in its data. */
export async function runBehaviour(job: Job<JobBehaviour>): Promise<unknown> {
  const { fail, unrecoverable, reason, sleepMs, result = 'ok' } = job.data ?? {};
  if (sleepMs) await new Promise((resolve) => setTimeout(resolve, sleepMs));
  const message = reason ?? `${job.name} failed`;
  if (unrecoverable) throw new UnrecoverableError(message);
  if (fail === true || (typeof fail === 'number' && job.attemptsMade < fail)) throw new Error(message);
  return result;
}

/** A `@Processor` class for a queue, whose jobs behave as their data says. */
export function behaviourProcessor(queueName: string, workerOptions: Partial<WorkerOptions> = {}): Type<WorkerHost> {
  @Processor(queueName, { concurrency: 20, ...workerOptions })
  class BehaviourProcessor extends WorkerHost {
    process(job: Job<JobBehaviour>): Promise<unknown> {
      return runBehaviour(job);
    }
  }
  Object.defineProperty(BehaviourProcessor, 'name', { value: `${queueName}Processor` });
  return BehaviourProcessor;
}

export interface HandlerRun {
  handler: string;
  event: FlowFailureEvent;
}

/** Handlers in the tests write here; tests wait on it. */
@Injectable()
export class EventLog {
  /** Completed runs, in the order they completed. */
  readonly runs: HandlerRun[] = [];
  /** Runs that have started, completed or not. */
  readonly started: HandlerRun[] = [];
  /** Handlers running right now, and the most that ever ran at once. */
  running = 0;
  maxRunning = 0;
  private gate?: { opened: Promise<void>; open: () => void };

  record(handler: string, event: FlowFailureEvent): void {
    this.runs.push({ handler, event });
  }

  of(handler: string): FlowFailureEvent[] {
    return this.runs.filter((run) => run.handler === handler).map((run) => run.event);
  }

  /** From now on, handlers that `run` wait (mid-run, holding their claims) until `release()`. */
  hold(): void {
    if (this.gate) return;
    let open!: () => void;
    const opened = new Promise<void>((resolve) => (open = resolve));
    this.gate = { opened, open };
  }

  release(): void {
    this.gate?.open();
    this.gate = undefined;
  }

  /** A handler's body: counted as running, waits at the gate if held, takes `delayMs`, then records. */
  async run(handler: string, event: FlowFailureEvent, delayMs = 0): Promise<void> {
    this.started.push({ handler, event });
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    try {
      await this.gate?.opened;
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      this.record(handler, event);
    } finally {
      this.running--;
    }
  }
}

/**
 * What the throwing handlers of one test app do: throw for every job while `all`, else for
 * the jobs in `jobs`. Each app has its own (a test fixes a handler in one app only), so no
 * static flag outlives a test.
 */
@Injectable()
export class Breakage {
  all = true;
  readonly jobs = new Set<string>();

  /** Throws `message` if the handler is broken for this job. */
  check(jobId: string, message: string): void {
    if (this.all || this.jobs.has(jobId)) throw new Error(message);
  }

  /** Fixed for every job but these. */
  fixExcept(...jobIds: string[]): void {
    this.all = false;
    this.jobs.clear();
    jobIds.forEach((id) => this.jobs.add(id));
  }
}

/**
 * A handler class that records every event it gets in the EventLog, as 'parent' and 'child'.
 * `true` declares the handler with no argument; leaving a key out declares none. With
 * `delayMs`, each handler takes that long before it records (a slow handler); `log.hold()`
 * makes them wait until released. With `as`, the class is a second one of its own
 * (`<as>Handlers`) that records as `<as>` and `<as>:child`.
 */
export function recordingHandlers(decorate: HandlerDecorations, { delayMs = 0, as }: { delayMs?: number; as?: string } = {}): Type {
  return handlerClass(decorate, (handler, event, log) => log.run(as ? (handler === 'parent' ? as : `${as}:child`) : handler, event, delayMs), EventLog, as);
}

/** Keeps what the app logs, and prints it only when TEST_LOGS is set. */
export class CapturingLogger implements LoggerService {
  readonly lines: { level: string; message: string }[] = [];
  private readonly print = Boolean(process.env.TEST_LOGS);

  log(message: unknown) { this.keep('log', message); }
  error(message: unknown) { this.keep('error', message); }
  warn(message: unknown) { this.keep('warn', message); }
  debug() {}
  verbose() {}
  setLogLevels?(_levels: ConsoleLoggerOptions['logLevels']): void {}

  has(level: string, pattern: RegExp): boolean {
    return this.lines.some((line) => line.level === level && pattern.test(line.message));
  }

  private keep(level: string, message: unknown): void {
    this.lines.push({ level, message: String(message) });
    if (this.print) console.log(`[${level}] ${String(message)}`);
  }
}

export interface AppSpec {
  prefix: string;
  /** Queues whose jobs the app's own Workers process. */
  processors?: string[];
  workerOptions?: Partial<WorkerOptions>;
  /** Classes with @OnParentFailed / @OnChildFailed methods; they may inject EventLog. */
  handlers?: Type[];
  options?: FlowFailureModuleOptions;
  /** Leave out BullModule entirely (an app that only reacts to failures). */
  withoutBull?: boolean;
  /** A Redis other than REDIS_URL (one the test started). */
  redisUrl?: string;
  /** BullModule's connection instead of redisUrl's (an ioredis Cluster); the test closes it. */
  connection?: ConnectionOptions;
}

export interface TestApp {
  app: INestApplicationContext;
  log: EventLog;
  logger: CapturingLogger;
  flowFailure: FlowFailureService;
  close(): Promise<void>;
}

/** The root module of a test app: BullModule with processors, FlowFailureModule, handlers. */
export function testAppModule(spec: AppSpec): Type {
  const connection = spec.connection ?? redisConnection(spec.redisUrl);
  const processors = spec.processors ?? [];
  const imports = [
    ...(spec.withoutBull
      ? []
      : [
          BullModule.forRoot({ connection, prefix: spec.prefix }),
          BullModule.registerQueue(...processors.map((name) => ({ name }))),
        ]),
    FlowFailureModule.forRoot(spec.withoutBull ? { connection, prefix: spec.prefix, ...spec.options } : spec.options),
  ];
  @Module({
    imports,
    providers: [EventLog, Breakage, ...processors.map((q) => behaviourProcessor(q, spec.workerOptions)), ...(spec.handlers ?? [])],
  })
  class TestAppModule {}
  return TestAppModule;
}

export async function startApp(spec: AppSpec): Promise<TestApp> {
  const logger = new CapturingLogger();
  const app = await NestFactory.createApplicationContext(testAppModule(spec), { logger });
  let closing: Promise<void> | undefined;
  // Once: a test may close an app itself, and its resources close whatever is left after it.
  const close = () => (closing ??= app.close());
  return { app, log: app.get(EventLog), logger, flowFailure: app.get(FlowFailureService), close };
}

/** The FlowProducer and Redis client a test drives the queues with, from outside the apps. */
export class TestRedis {
  readonly redis: Redis;
  readonly flows: FlowProducer;
  private readonly queues = new Map<string, Queue>();
  private readonly connections: Redis[] = [];
  private readonly workers: Worker[] = [];

  constructor(
    readonly prefix: string,
    readonly url = REDIS_URL,
  ) {
    this.redis = new Redis(url, { maxRetriesPerRequest: null });
    this.flows = new FlowProducer({ connection: redisConnection(url), prefix });
  }

  queue(name: string): Queue {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Queue(name, { connection: redisConnection(this.url), prefix: this.prefix });
      this.queues.set(name, queue);
    }
    return queue;
  }

  /**
   * Orders (queue `orders`) whose payment child (queue `payments`, `failParentOnFailure`)
   * fails them; resolves once every order has failed. Workers for both queues must run.
   */
  async failOrders(count: number): Promise<JobNode[]> {
    const flows = await this.flows.addBulk(
      Array.from({ length: count }, (_, i) => ({
        name: `order-${i}`,
        queueName: 'orders',
        children: [{ name: 'charge', queueName: 'payments', data: { fail: true }, opts: { failParentOnFailure: true } }],
      })),
    );
    await waitUntil('every order failed', async () =>
      (await Promise.all(flows.map((flow) => flow.job.getState()))).every((state) => state === 'failed'),
    );
    return flows;
  }

  /** A plain BullMQ Worker outside any app (a split deployment), whose jobs behave as their data says; closed with this. */
  worker(queueName: string, options: Partial<WorkerOptions> = {}): Worker {
    const worker = new Worker(queueName, runBehaviour, { connection: redisConnection(this.url), prefix: this.prefix, concurrency: 20, ...options });
    this.workers.push(worker);
    return worker;
  }

  /** `count` failing children under parents (see addFailingChildren); their ids. */
  failChildren(count = 1, child: ChildSpec = {}): Promise<string[]> {
    return addFailingChildren(this.flows, count, child);
  }

  /** A connection of its own (as each app instance has its own), closed with this. */
  connection(): Redis {
    const connection = this.redis.duplicate();
    this.connections.push(connection);
    return connection;
  }

  /** Every key matching `pattern` (a SCAN pattern), however many SCAN pages they take on a busy Redis. */
  keys(pattern: string): Promise<string[]> {
    return scanKeys(this.redis, pattern);
  }

  /** Deletes this prefix's keys, and nothing else. */
  async cleanup(): Promise<void> {
    const keys = await this.keys(`${this.prefix}:*`);
    for (let from = 0; from < keys.length; from += 1000) await this.redis.unlink(...keys.slice(from, from + 1000));
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.close()));
    await this.cleanup();
    await Promise.all([...this.queues.values()].map((queue) => queue.close()));
    await Promise.all(this.connections.map((connection) => connection.quit()));
    await this.flows.close();
    await this.redis.quit();
  }
}

/** A child of addFailingChildren: its name, data (what its processor does) and options. */
export interface ChildSpec {
  name?: string;
  data?: JobBehaviour;
  opts?: JobsOptions;
}

/**
 * `count` parents (queue `parents`), each with one child (queue `children`) that fails
 * (data `{ fail: true }` unless given) under ignoreDependencyOnFailure unless `opts` say
 * otherwise: the parents go on. Resolves with the children's ids once they are added.
 */
export async function addFailingChildren(flows: FlowProducer, count = 1, child: ChildSpec = {}): Promise<string[]> {
  const nodes = await flows.addBulk(
    Array.from({ length: count }, () => ({
      name: 'parent',
      queueName: 'parents',
      children: [{ name: child.name ?? 'child', queueName: 'children', data: child.data ?? { fail: true }, opts: { ignoreDependencyOnFailure: true, ...child.opts } }],
    })),
  );
  return nodes.map((node) => node.children?.[0].job.id as string);
}

/** The job ids of a three-level cascade (addCascade). */
export interface CascadeIds {
  top: string;
  middle: string;
  leaf: string;
}

/**
 * A three-level failParentOnFailure cascade: job `top` (queue `top`) waits on `middle`
 * (queue `middle`), which waits on `leaf` (queue `leaf`), which fails with `reason`;
 * `leafOpts` are added to the leaf's options.
 */
export async function addCascade(flows: FlowProducer, leafOpts: JobsOptions = {}, reason = 'disk full'): Promise<CascadeIds> {
  const flow = await flows.add({
    name: 'top',
    queueName: 'top',
    children: [
      {
        name: 'middle',
        queueName: 'middle',
        opts: { failParentOnFailure: true },
        children: [{ name: 'leaf', queueName: 'leaf', data: { fail: true, reason }, opts: { failParentOnFailure: true, ...leafOpts } }],
      },
    ],
  });
  const middle = flow.children?.[0];
  return { top: flow.job.id as string, middle: middle?.job.id as string, leaf: middle?.children?.[0].job.id as string };
}

/** Every key matching `pattern` (a SCAN pattern): all of SCAN's pages, each key once. */
export async function scanKeys(redis: Redis, pattern: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    found.push(...keys);
  } while (cursor !== '0');
  return [...new Set(found)].sort(); // SCAN may return a key twice
}

/** Polls until `check` holds; fails with `what` when it still does not after `timeoutMs`. */
export async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** The claims a log says were taken over: its 'Took over N claim(s)' warnings, summed. */
export function claimsTakenOver(log: string): number {
  return [...log.matchAll(/Took over (\d+) claim/g)].reduce((sum, match) => sum + Number(match[1]), 0);
}

/** Timers that keep the process alive (an unref'd one does not): a closed app must leave none of its own. */
export function aliveTimers(): number {
  return process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length;
}

/** Waits until every app has read its streams and finished its handlers: after this, a count is final. */
export async function settle(...apps: TestApp[]): Promise<void> {
  // Twice: a handler run by one app can be the last thing another app was waiting on.
  for (let round = 0; round < 2; round++) await Promise.all(apps.map((app) => app.flowFailure.whenIdle()));
}
