/**
 * `connect()`: one channel to a SpotOn server with every spoton.v1 service on it, each call
 * carrying the credential and each unary call a deadline.
 */
import * as grpc from '@grpc/grpc-js';
import { type PromiseClient, promiseClient } from './calls.js';
import { type Credentials, authInterceptor, authorizationValue } from './credentials.js';
import { DEFAULT_DEADLINE_MS, defaultDeadlineInterceptor } from './deadlines.js';
import { findProtoDir, loadSpotOnPackage } from './protos.js';
import { type ResumeOptions, resumed } from './watch.js';
import type { AnalyticsServiceClient } from './generated/spoton/v1/AnalyticsService.js';
import type { AuthServiceClient } from './generated/spoton/v1/AuthService.js';
import type { CameraRegistryServiceClient } from './generated/spoton/v1/CameraRegistryService.js';
import type { CatalogServiceClient } from './generated/spoton/v1/CatalogService.js';
import type { InferenceServiceClient } from './generated/spoton/v1/InferenceService.js';
import type { Job__Output } from './generated/spoton/v1/Job.js';
import type { JobServiceClient } from './generated/spoton/v1/JobService.js';
import type { SinkServiceClient } from './generated/spoton/v1/SinkService.js';
import type { SystemServiceClient } from './generated/spoton/v1/SystemService.js';
import type { TaskEvent__Output } from './generated/spoton/v1/TaskEvent.js';
import type { TaskServiceClient } from './generated/spoton/v1/TaskService.js';

/** Frames are large: the limits the Python client and the server use (32 MiB). */
export const MAX_MESSAGE_BYTES = 32 * 1024 * 1024;

/** The name each spoton.v1 service has on a connection; a test checks that it covers proto/. */
export const SERVICES = {
  analytics: 'AnalyticsService',
  auth: 'AuthService',
  cameras: 'CameraRegistryService',
  catalog: 'CatalogService',
  inference: 'InferenceService',
  jobs: 'JobService',
  sinks: 'SinkService',
  system: 'SystemService',
  tasks: 'TaskService',
} as const;

/** The generated (callback-style) grpc-js client of each service. */
export interface RawClients {
  analytics: AnalyticsServiceClient;
  auth: AuthServiceClient;
  cameras: CameraRegistryServiceClient;
  catalog: CatalogServiceClient;
  inference: InferenceServiceClient;
  jobs: JobServiceClient;
  sinks: SinkServiceClient;
  system: SystemServiceClient;
  tasks: TaskServiceClient;
}

type ServiceKey = keyof typeof SERVICES;

export interface TlsOptions {
  /** PEM root certificates; default: Node's trusted roots. */
  rootCerts?: Buffer;
  /** PEM client key and certificate, for mutual TLS. */
  privateKey?: Buffer;
  certChain?: Buffer;
}

export interface ConnectOptions extends Credentials {
  /** `host:port` of SpotOn's gRPC API, e.g. `127.0.0.1:50051`. */
  target: string;
  /** TLS: `true` with the system's roots, or explicit certificates; default plaintext. */
  tls?: boolean | TlsOptions;
  /** The deadline of unary calls that set none (default 30 s). */
  defaultDeadlineMs?: number;
  /** Where `spoton/v1/*.proto` are; default: inside the package, else the repository's proto/. */
  protoDir?: string;
  /** Extra grpc-js channel options. */
  channelOptions?: grpc.ChannelOptions;
}

export interface WatchTaskOptions extends ResumeOptions {
  /** Deliver events with a sequence number greater than this; 0 (the default) from the start. */
  afterSequence?: number;
}

export interface WatchJobOptions extends ResumeOptions {
  /** Send the job only once its revision is greater than this; 0 (the default) from the start. */
  afterRevision?: number;
}

/** A connection: each service in promise form, the raw clients, and resuming watches. */
export type SpotOn = { [K in ServiceKey]: PromiseClient<RawClients[K]> } & {
  /** The generated grpc-js clients (callbacks and streams), on the same channel and interceptors. */
  readonly raw: RawClients;
  /** The task's events in order until it ends, resumed by sequence number after a dropped stream. */
  watchTask(taskId: string, options?: WatchTaskOptions): AsyncGenerator<TaskEvent__Output, void, undefined>;
  /** The job at each change until its final state, resumed by revision after a dropped stream. */
  watchJob(jobId: string, options?: WatchJobOptions): AsyncGenerator<Job__Output, void, undefined>;
  /** Closes the channel; calls still open end with CANCELLED or UNAVAILABLE. */
  close(): void;
};

function channelCredentials(tls: ConnectOptions['tls']): grpc.ChannelCredentials {
  if (!tls) return grpc.credentials.createInsecure();
  const { rootCerts, privateKey, certChain } = tls === true ? {} : tls;
  return grpc.credentials.createSsl(rootCerts ?? null, privateKey ?? null, certChain ?? null);
}

/**
 * Connects to SpotOn at `options.target`. The credential is `bearerToken`, else `apiKey`,
 * else `$SPOTON_API_KEY`; without any, calls go out without one (and only the open RPCs,
 * such as `AuthService/Login`, succeed). The channel connects lazily, on the first call.
 */
export function connect(options: ConnectOptions): SpotOn {
  const namespace = loadSpotOnPackage(findProtoDir(options.protoDir));
  const credentials = channelCredentials(options.tls);
  const channel = new grpc.Channel(options.target, credentials, {
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
    ...options.channelOptions,
  });
  const authorization = authorizationValue(options);
  const interceptors = [
    ...(authorization ? [authInterceptor(authorization)] : []),
    defaultDeadlineInterceptor(options.defaultDeadlineMs ?? DEFAULT_DEADLINE_MS),
  ];
  const raw = {} as Record<ServiceKey, grpc.Client>;
  const promised = {} as Record<ServiceKey, unknown>;
  for (const [key, service] of Object.entries(SERVICES) as [ServiceKey, string][]) {
    const Client = namespace[service] as grpc.ServiceClientConstructor | undefined;
    if (!Client) throw new Error(`spoton.v1.${service} is not in the .proto files`);
    raw[key] = new Client(options.target, credentials, { channelOverride: channel, interceptors });
    promised[key] = promiseClient(raw[key]);
  }
  const clients = raw as unknown as RawClients;
  return {
    ...(promised as { [K in ServiceKey]: PromiseClient<RawClients[K]> }),
    raw: clients,
    watchTask: (taskId, { afterSequence = 0, ...resume } = {}) =>
      resumed(
        (after) => clients.tasks.watchTask({ taskId, afterSequence: after }),
        (event) => event.sequence,
        afterSequence,
        resume,
      ),
    watchJob: (jobId, { afterRevision = 0, ...resume } = {}) =>
      resumed(
        (after) => clients.jobs.watchJob({ jobId, afterRevision: after }),
        (job) => job.revision,
        afterRevision,
        resume,
      ),
    close: () => channel.close(),
  };
}
