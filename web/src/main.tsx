import { render } from "preact";
import { App } from "./App";
import { loadConfig } from "./config";
import { initAuth } from "./auth";
import "./styles.css";

async function start() {
  const root = document.getElementById("app")!;
  try {
    const config = await loadConfig();
    await initAuth(config);
    render(<App config={config} />, root);
  } catch (e) {
    render(
      <main class="boot-error">
        <h1>The dashboard could not start</h1>
        <p>{e instanceof Error ? e.message : String(e)}</p>
      </main>,
      root,
    );
  }
}

void start();
