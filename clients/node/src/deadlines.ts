/**
 * Deadlines: every unary call gets one, so a call to a server that stopped answering fails
 * with DEADLINE_EXCEEDED instead of hanging; the server sees it too and stops working on a
 * call nobody waits for. Streams (WatchTask, StreamFrames, uploads) run as long as they
 * need unless the caller sets one.
 */
import * as grpc from '@grpc/grpc-js';

/** The deadline of a unary call that sets none (`connect({ defaultDeadlineMs })` changes it). */
export const DEFAULT_DEADLINE_MS = 30_000;

/** The deadline `ms` milliseconds from now. */
export function deadlineAfter(ms: number): Date {
  return new Date(Date.now() + ms);
}

/** An interceptor giving each unary call without a deadline one `ms` milliseconds away. */
export function defaultDeadlineInterceptor(ms: number): grpc.Interceptor {
  return (options, nextCall) => {
    const definition = options.method_definition;
    const unary = !definition.requestStream && !definition.responseStream;
    return new grpc.InterceptingCall(
      nextCall(unary && options.deadline === undefined ? { ...options, deadline: deadlineAfter(ms) } : options),
    );
  };
}
