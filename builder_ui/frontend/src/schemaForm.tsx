// A form generated from an action's input JSON Schema.
//
// Every field keeps templates possible: number fields accept `{{ ... }}` as text, and string,
// "any" and JSON fields suggest expressions from the trigger, upstream tasks and the vault.

import { useEffect, useState } from "react";
import type { JsonSchema } from "./api";
import type { ConnectionOption } from "./connections";
import type { JsonObject } from "./definition";
import { TemplateInput } from "./components/TemplateInput";

export type FieldKind = "enum" | "string" | "text" | "number" | "integer" | "boolean" | "object" | "list" | "json" | "any";

const LONG_TEXT_NAMES = new Set(["body", "content", "command", "value", "text", "message", "script", "query"]);

function primaryType(schema: JsonSchema): string | undefined {
  if (typeof schema.type === "string") return schema.type;
  if (Array.isArray(schema.type)) {
    const types = schema.type.filter((t) => t !== "null");
    return types.length === 1 ? types[0] : undefined;
  }
  const variants = schema.anyOf ?? schema.oneOf;
  if (variants) {
    const types = variants.map(primaryType).filter((t) => t && t !== "null");
    return types.length === 1 ? types[0] : undefined;
  }
  return undefined;
}

export function fieldKind(name: string, schema: JsonSchema): FieldKind {
  if (Array.isArray(schema.enum) && schema.enum.length) return "enum";
  switch (primaryType(schema)) {
    case "string":
      return schema.format === "textarea" || schema.format === "multiline" || LONG_TEXT_NAMES.has(name)
        ? "text"
        : "string";
    case "number":
      return "number";
    case "integer":
      return "integer";
    case "boolean":
      return "boolean";
    case "object":
      return "object";
    case "array": {
      const item = schema.items ? primaryType(schema.items) : undefined;
      return item === "string" || item === "number" || item === "integer" ? "list" : "json";
    }
    default:
      return "any";
  }
}

/** Text typed in a number field: a number when it is one, otherwise kept (a template). */
export function parseNumberText(text: string, integer: boolean): unknown {
  const t = text.trim();
  if (t === "") return undefined;
  if (/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(t)) {
    const n = Number(t);
    return integer && Number.isInteger(n) ? n : integer ? text : n;
  }
  return text;
}

function asText(value: unknown): string {
  if (value === undefined || value === null) return "";
  return typeof value === "string" ? value : String(value);
}

function jsonText(value: unknown): string {
  if (value === undefined) return "";
  if (typeof value === "string") return value;
  return JSON.stringify(value, null, 2);
}

interface JsonFieldProps {
  value: unknown;
  onChange: (value: unknown) => void;
  testId: string;
  id: string;
  /** `any` fields keep plain text as a string; object/array fields require JSON. */
  lenient: boolean;
  placeholder?: string;
  /** Offer `{{ expressions }}` while typing (and the `{ }` button). */
  suggestions?: string[];
}

function JsonField({ value, onChange, testId, id, lenient, placeholder, suggestions }: JsonFieldProps) {
  const [text, setText] = useState(() => jsonText(value));
  const [error, setError] = useState<string | null>(null);

  // Follow outside changes (another node selected, undo) without clobbering what is being typed.
  useEffect(() => {
    setText((current) => {
      try {
        if (JSON.stringify(JSON.parse(current)) === JSON.stringify(value)) return current;
      } catch {
        if (current === value) return current;
      }
      return jsonText(value);
    });
  }, [value]);

  function edit(t: string) {
    setText(t);
    if (t.trim() === "") {
      setError(null);
      onChange(undefined);
      return;
    }
    const looksJson = /^\s*[[{"]/.test(t) || /^\s*(true|false|null|-?\d)/.test(t);
    if (lenient && (!looksJson || t.includes("{{"))) {
      setError(null);
      onChange(t);
      return;
    }
    try {
      onChange(JSON.parse(t));
      setError(null);
    } catch (err) {
      if (lenient) {
        setError(null);
        onChange(t);
      } else {
        setError(`Not valid JSON: ${(err as Error).message}`);
      }
    }
  }

  return (
    <>
      {suggestions ? (
        <TemplateInput
          id={id}
          testId={testId}
          value={text}
          onChange={edit}
          suggestions={suggestions}
          multiline
          rows={4}
          placeholder={placeholder}
          invalid={!!error}
        />
      ) : (
        <textarea
          id={id}
          className="ff-input ff-mono"
          rows={4}
          spellCheck={false}
          data-testid={testId}
          placeholder={placeholder}
          value={text}
          aria-invalid={!!error || undefined}
          onChange={(e) => edit(e.target.value)}
        />
      )}
      {error && <div className="ff-field-error">{error}</div>}
    </>
  );
}

interface FieldProps {
  name: string;
  schema: JsonSchema;
  required: boolean;
  value: unknown;
  onChange: (value: unknown) => void;
  suggestions: string[];
  errors?: string[];
  /** Accounts a `connection` input may name; null while unknown (then it is a text field). */
  connections?: ConnectionOption[] | null;
}

const OTHER = "\u0000other";

/** A picker of connected accounts, with a text field for anything else (a template, an account not listed). */
function ConnectionField(props: {
  id: string;
  testId: string;
  value: unknown;
  onChange: (value: unknown) => void;
  options: ConnectionOption[] | null;
  suggestions: string[];
  placeholder?: string;
  invalid: boolean;
}) {
  const { id, testId, value, onChange, options, suggestions, placeholder, invalid } = props;
  const current = asText(value);
  const listed = !!options?.some((o) => o.value === current);
  const [typing, setTyping] = useState(current !== "" && !listed);
  const textField = (fieldTestId: string, fieldId: string) => (
    <TemplateInput
      id={fieldId}
      testId={fieldTestId}
      value={current}
      onChange={(v) => onChange(v === "" ? undefined : v)}
      suggestions={suggestions}
      placeholder={placeholder ?? "provider:login"}
      invalid={invalid}
    />
  );
  if (!options) return textField(testId, id);
  if (!options.length) {
    return (
      <>
        {textField(testId, id)}
        <div className="ff-help" data-testid={`${testId}-none`}>
          No connected account to pick from: connect one on the <a href="/connections/">Connections page</a>.
        </div>
      </>
    );
  }
  const other = typing || (current !== "" && !listed);
  return (
    <>
      <select
        id={id}
        className="ff-input"
        data-testid={testId}
        value={other ? OTHER : current}
        aria-invalid={invalid || undefined}
        onChange={(e) => {
          const picked = e.target.value;
          setTyping(picked === OTHER);
          if (picked !== OTHER) onChange(picked === "" ? undefined : picked);
        }}
      >
        <option value="">{placeholder ?? "Default account"}</option>
        {options.map((o) => (
          <option key={o.value} value={o.value} data-testid={`${testId}-option`}>
            {o.label}
          </option>
        ))}
        <option value={OTHER}>Other (type it)…</option>
      </select>
      {other && textField(`${testId}-other`, `${id}-other`)}
    </>
  );
}

export function SchemaField({ name, schema, required, value, onChange, suggestions, errors, connections }: FieldProps) {
  const kind = name === "connection" && connections !== undefined ? "connection" : fieldKind(name, schema);
  const id = `ff-field-${name}`;
  const testId = `field-${name}`;
  const def = schema.default;
  const placeholder = def !== undefined ? `Default: ${typeof def === "string" ? def : JSON.stringify(def)}` : undefined;
  const isTemplate = typeof value === "string" && value.includes("{{");

  let control;
  switch (kind) {
    case "connection":
      control = (
        <ConnectionField
          id={id}
          testId={testId}
          value={value}
          onChange={onChange}
          options={connections ?? null}
          suggestions={suggestions}
          placeholder={placeholder}
          invalid={!!errors?.length}
        />
      );
      break;
    case "enum":
      control = isTemplate ? (
        <TemplateInput id={id} testId={testId} value={asText(value)} onChange={onChange} suggestions={suggestions} />
      ) : (
        <select
          id={id}
          className="ff-input"
          data-testid={testId}
          value={value === undefined ? "" : JSON.stringify(value)}
          onChange={(e) => onChange(e.target.value === "" ? undefined : JSON.parse(e.target.value))}
        >
          <option value="">{def !== undefined ? `Default (${String(def)})` : "—"}</option>
          {schema.enum!.map((option) => (
            <option key={JSON.stringify(option)} value={JSON.stringify(option)}>
              {String(option)}
            </option>
          ))}
        </select>
      );
      break;
    case "boolean":
      control = (
        <label className="ff-check">
          <input
            id={id}
            type="checkbox"
            data-testid={testId}
            checked={value === undefined ? def === true : value === true}
            onChange={(e) => onChange(e.target.checked === (def === true) ? undefined : e.target.checked)}
          />
          <span>{schema.title ?? name}</span>
        </label>
      );
      break;
    case "number":
    case "integer":
      control = (
        <input
          id={id}
          type="text"
          inputMode={kind === "integer" ? "numeric" : "decimal"}
          className="ff-input ff-mono"
          data-testid={testId}
          placeholder={placeholder}
          value={asText(value)}
          onChange={(e) => onChange(parseNumberText(e.target.value, kind === "integer"))}
        />
      );
      break;
    case "list":
      control = (
        <textarea
          id={id}
          className="ff-input ff-mono"
          rows={3}
          data-testid={testId}
          placeholder={placeholder ?? "One item per line"}
          value={Array.isArray(value) ? value.join("\n") : asText(value)}
          onChange={(e) => {
            const lines = e.target.value.split("\n");
            const numeric = schema.items && primaryType(schema.items) !== "string";
            const items = lines.map((l) => (numeric ? parseNumberText(l, false) : l));
            onChange(e.target.value === "" ? undefined : items);
          }}
          onBlur={() => {
            if (Array.isArray(value)) {
              const kept = value.filter((v) => v !== "" && v !== undefined);
              onChange(kept.length ? kept : undefined);
            }
          }}
        />
      );
      break;
    case "object":
    case "json":
    case "any":
      control = (
        <JsonField
          id={id}
          testId={testId}
          value={value}
          onChange={onChange}
          lenient={kind === "any"}
          placeholder={placeholder ?? (kind === "any" ? "Text, JSON or {{ expression }}" : "JSON")}
          suggestions={suggestions}
        />
      );
      break;
    default:
      control = (
        <TemplateInput
          id={id}
          testId={testId}
          value={asText(value)}
          onChange={(v) => onChange(v === "" ? undefined : v)}
          suggestions={suggestions}
          multiline={kind === "text"}
          placeholder={placeholder}
          invalid={!!errors?.length}
        />
      );
  }

  return (
    <div className={`ff-field${errors?.length ? " has-error" : ""}`}>
      {kind !== "boolean" && (
        <label htmlFor={id} className="ff-label">
          {schema.title ?? name}
          {required && (
            <span className="ff-required" title="Required">
              *
            </span>
          )}
          <span className="ff-type">{kind === "text" ? "string" : kind === "connection" ? "account" : kind}</span>
        </label>
      )}
      {control}
      {schema.description && <div className="ff-help">{schema.description}</div>}
      {errors?.map((message) => (
        <div key={message} className="ff-field-error">
          {message}
        </div>
      ))}
    </div>
  );
}

interface FormProps {
  schema: JsonSchema | undefined;
  values: JsonObject;
  onChange: (values: JsonObject) => void;
  suggestions: string[];
  fieldErrors: Record<string, string[]>;
  connections?: ConnectionOption[] | null;
}

/** All inputs of one action; inputs not described by the schema are edited as one JSON object. */
export function SchemaForm({ schema, values, onChange, suggestions, fieldErrors, connections }: FormProps) {
  const properties = schema?.properties ?? {};
  const required = new Set(schema?.required ?? []);
  const names = Object.keys(properties);
  const extraKeys = Object.keys(values).filter((k) => !(k in properties));
  const extra: JsonObject = {};
  for (const k of extraKeys) extra[k] = values[k];

  function set(name: string, value: unknown) {
    const next = { ...values };
    if (value === undefined) delete next[name];
    else next[name] = value;
    onChange(next);
  }

  return (
    <div className="ff-form">
      {names.length === 0 && !schema && (
        <div className="ff-help">This action's schema is not available; edit its inputs as JSON.</div>
      )}
      {names.map((name) => (
        <SchemaField
          key={name}
          name={name}
          schema={properties[name]}
          required={required.has(name)}
          value={values[name]}
          onChange={(v) => set(name, v)}
          suggestions={suggestions}
          errors={fieldErrors[name]}
          connections={connections}
        />
      ))}
      {(extraKeys.length > 0 || !schema) && (
        <div className="ff-field">
          <label className="ff-label" htmlFor="ff-field-extra-inputs">
            {schema ? "Other inputs" : "Inputs"}
            <span className="ff-type">json</span>
          </label>
          <JsonField
            id="ff-field-extra-inputs"
            testId="field-extra-inputs"
            value={extraKeys.length ? extra : undefined}
            lenient={false}
            placeholder='{"key": "value"}'
            suggestions={suggestions}
            onChange={(v) => {
              const next: JsonObject = {};
              for (const name of names) if (values[name] !== undefined) next[name] = values[name];
              if (v && typeof v === "object" && !Array.isArray(v)) Object.assign(next, v);
              onChange(next);
            }}
          />
          {extraKeys.flatMap((k) => fieldErrors[k] ?? []).map((m) => (
            <div key={m} className="ff-field-error">
              {m}
            </div>
          ))}
        </div>
      )}
    </div>
  );
}
