/**
 * Credentials on every call: `authorization: Bearer <API key or access token>` metadata,
 * added by a client interceptor so that every call of every service carries it (SpotOn
 * answers UNAUTHENTICATED without one). A call that sets its own `authorization` or
 * `x-api-key` metadata keeps it.
 */
import * as grpc from '@grpc/grpc-js';

/** The environment variable an API key is taken from when `connect()` is given none. */
export const API_KEY_ENV = 'SPOTON_API_KEY';

const AUTHORIZATION = 'authorization';
const API_KEY_HEADER = 'x-api-key';

export interface Credentials {
  /** An API key (`spk_<id>_<secret>`), for machines. Default: `$SPOTON_API_KEY`; `''` for none. */
  apiKey?: string;
  /** An access token from `AuthService/Login` (or an OIDC issuer); wins over `apiKey`. */
  bearerToken?: string;
}

/** The `authorization` value for `credentials` (a token wins over a key); undefined without either. */
export function authorizationValue(credentials: Credentials): string | undefined {
  const credential = credentials.bearerToken || (credentials.apiKey ?? process.env[API_KEY_ENV]);
  return credential ? `Bearer ${credential}` : undefined;
}

/** An interceptor adding `authorization: <value>` to every call that carries no credential of its own. */
export function authInterceptor(value: string): grpc.Interceptor {
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        if (metadata.get(AUTHORIZATION).length === 0 && metadata.get(API_KEY_HEADER).length === 0) {
          metadata.set(AUTHORIZATION, value);
        }
        next(metadata, listener);
      },
    });
}
