/**
 * SpotOn's gRPC API (spoton.v1) for Node.js.
 *
 * ```js
 * import { connect } from '@spoton/client';
 * const spoton = connect({ target: '127.0.0.1:50051', apiKey: process.env.SPOTON_API_KEY });
 * console.log((await spoton.system.getHealth({})).status);
 * for await (const event of spoton.watchTask(taskId)) console.log(event.sequence, event.payload);
 * spoton.close();
 * ```
 *
 * Message types: `import type { Task__Output } from '@spoton/client/v1/Task'` (`X` is what
 * a call accepts, `X__Output` what it returns).
 */
export { status, Metadata } from '@grpc/grpc-js';
export type { ServiceError, Deadline } from '@grpc/grpc-js';
export {
  connect,
  MAX_MESSAGE_BYTES,
  SERVICES,
  type ConnectOptions,
  type RawClients,
  type SpotOn,
  type TlsOptions,
  type WatchJobOptions,
  type WatchTaskOptions,
} from './connect.js';
export type { CallOptions, DuplexStream, PromiseClient, ServerStream } from './calls.js';
export { API_KEY_ENV, type Credentials } from './credentials.js';
export { DEFAULT_DEADLINE_MS, deadlineAfter } from './deadlines.js';
export { findProtoDir, protoFiles, PROTO_PACKAGE } from './protos.js';
export { WATCH_BACKOFF_MS, WATCH_RETRIED_CODES, WATCH_RETRIES, resumed, type ResumeOptions } from './watch.js';
export type { GetHealthResponse__Output } from './generated/spoton/v1/GetHealthResponse.js';
export type { Job__Output } from './generated/spoton/v1/Job.js';
export type { StreamFramesRequest } from './generated/spoton/v1/StreamFramesRequest.js';
export type { StreamFramesResponse__Output } from './generated/spoton/v1/StreamFramesResponse.js';
export type { Task__Output } from './generated/spoton/v1/Task.js';
export type { TaskEvent__Output } from './generated/spoton/v1/TaskEvent.js';
export type { TaskState__Output } from './generated/spoton/v1/TaskState.js';
export type { Track__Output } from './generated/spoton/v1/Track.js';
