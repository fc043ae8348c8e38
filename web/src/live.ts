import { signal } from "@preact/signals";
import { useEffect, useRef } from "preact/hooks";

/** One WebSocket per tab (SPEC 4), subscribed to the topics the views on screen ask for. */
export type LiveState = "off" | "connecting" | "live" | "retrying" | "offline";
export const liveState = signal<LiveState>("off");
/** Seconds until the next attempt while retrying. */
export const retryIn = signal(0);

export interface LiveEvent {
  type: string;
  [k: string]: unknown;
}
type Handler = (e: LiveEvent) => void;

let ws: WebSocket | null = null;
let url = "";
let token = "";
let attempt = 0;
let timer: number | undefined;
let ping: number | undefined;
let everConnected = false;
const topics = new Map<string, number>();
const handlers = new Set<Handler>();
const reconnectHandlers = new Set<() => void>();

function send(msg: unknown) {
  if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
}

function open() {
  window.clearTimeout(timer);
  if (!url || !token) return;
  if (!navigator.onLine) {
    // The browser knows there is no network: wait for its "online" event.
    liveState.value = "offline";
    return;
  }
  liveState.value = "connecting";
  const socket = new WebSocket(`${url}${url.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}`);
  ws = socket;
  socket.onopen = () => {
    attempt = 0;
    liveState.value = "live";
    if (topics.size) send({ action: "subscribe", topics: [...topics.keys()] });
    // API Gateway closes a connection idle for 10 minutes.
    window.clearInterval(ping);
    ping = window.setInterval(() => send({ action: "ping" }), 5 * 60_000);
    if (everConnected) reconnectHandlers.forEach((h) => h());
    everConnected = true;
  };
  socket.onmessage = (m) => {
    let e: LiveEvent;
    try {
      e = JSON.parse(String(m.data)) as LiveEvent;
    } catch {
      return;
    }
    handlers.forEach((h) => h(e));
  };
  socket.onclose = () => {
    if (ws !== socket) return;
    ws = null;
    window.clearInterval(ping);
    if (!token) {
      liveState.value = "off";
      return;
    }
    // Exponential backoff with jitter: 1 s, 2 s, 4 s ... 30 s.
    const delay = Math.min(30_000, 1000 * 2 ** attempt) * (0.75 + Math.random() * 0.5);
    attempt += 1;
    liveState.value = "retrying";
    retryIn.value = Math.round(delay / 1000);
    timer = window.setTimeout(open, delay);
  };
}

/** (Re)connects with `wsUrl` and `jwt`; an empty token closes the connection. */
export function connectLive(wsUrl: string, jwt: string) {
  if (wsUrl === url && jwt === token && ws) return;
  const first = !token;
  url = wsUrl;
  token = jwt;
  const old = ws;
  ws = null;
  old?.close();
  if (!jwt) {
    window.clearTimeout(timer);
    liveState.value = "off";
    everConnected = false;
    return;
  }
  if (first) everConnected = false;
  open();
}

// A dropped network is noticed at once rather than at the next failed
// ping; when it is back, reconnect (and refetch) without waiting out the backoff.
window.addEventListener("offline", () => {
  const old = ws;
  ws = null;
  window.clearInterval(ping);
  old?.close();
  if (token) liveState.value = "offline";
});
window.addEventListener("online", () => {
  attempt = 0;
  if (token && !ws) open();
});

/** Retry now (the indicator's button). */
export function reconnectNow() {
  attempt = 0;
  if (!ws) open();
}

function addTopics(ts: string[]) {
  const fresh = ts.filter((t) => {
    const n = topics.get(t) ?? 0;
    topics.set(t, n + 1);
    return n === 0;
  });
  if (fresh.length) send({ action: "subscribe", topics: fresh });
}

function dropTopics(ts: string[]) {
  const gone = ts.filter((t) => {
    const n = (topics.get(t) ?? 1) - 1;
    if (n <= 0) topics.delete(t);
    else topics.set(t, n);
    return n <= 0;
  });
  if (gone.length) send({ action: "unsubscribe", topics: gone });
}

/**
 * Subscribes to `ts` while the component is mounted and calls `onEvent` for
 * every frame; `onReconnect` runs after a reconnect, to refetch what the
 * view may have missed.
 */
export function useLive(ts: string[], onEvent: Handler, onReconnect?: () => void) {
  const ev = useRef(onEvent);
  ev.current = onEvent;
  const rc = useRef(onReconnect);
  rc.current = onReconnect;
  const key = ts.join(",");
  useEffect(() => {
    const list = key ? key.split(",") : [];
    addTopics(list);
    const h: Handler = (e) => ev.current(e);
    const r = () => rc.current?.();
    handlers.add(h);
    reconnectHandlers.add(r);
    return () => {
      dropTopics(list);
      handlers.delete(h);
      reconnectHandlers.delete(r);
    };
  }, [key]);
}
