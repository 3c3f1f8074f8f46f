import { describe, expect, it } from "vitest";
import { cronPreview, formatInTimezone } from "../src/cron";

describe("cronPreview", () => {
  const from = new Date("2025-01-03T12:00:00Z"); // a Friday

  it("lists the next five weekday mornings in the trigger's timezone", () => {
    const p = cronPreview("0 9 * * 1-5", "Europe/Berlin", 5, from);
    expect(p.error).toBeNull();
    expect(p.next).toEqual([
      "2025-01-06T08:00:00.000Z",
      "2025-01-07T08:00:00.000Z",
      "2025-01-08T08:00:00.000Z",
      "2025-01-09T08:00:00.000Z",
      "2025-01-10T08:00:00.000Z",
    ]);
    expect(p.description).toMatch(/09:00/);
    expect(formatInTimezone(p.next[0], "Europe/Berlin")).toBe("Mon 2025-01-06 09:00");
  });

  it("reports malformed expressions and timezones", () => {
    expect(cronPreview("61 * * * *").error).toBeTruthy();
    expect(cronPreview("* * *").error).toMatch(/five fields/);
    expect(cronPreview("* * * * *", "Mars/Base").error).toMatch(/timezone/);
  });
});
