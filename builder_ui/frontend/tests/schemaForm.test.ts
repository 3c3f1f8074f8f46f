import { describe, expect, it } from "vitest";
import { fieldKind, parseNumberText } from "../src/schemaForm";

describe("fieldKind", () => {
  it("maps JSON Schema types to form controls", () => {
    expect(fieldKind("method", { type: "string", enum: ["GET", "POST"] })).toBe("enum");
    expect(fieldKind("url", { type: "string" })).toBe("string");
    expect(fieldKind("body", { type: "string" })).toBe("text");
    expect(fieldKind("timeout", { type: "number" })).toBe("number");
    expect(fieldKind("issue_number", { type: "integer" })).toBe("integer");
    expect(fieldKind("draft", { type: "boolean" })).toBe("boolean");
    expect(fieldKind("headers", { type: "object" })).toBe("object");
    expect(fieldKind("labels", { type: "array", items: { type: "string" } })).toBe("list");
    expect(fieldKind("rows", { type: "array", items: { type: "object" } })).toBe("json");
    expect(fieldKind("json", { description: "anything" })).toBe("any");
    expect(fieldKind("cwd", { type: ["string", "null"] })).toBe("string");
  });
});

describe("parseNumberText", () => {
  it("keeps templates as text and numbers as numbers", () => {
    expect(parseNumberText("30", false)).toBe(30);
    expect(parseNumberText("2.5", false)).toBe(2.5);
    expect(parseNumberText("2.5", true)).toBe("2.5");
    expect(parseNumberText("{{ trigger.body.n }}", true)).toBe("{{ trigger.body.n }}");
    expect(parseNumberText("  ", true)).toBeUndefined();
  });
});
