// The environments the picker offers: sites only. A job makes an environment of its own for its
// upload (origin "job"); those belong to their job and show in the Jobs panel, not here.

import { getJson } from "./http.js";

/** The site environments, sites first by name; a server without origins lists them all. */
export async function loadSites() {
  const { environments } = await getJson("/api/v1/environments?origin=site");
  // A server that ignores the filter still says each environment's origin.
  return environments.filter((env) => env.origin !== "job");
}

/** One environment (a job's one included), for following a task on it. */
export function loadEnvironment(environmentId) {
  return getJson(`/api/v1/environments/${encodeURIComponent(environmentId)}`);
}
