// The API's JSON, shared by the dashboard's modules (a module of its own: dashboard.js awaits
// /health at its top level, so importing from it would hold up every importer).

export const LOGIN_PAGE = "/login";

/** An error answer: ``status`` and the RFC 9457 ``problem`` (its extension members too). */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

/** Go to the login page when ``response`` says the session is missing or expired (401). */
export function loginIfUnauthorized(response) {
  if (response.status === 401) location.assign(LOGIN_PAGE);
}

/** The response body as JSON ({} when it has none, as a 204); throws ApiError when the status is an error. */
export async function getJson(url, init) {
  const response = await fetch(url, init);
  loginIfUnauthorized(response);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

/** POST ``body`` as JSON; the answer as getJson gives it. */
export function postJson(url, body) {
  return getJson(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}
