import { describe, expect, it } from "vitest";
import { filterSuggestions, insertExpression, openExpression, templateSuggestions } from "../src/completions";

describe("template completion", () => {
  const all = templateSuggestions([
    {
      id: "fetch_user",
      action: {
        name: "http.request",
        family: "http",
        output_schema: { type: "object", properties: { status: {}, json: {} } },
      },
    },
  ]);

  it("offers trigger data and upstream outputs", () => {
    expect(all).toContain("trigger.body");
    expect(all).toContain("steps.fetch_user.output");
    expect(all).toContain("steps.fetch_user.output.json");
  });

  it("detects an unclosed expression at the caret", () => {
    expect(openExpression("Hi {{ steps.fe", 14)).toEqual({ start: 3, query: "steps.fe" });
    expect(openExpression("Hi {{ x }} there", 16)).toBeNull();
  });

  it("filters by prefix first", () => {
    expect(filterSuggestions(all, "steps.fetch_user.output.j")).toEqual(["steps.fetch_user.output.json"]);
  });

  it("inserts a closed expression, swallowing an existing closing brace", () => {
    expect(insertExpression("a {{ tri }} b", 8, 2, "trigger.body")).toEqual({
      text: "a {{ trigger.body }} b",
      caret: 20,
    });
  });
});
