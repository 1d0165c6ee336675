/** A redis-server this process started: on a free port, in its own folder, for restarts and crashes. */
export interface OwnRedisServer {
  port: number;
  url: string;
  dir: string;
  /** Freezes it (SIGSTOP): connections stay open, nothing is answered, as when the network drops packets. */
  pause(): void;
  /** Thaws it (SIGCONT). */
  resume(): void;
  /** Stops it gracefully (it writes its AOF first) and starts it again on the same port and folder. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}
export declare const REDIS_HELP: string;
export declare function hasRedisServerBinary(): boolean;
export declare function redisAnswers(host: string, port: number): Promise<boolean>;
export declare function freePort(): Promise<number>;
export declare function startRedisServer(options?: { appendOnly?: boolean; extraArgs?: string[] }): Promise<OwnRedisServer>;
