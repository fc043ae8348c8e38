import { useEffect } from "preact/hooks";
import { ErrorBoundary, LocationProvider, Route, Router, lazy, useLocation } from "preact-iso";
import type { AppConfig } from "./config";
import { can, role, session, signOut } from "./auth";
import { connectLive } from "./live";
import { Indicator } from "./components/Indicator";
import { SignIn } from "./views/SignIn";
import { Queue } from "./views/Queue";

// The queue is the first view and ships in the initial bundle; the others
// (and uPlot with them) load when opened.
const Request = lazy(() => import("./views/Request").then((m) => m.RequestView));
const Jobs = lazy(() => import("./views/Jobs").then((m) => m.Jobs));
const Costs = lazy(() => import("./views/Costs").then((m) => m.Costs));
const Savings = lazy(() => import("./views/Savings").then((m) => m.Savings));
const Audit = lazy(() => import("./views/Audit").then((m) => m.Audit));
const Thresholds = lazy(() => import("./views/Thresholds").then((m) => m.Thresholds));
const Policies = lazy(() => import("./views/Policies").then((m) => m.Policies));

function Nav() {
  const { path } = useLocation();
  const links: [string, string, boolean][] = [
    ["/", "Queue", true],
    ["/jobs", "Jobs", true],
    ["/costs", "Costs", true],
    ["/savings", "Savings", true],
    ["/audit", "Audit", true],
    ["/thresholds", "Thresholds", can("admin")],
    ["/policies", "Policies", can("admin")],
  ];
  return (
    <nav aria-label="Main">
      <ul>
        {links
          .filter(([, , show]) => show)
          .map(([href, label]) => {
            const current = href === "/" ? path === "/" || path.startsWith("/requests") : path.startsWith(href);
            return (
              <li key={href}>
                <a href={href} aria-current={current ? "page" : undefined}>
                  {label}
                </a>
              </li>
            );
          })}
      </ul>
    </nav>
  );
}

function NotFound() {
  return (
    <section>
      <h1>Not found</h1>
      <p>
        <a href="/">Back to the queue</a>
      </p>
    </section>
  );
}

export function App({ config }: { config: AppConfig }) {
  const s = session.value;
  useEffect(() => {
    connectLive(config.wsUrl, s?.token ?? "");
  }, [config.wsUrl, s?.token]);
  if (!s) return <SignIn config={config} />;
  return (
    <LocationProvider>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href="/">
          finops-lambda
        </a>
        <Nav />
        <div class="who">
          <Indicator />
          <span class="user" title={s.user}>
            {s.user} <span class="badge">{role.value ?? "no role"}</span>
          </span>
          <button type="button" class="link" onClick={() => void signOut()}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <ErrorBoundary>
          <Router>
            <Route path="/" component={Queue} />
            <Route path="/requests/:id" component={Request} />
            <Route path="/jobs" component={Jobs} />
            <Route path="/costs" component={Costs} />
            <Route path="/savings" component={Savings} />
            <Route path="/audit" component={Audit} />
            <Route path="/thresholds" component={Thresholds} />
            <Route path="/policies" component={Policies} />
            <Route default component={NotFound} />
          </Router>
        </ErrorBoundary>
      </main>
    </LocationProvider>
  );
}
