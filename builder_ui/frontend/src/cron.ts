// Client-side preview of a cron trigger: a readable description and the next fire times.

import { CronExpressionParser } from "cron-parser";
import cronstrue from "cronstrue";

export interface CronPreview {
  description: string | null;
  /** Next fire times as ISO strings (UTC). */
  next: string[];
  error: string | null;
}

export function isValidTimezone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

export function cronPreview(expression: string, timezone = "UTC", count = 5, from: Date = new Date()): CronPreview {
  const expr = expression.trim();
  if (!expr) return { description: null, next: [], error: "Enter a cron expression" };
  if (expr.split(/\s+/).length !== 5) {
    return { description: null, next: [], error: "Expected five fields: minute hour day-of-month month day-of-week" };
  }
  const tz = timezone.trim() || "UTC";
  if (!isValidTimezone(tz)) return { description: null, next: [], error: `Unknown timezone '${tz}'` };
  try {
    const interval = CronExpressionParser.parse(expr, { tz, currentDate: from, strict: false });
    const next = interval.take(count).map((d) => d.toDate().toISOString());
    let description: string | null = null;
    try {
      description = cronstrue.toString(expr, { use24HourTimeFormat: true, throwExceptionOnParseError: true });
    } catch {
      description = null;
    }
    return { description, next, error: null };
  } catch (err) {
    return { description: null, next: [], error: (err as Error).message || "Invalid cron expression" };
  }
}

/** "Mon 2025-01-06 09:00" in the trigger's own timezone. */
export function formatInTimezone(iso: string, timezone: string): string {
  const parts = new Intl.DateTimeFormat("en-GB", {
    timeZone: timezone || "UTC",
    weekday: "short",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  }).formatToParts(new Date(iso));
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? "";
  return `${get("weekday")} ${get("year")}-${get("month")}-${get("day")} ${get("hour")}:${get("minute")}`;
}
