import { useEffect, useState } from "preact/hooks";
import type { AppConfig } from "../config";
import { localUsers, signInCognito, signInLocal, type LocalUser } from "../auth";
import { errorText } from "../format";

const WHAT: Record<string, string> = {
  viewer: "reads everything",
  operator: "+ runs cycles",
  approver: "+ approves and rejects",
  admin: "+ thresholds and policies",
};

export function SignIn({ config }: { config: AppConfig }) {
  const [users, setUsers] = useState<LocalUser[] | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    if (config.auth === "local") localUsers().then(setUsers, (e) => setError(errorText(e)));
  }, [config.auth]);
  return (
    <main id="main" class="signin">
      <h1>finops-lambda</h1>
      {config.auth === "cognito" ? (
        <>
          <p>Sign in with your organisation's account.</p>
          <button type="button" class="primary" onClick={() => void signInCognito().catch((e) => setError(errorText(e)))}>
            Sign in
          </button>
        </>
      ) : (
        <>
          <p>Local stack: choose who you are. Each role is a token the local stack minted.</p>
          <ul class="roles">
            {(users ?? []).map((u) => (
              <li key={u.user}>
                <button type="button" onClick={() => signInLocal(u)} data-user={u.user}>
                  <strong>{u.user}</strong>
                  <span>
                    {u.role}: {WHAT[u.role]}
                  </span>
                </button>
              </li>
            ))}
          </ul>
          {users === null && !error && <p>Loading…</p>}
        </>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </main>
  );
}
