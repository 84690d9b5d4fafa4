/** A Logger that records events (name and fields) instead of writing them. */
import type { LogFields, Logger } from "../../src/observe/log.ts";

/** One recorded event. */
export interface RecordedEvent {
  readonly event: string;
  readonly fields: LogFields;
}

/** Records every event, whatever its level, into `events`. */
export function recordingLogger(events: RecordedEvent[]): Logger {
  const logger: Logger = {
    debug: (event, fields = {}) => events.push({ event, fields }),
    info: (event, fields = {}) => events.push({ event, fields }),
    warn: (event, fields = {}) => events.push({ event, fields }),
    error: (event, fields = {}) => events.push({ event, fields }),
    with: () => logger,
  };
  return logger;
}
