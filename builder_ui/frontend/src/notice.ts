// A message that goes away by itself: after `ms`, or as soon as the graph it talks about changes.

export interface Timers {
  setTimeout: (callback: () => void, ms: number) => unknown;
  clearTimeout: (handle: unknown) => void;
}

export const CYCLE_NOTICE_MS = 6000;

export interface TransientNotice {
  show(message: string): void;
  /** The graph changed: a notice about the old graph is stale. */
  graphChanged(): void;
  dismiss(): void;
}

const realTimers: Timers = {
  setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export function transientNotice(
  onChange: (message: string | null) => void,
  ms: number = CYCLE_NOTICE_MS,
  timers: Timers = realTimers,
): TransientNotice {
  let timer: unknown = null;
  let shown = false;
  const stop = () => {
    if (timer !== null) timers.clearTimeout(timer);
    timer = null;
  };
  const dismiss = () => {
    stop();
    if (shown) onChange(null);
    shown = false;
  };
  return {
    show(message) {
      stop();
      shown = true;
      onChange(message);
      timer = timers.setTimeout(dismiss, ms);
    },
    graphChanged: dismiss,
    dismiss,
  };
}
