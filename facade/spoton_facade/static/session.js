// Who is logged in, and the way out.
import { getJson } from "./http.js";

const whoami = document.getElementById("whoami");
document.getElementById("logout").addEventListener("click", async () => {
  await fetch("/api/v1/auth/logout", { method: "POST" }).catch(() => undefined);
  location.assign("/login");
});
try {
  const me = await getJson("/api/v1/auth/me");
  whoami.textContent = `${me.subject} (${me.role})`;
} catch {
  // getJson has already gone to the login page on 401; anything else shows elsewhere.
}
