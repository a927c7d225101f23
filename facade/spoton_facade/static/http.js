// The API's JSON, shared by the dashboard's modules (a module of its own: dashboard.js awaits
// /health at its top level, so importing from it would hold up every importer).

export const LOGIN_PAGE = "/login";

/** Go to the login page when ``response`` says the session is missing or expired (401). */
export function loginIfUnauthorized(response) {
  if (response.status === 401) location.assign(LOGIN_PAGE);
}

/** The response body as JSON ({} when it has none, as a 204); throws when the status is an error. */
export async function getJson(url, init) {
  const response = await fetch(url, init);
  loginIfUnauthorized(response);
  const body = await response.json().catch(() => ({}));
  // Errors are RFC 9457 problem+json: `detail` says what went wrong.
  if (!response.ok) throw new Error(body.detail || body.title || response.statusText);
  return body;
}
