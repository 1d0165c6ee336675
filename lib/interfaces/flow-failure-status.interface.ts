/** This app instance as a health check sees it (`FlowFailureService.status()`). */
export interface FlowFailureStatus {
  /** Whether Redis answered a PING in time; `address` is the one the module connects to. */
  redis: { up: boolean; address: string };
  /** Each watched queue's events stream: entries the consumer group has not read yet (undefined when Redis cannot tell, or is down). */
  streams: { queueName: string; lag?: number }[];
  /** Dead letters of the consumer group (undefined when Redis is down). */
  deadLetters?: number;
  /** Handler runs queued or running in this instance. */
  backlog: number;
}
