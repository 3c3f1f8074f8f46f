import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { CYCLE_NOTICE_MS, transientNotice } from "../src/notice";

describe("the cycle notice", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  function setup() {
    const shown: (string | null)[] = [];
    return { shown, notice: transientNotice((m) => shown.push(m)) };
  }

  it("goes away by itself after a few seconds", () => {
    const { shown, notice } = setup();
    notice.show("cycle a → b → a");
    vi.advanceTimersByTime(CYCLE_NOTICE_MS - 1);
    expect(shown).toEqual(["cycle a → b → a"]);
    vi.advanceTimersByTime(1);
    expect(shown).toEqual(["cycle a → b → a", null]);
    expect(CYCLE_NOTICE_MS).toBeLessThanOrEqual(10_000);
  });

  it("goes away as soon as the graph changes", () => {
    const { shown, notice } = setup();
    notice.show("cycle");
    notice.graphChanged();
    expect(shown).toEqual(["cycle", null]);
    vi.advanceTimersByTime(CYCLE_NOTICE_MS);
    expect(shown).toEqual(["cycle", null]);
  });

  it("gives a new refusal its own full time", () => {
    const { shown, notice } = setup();
    notice.show("first");
    vi.advanceTimersByTime(CYCLE_NOTICE_MS - 100);
    notice.show("second");
    vi.advanceTimersByTime(CYCLE_NOTICE_MS - 100);
    expect(shown.at(-1)).toBe("second");
    vi.advanceTimersByTime(100);
    expect(shown.at(-1)).toBeNull();
  });

  it("does nothing when the graph changes with no notice shown", () => {
    const { shown, notice } = setup();
    notice.graphChanged();
    expect(shown).toEqual([]);
  });
});
