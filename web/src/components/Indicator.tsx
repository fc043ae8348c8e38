import { liveState, reconnectNow, retryIn } from "../live";

/** Whether live updates are on; offers a retry while they are off. */
export function Indicator() {
  const s = liveState.value;
  const text =
    s === "live" ? "Live" : s === "connecting" ? "Connecting…" : s === "retrying" ? `Offline, retrying in ${retryIn.value} s` : s === "offline" ? "Offline (no network)" : "Offline";
  return (
    <span class={`live live-${s}`} role="status" aria-live="polite" data-testid="live">
      <span class="dot" aria-hidden="true" />
      {text}
      {(s === "retrying" || s === "offline") && (
        <button type="button" class="link" onClick={reconnectNow}>
          Retry now
        </button>
      )}
    </span>
  );
}
