// The login page: posts the form as JSON; the answer sets the HttpOnly session cookie, which
// every later request (fetch, <video>, the event stream) carries. Then back to the dashboard.

const form = document.getElementById("login-form");
const error = document.getElementById("error");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.hidden = true;
  const body = {
    username: document.getElementById("username").value,
    password: document.getElementById("password").value,
  };
  try {
    const response = await fetch("/api/v1/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    if (!response.ok) {
      const problem = await response.json().catch(() => ({}));
      throw new Error(problem.detail || problem.title || response.statusText);
    }
    location.assign("/");
  } catch (failure) {
    error.textContent = `Could not log in: ${failure.message}`;
    error.hidden = false;
  }
});
