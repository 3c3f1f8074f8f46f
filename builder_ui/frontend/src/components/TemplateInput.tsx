// A text input (or textarea) that suggests `{{ expressions }}` after the user types `{{`.

import { useLayoutEffect, useRef, useState, type KeyboardEvent } from "react";
import { filterSuggestions, insertExpression, openExpression } from "../completions";

interface Props {
  id?: string;
  value: string;
  onChange: (value: string) => void;
  suggestions: string[];
  multiline?: boolean;
  rows?: number;
  placeholder?: string;
  testId?: string;
  invalid?: boolean;
}

export function TemplateInput({ id, value, onChange, suggestions, multiline, rows = 3, placeholder, testId, invalid }: Props) {
  const ref = useRef<HTMLInputElement & HTMLTextAreaElement>(null);
  const [open, setOpen] = useState<{ start: number; items: string[] } | null>(null);
  const [active, setActive] = useState(0);
  // Leaving the field closes its list a moment later (so a click on an item still lands); coming back before then
  // must cancel that close, or it shuts the list the user just reopened.
  const closeTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  // Where the caret goes once an inserted expression is on screen. Placed in the same commit as the new value
  // (not a frame later), so a key typed right after the insertion lands after it, not in the middle.
  const pendingCaret = useRef<number | null>(null);

  useLayoutEffect(() => {
    const el = ref.current;
    const caret = pendingCaret.current;
    if (!el || caret === null) return;
    pendingCaret.current = null;
    el.focus();
    el.setSelectionRange(caret, caret);
  });

  function cancelClose() {
    if (closeTimer.current !== null) clearTimeout(closeTimer.current);
    closeTimer.current = null;
  }

  function refresh(text: string, caret: number | null) {
    cancelClose();
    const expr = caret === null ? null : openExpression(text, caret);
    if (!expr) {
      setOpen(null);
      return;
    }
    const items = filterSuggestions(suggestions, expr.query);
    setOpen(items.length ? { start: expr.start, items } : null);
    setActive(0);
  }

  function choose(expr: string) {
    const el = ref.current;
    if (!el || !open) return;
    const result = insertExpression(value, el.selectionStart ?? value.length, open.start, expr);
    pendingCaret.current = result.caret;
    onChange(result.text);
    setOpen(null);
  }

  function onKeyDown(event: KeyboardEvent) {
    if (!open) return;
    if (event.key === "ArrowDown") setActive((a) => Math.min(a + 1, open.items.length - 1));
    else if (event.key === "ArrowUp") setActive((a) => Math.max(a - 1, 0));
    else if (event.key === "Enter" || event.key === "Tab") choose(open.items[active]);
    else if (event.key === "Escape") setOpen(null);
    else return;
    event.preventDefault();
    event.stopPropagation();
  }

  const common = {
    id,
    ref,
    value,
    placeholder,
    "data-testid": testId,
    "aria-invalid": invalid || undefined,
    "aria-autocomplete": "list" as const,
    className: "ff-input ff-mono",
    spellCheck: false,
    onChange: (e: { target: HTMLInputElement | HTMLTextAreaElement }) => {
      onChange(e.target.value);
      refresh(e.target.value, e.target.selectionStart);
    },
    onKeyDown,
    onFocus: cancelClose,
    onBlur: () => {
      cancelClose();
      closeTimer.current = setTimeout(() => {
        closeTimer.current = null;
        setOpen(null);
      }, 150);
    },
    onClick: (e: { currentTarget: HTMLInputElement | HTMLTextAreaElement }) =>
      refresh(e.currentTarget.value, e.currentTarget.selectionStart),
  };

  return (
    <div className="ff-template">
      {multiline ? <textarea rows={rows} {...common} /> : <input type="text" {...common} />}
      <button
        type="button"
        className="ff-template-insert"
        title="Insert an expression"
        tabIndex={-1}
        onMouseDown={(e) => {
          e.preventDefault();
          const el = ref.current;
          if (!el) return;
          const caret = el.selectionStart ?? value.length;
          const text = `${value.slice(0, caret)}{{ ${value.slice(caret)}`;
          pendingCaret.current = caret + 3;
          onChange(text);
          setOpen({ start: caret, items: filterSuggestions(suggestions, "") });
          setActive(0);
        }}
      >
        {"{ }"}
      </button>
      {open && (
        <ul className="ff-suggestions" role="listbox" data-testid="suggestions">
          {open.items.map((item, i) => (
            <li
              key={item}
              role="option"
              aria-selected={i === active}
              data-testid={`suggestion-${item}`}
              className={i === active ? "active" : undefined}
              onMouseDown={(e) => {
                e.preventDefault();
                choose(item);
              }}
            >
              {item}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
