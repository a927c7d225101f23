/**
 * Server streams that resume where they broke: WatchTask after the last event's sequence
 * number, WatchJob after the last revision. The same rules as the Python client
 * (clients/spoton_client/client.py `_resumed`): reopened after the last item seen when the
 * call fails with UNAVAILABLE (the server restarting, a dropped connection), with
 * exponential back-off, at most `maxRetries` times in a row; any item received resets the
 * count. Every other status ends the iteration with that error.
 */
import * as grpc from '@grpc/grpc-js';
import { setTimeout as sleep } from 'node:timers/promises';
import { messages } from './calls.js';

/** Reopens in a row before giving up (the Python client's WATCH_RETRIES). */
export const WATCH_RETRIES = 5;
/** The first back-off; it doubles on each retry in a row (0.5 s, 1 s, 2 s, ...). */
export const WATCH_BACKOFF_MS = 250;
/** The status codes after which a stream is reopened. */
export const WATCH_RETRIED_CODES: readonly grpc.status[] = [grpc.status.UNAVAILABLE];

export interface ResumeOptions {
  maxRetries?: number;
  backoffMs?: number;
  retryCodes?: readonly grpc.status[];
  /** Ends the iteration (with an AbortError) and cancels the call. */
  signal?: AbortSignal;
  /** Called before each reopen, with the error, the retry count and the position it resumes after. */
  onRetry?: (error: grpc.ServiceError, retry: number, after: number) => void;
}

function isServiceError(error: unknown): error is grpc.ServiceError {
  return error instanceof Error && typeof (error as Partial<grpc.ServiceError>).code === 'number';
}

/**
 * The items of a stream opened by `open(after)`, reopened after the last item's
 * `position(item)` when it breaks (see the module comment).
 */
export async function* resumed<T>(
  open: (after: number) => grpc.ClientReadableStream<T>,
  position: (item: T) => number,
  after: number,
  options: ResumeOptions = {},
): AsyncGenerator<T, void, undefined> {
  const maxRetries = options.maxRetries ?? WATCH_RETRIES;
  const backoffMs = options.backoffMs ?? WATCH_BACKOFF_MS;
  const retryCodes = options.retryCodes ?? WATCH_RETRIED_CODES;
  let retries = 0;
  for (;;) {
    options.signal?.throwIfAborted();
    const call = open(after);
    const abort = () => call.cancel();
    options.signal?.addEventListener('abort', abort, { once: true });
    try {
      for await (const item of messages(call)) {
        after = position(item);
        retries = 0;
        yield item;
      }
      return;
    } catch (error) {
      options.signal?.throwIfAborted();
      if (!isServiceError(error) || !retryCodes.includes(error.code) || retries >= maxRetries) {
        throw error;
      }
      retries += 1;
      options.onRetry?.(error, retries, after);
      await sleep(backoffMs * 2 ** retries, undefined, { signal: options.signal });
    } finally {
      options.signal?.removeEventListener('abort', abort);
    }
  }
}
