/** A redis-server this process started: on a free port, in its own folder, for restarts and crashes. */
export interface OwnRedisServer {
  port: number;
  url: string;
  dir: string;
  /** Freezes it (SIGSTOP): connections stay open, nothing is answered, as when the network drops packets. */
  pause(): void;
  /** Thaws it (SIGCONT). */
  resume(): void;
  /** Stops it gracefully (it writes its AOF first), waits `downMs` (an outage), and starts it again on the same port and folder. */
  restart(downMs?: number): Promise<void>;
  stop(): Promise<void>;
}
/** A port no one else can take until released, where every connection is closed at once: no Redis answers there. */
export interface HeldPort {
  port: number;
  release(): Promise<void>;
}
export declare const REDIS_HELP: string;
export declare function hasRedisServerBinary(): boolean;
export declare function redisAnswers(host: string, port: number): Promise<boolean>;
export declare function redisPid(port: number): Promise<number | undefined>;
export declare function holdPort(): Promise<HeldPort>;
export declare function startRedisServer(options?: { appendOnly?: boolean; extraArgs?: string[]; server?: string }): Promise<OwnRedisServer>;
