/**
 * Promise and async-iterator forms of grpc-js's callback clients, one per call shape:
 * unary calls return a Promise, server streams an async iterable, client streams take an
 * (async) iterable of requests, and bidirectional streams give `send`/`end` plus an async
 * iterable of responses. The types are derived from the generated client interfaces, so
 * they follow the .proto files.
 */
import * as grpc from '@grpc/grpc-js';
import type { EventEmitter } from 'node:events';
import { deadlineAfter } from './deadlines.js';

/** Options of one call. */
export interface CallOptions {
  /** Milliseconds from now; wins over the connection's default deadline. */
  deadlineMs?: number;
  /** An absolute deadline (a Date or milliseconds since the epoch); `Infinity` for none. */
  deadline?: grpc.Deadline;
  /** Extra metadata (an `authorization` here replaces the connection's credential). */
  metadata?: grpc.Metadata;
  /** Cancels the call (CANCELLED) when aborted. */
  signal?: AbortSignal;
}

/** A server stream's responses, in order; breaking out of `for await` cancels the call. */
export interface ServerStream<Res> extends AsyncIterable<Res> {
  /** Cancels the call; the iteration then ends with a CANCELLED error. */
  cancel(): void;
  /** The underlying grpc-js call (its metadata, status and peer events). */
  readonly call: grpc.ClientReadableStream<Res>;
}

/** A bidirectional stream: send requests, iterate over responses. */
export interface DuplexStream<Req, Res> extends AsyncIterable<Res> {
  /** Sends one request; resolves once the stream can take another (back-pressure). */
  send(request: Req): Promise<void>;
  /** Half-closes: no more requests; the iteration ends after the last response. */
  end(): void;
  cancel(): void;
  readonly call: grpc.ClientDuplexStream<Req, Res>;
}

type Requests<Req> = Iterable<Req> | AsyncIterable<Req>;

/** The promise form of one generated client method, chosen by the call's shape. */
export type Promised<F> = F extends (options?: grpc.CallOptions) => grpc.ClientDuplexStream<infer Req, infer Res>
  ? (options?: CallOptions) => DuplexStream<Req, Res>
  : F extends (argument: infer Req, options?: grpc.CallOptions) => grpc.ClientReadableStream<infer Res>
    ? (request: Req, options?: CallOptions) => ServerStream<Res>
    : F extends (callback: grpc.requestCallback<infer Res>) => grpc.ClientWritableStream<infer Req>
      ? (requests: Requests<Req>, options?: CallOptions) => Promise<Res>
      : F extends (argument: infer Req, callback: grpc.requestCallback<infer Res>) => grpc.ClientUnaryCall
        ? (request: Req, options?: CallOptions) => Promise<Res>
        : never;

/** The lowerCamelCase methods of a generated client (grpc-js also defines UpperCamelCase aliases). */
type MethodKeys<C> = {
  [K in keyof C]: K extends keyof grpc.Client ? never : K extends string ? (K extends Uncapitalize<K> ? K : never) : never;
}[keyof C];

/** A service with every RPC in its promise form: `await spoton.tasks.getTask({ taskId })`. */
export type PromiseClient<C> = { [K in MethodKeys<C>]: Promised<C[K]> };

type AnyFunction = (...args: unknown[]) => unknown;

function grpcOptions(options: CallOptions): { metadata: grpc.Metadata; callOptions: grpc.CallOptions } {
  const deadline = options.deadlineMs !== undefined ? deadlineAfter(options.deadlineMs) : options.deadline;
  return { metadata: options.metadata ?? new grpc.Metadata(), callOptions: deadline === undefined ? {} : { deadline } };
}

function cancelOnAbort(call: { cancel(): void }, signal: AbortSignal | undefined): void {
  if (!signal) return;
  if (signal.aborted) call.cancel();
  else signal.addEventListener('abort', () => call.cancel(), { once: true });
}

/** The messages of a readable call, typed; leaving the iteration early cancels the call. */
export async function* messages<T>(call: grpc.ClientReadableStream<T>): AsyncGenerator<T, void, undefined> {
  quietErrors(call);
  try {
    for await (const message of call) {
      yield message as T;
    }
  } finally {
    call.cancel();
  }
}

/** Resolves once `call` can take another message, or has closed (its error is reported elsewhere). */
function room(call: EventEmitter): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      call.off('drain', done);
      call.off('close', done);
      resolve();
    };
    call.once('drain', done);
    call.once('close', done);
  });
}

/** A streaming call's errors reach its iterator or callback; this listener only keeps an error
 * nobody waits for (a stream never iterated, a late CANCELLED) from crashing the process. */
function quietErrors(call: EventEmitter): void {
  call.on('error', () => {});
}

function serverStream<Res>(call: grpc.ClientReadableStream<Res>): ServerStream<Res> {
  let iterator: AsyncGenerator<Res, void, undefined> | undefined;
  quietErrors(call);
  return {
    call,
    cancel: () => call.cancel(),
    [Symbol.asyncIterator]: () => (iterator ??= messages(call)),
  };
}

function duplexStream<Req, Res>(call: grpc.ClientDuplexStream<Req, Res>): DuplexStream<Req, Res> {
  let iterator: AsyncGenerator<Res, void, undefined> | undefined;
  quietErrors(call);
  return {
    call,
    send: async (request) => {
      if (!call.write(request)) await room(call);
    },
    end: () => call.end(),
    cancel: () => call.cancel(),
    [Symbol.asyncIterator]: () => (iterator ??= messages(call as unknown as grpc.ClientReadableStream<Res>)),
  };
}

/** Writes `requests` to `call` with back-pressure, then half-closes; stops once the call has ended. */
async function pump<Req>(requests: Requests<Req>, call: grpc.ClientWritableStream<Req>, ended: () => boolean): Promise<void> {
  for await (const request of requests) {
    if (ended()) return;
    if (!call.write(request)) await room(call);
  }
  if (!ended()) call.end();
}

/**
 * The promise form of `client`: one wrapper per RPC of its service definition, built from
 * each method's shape (request and response streaming) at run time.
 */
export function promiseClient<C extends grpc.Client>(client: C): PromiseClient<C> {
  const definition = (client.constructor as grpc.ServiceClientConstructor).service;
  const methods = client as unknown as Record<string, AnyFunction>;
  const wrapped: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(definition)) {
    const key = method.originalName ?? name;
    const invoke = (...args: unknown[]) => methods[name]!.apply(client, args);
    if (method.requestStream && method.responseStream) {
      wrapped[key] = (options: CallOptions = {}) => {
        const { metadata, callOptions } = grpcOptions(options);
        const call = invoke(metadata, callOptions) as grpc.ClientDuplexStream<unknown, unknown>;
        cancelOnAbort(call, options.signal);
        return duplexStream(call);
      };
    } else if (method.responseStream) {
      wrapped[key] = (request: unknown, options: CallOptions = {}) => {
        const { metadata, callOptions } = grpcOptions(options);
        const call = invoke(request, metadata, callOptions) as grpc.ClientReadableStream<unknown>;
        cancelOnAbort(call, options.signal);
        return serverStream(call);
      };
    } else if (method.requestStream) {
      wrapped[key] = (requests: Requests<unknown>, options: CallOptions = {}) =>
        new Promise((resolve, reject) => {
          const { metadata, callOptions } = grpcOptions(options);
          let ended = false;
          const call = invoke(metadata, callOptions, (error: grpc.ServiceError | null, response: unknown) => {
            ended = true;
            if (error) reject(error);
            else resolve(response);
          }) as grpc.ClientWritableStream<unknown>;
          quietErrors(call); // the status comes to the callback above
          cancelOnAbort(call, options.signal);
          pump(requests, call, () => ended).catch((error: unknown) => {
            call.cancel();
            reject(error);
          });
        });
    } else {
      wrapped[key] = (request: unknown, options: CallOptions = {}) =>
        new Promise((resolve, reject) => {
          const { metadata, callOptions } = grpcOptions(options);
          const call = invoke(request, metadata, callOptions, (error: grpc.ServiceError | null, response: unknown) =>
            error ? reject(error) : resolve(response),
          ) as grpc.ClientUnaryCall;
          cancelOnAbort(call, options.signal);
        });
    }
  }
  return wrapped as PromiseClient<C>;
}
