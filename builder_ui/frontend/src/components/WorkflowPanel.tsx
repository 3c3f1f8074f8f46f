import { useMemo, useState } from "react";
import type { ActionInfo } from "../api";
import { cronPreview, formatInTimezone } from "../cron";
import type { JsonObject, Trigger, WorkflowMeta } from "../definition";

interface Props {
  meta: WorkflowMeta;
  onChange: (meta: WorkflowMeta) => void;
  webhookUrl: string | null | undefined;
  saved: boolean;
  actions: ActionInfo[];
  /** Errors whose path starts with `triggers.<index>`. */
  triggerErrors: Map<number, string[]>;
}

const NEW_TRIGGER: Record<string, Trigger> = {
  webhook: { type: "webhook" },
  cron: { type: "cron", cron: "0 9 * * 1-5", timezone: "UTC" },
  poll: { type: "poll", every: 300, action: "http.request", inputs: { url: "" }, items: "", key: "" },
};

function timezones(): string[] {
  try {
    return (Intl as unknown as { supportedValuesOf(k: string): string[] }).supportedValuesOf("timeZone");
  } catch {
    return ["UTC"];
  }
}

function CronEditor({ trigger, index, update }: { trigger: Trigger; index: number; update: (t: Trigger) => void }) {
  const cron = typeof trigger.cron === "string" ? trigger.cron : "";
  const tz = typeof trigger.timezone === "string" ? trigger.timezone : "";
  const preview = useMemo(() => cronPreview(cron, tz || "UTC"), [cron, tz]);
  const zones = useMemo(timezones, []);
  return (
    <>
      <div className="ff-row">
        <div className="ff-field ff-grow">
          <label className="ff-label" htmlFor={`ff-trigger-${index}-cron`}>
            Cron expression
          </label>
          <input
            id={`ff-trigger-${index}-cron`}
            className="ff-input ff-mono"
            data-testid={`trigger-${index}-cron`}
            value={cron}
            spellCheck={false}
            onChange={(e) => update({ ...trigger, cron: e.target.value })}
          />
        </div>
        <div className="ff-field ff-grow">
          <label className="ff-label" htmlFor={`ff-trigger-${index}-timezone`}>
            Timezone
          </label>
          <input
            id={`ff-trigger-${index}-timezone`}
            className="ff-input"
            list="ff-timezones"
            placeholder="UTC"
            data-testid={`trigger-${index}-timezone`}
            value={tz}
            onChange={(e) => update({ ...trigger, timezone: e.target.value || undefined } as Trigger)}
          />
          <datalist id="ff-timezones">
            {zones.map((z) => (
              <option key={z} value={z} />
            ))}
          </datalist>
        </div>
      </div>
      <div className="ff-cron-preview" data-testid={`cron-preview-${index}`}>
        {preview.error ? (
          <div className="ff-field-error" data-testid="cron-error">
            {preview.error}
          </div>
        ) : (
          <>
            <div className="ff-cron-desc" data-testid="cron-description">
              {preview.description}
              {tz && tz !== "UTC" ? ` (${tz})` : " (UTC)"}
            </div>
            <div className="ff-muted ff-small">Next runs</div>
            <ol className="ff-cron-next" data-testid="cron-next">
              {preview.next.map((iso) => (
                <li key={iso}>
                  <time dateTime={iso}>{formatInTimezone(iso, tz || "UTC")}</time>
                </li>
              ))}
            </ol>
          </>
        )}
      </div>
    </>
  );
}

function PollEditor(props: { trigger: Trigger; index: number; update: (t: Trigger) => void; actions: ActionInfo[] }) {
  const { trigger, index, update, actions } = props;
  const [inputsText, setInputsText] = useState(() => JSON.stringify(trigger.inputs ?? {}, null, 2));
  const [inputsError, setInputsError] = useState<string | null>(null);
  const text = (key: string) => (typeof trigger[key] === "string" ? (trigger[key] as string) : "");
  return (
    <>
      <div className="ff-row">
        <div className="ff-field ff-field-small">
          <label className="ff-label" htmlFor={`ff-trigger-${index}-every`}>
            Every<span className="ff-type">s</span>
          </label>
          <input
            id={`ff-trigger-${index}-every`}
            type="number"
            min={1}
            className="ff-input ff-mono"
            data-testid={`trigger-${index}-every`}
            value={trigger.every === undefined ? "" : String(trigger.every)}
            onChange={(e) => update({ ...trigger, every: e.target.value === "" ? undefined : Number(e.target.value) })}
          />
        </div>
        <div className="ff-field ff-grow">
          <label className="ff-label" htmlFor={`ff-trigger-${index}-action`}>
            Action
          </label>
          <select
            id={`ff-trigger-${index}-action`}
            className="ff-input"
            data-testid={`trigger-${index}-action`}
            value={text("action")}
            onChange={(e) => update({ ...trigger, action: e.target.value })}
          >
            {!actions.some((a) => a.name === trigger.action) && <option value={text("action")}>{text("action") || "—"}</option>}
            {actions.map((a) => (
              <option key={a.name} value={a.name}>
                {a.name}
              </option>
            ))}
          </select>
        </div>
      </div>
      <div className="ff-field">
        <label className="ff-label" htmlFor={`ff-trigger-${index}-inputs`}>
          Inputs<span className="ff-type">json</span>
        </label>
        <textarea
          id={`ff-trigger-${index}-inputs`}
          className="ff-input ff-mono"
          rows={3}
          data-testid={`trigger-${index}-inputs`}
          value={inputsText}
          onChange={(e) => {
            setInputsText(e.target.value);
            try {
              const parsed = e.target.value.trim() ? JSON.parse(e.target.value) : {};
              if (typeof parsed !== "object" || Array.isArray(parsed) || parsed === null) throw new Error("expected an object");
              setInputsError(null);
              update({ ...trigger, inputs: parsed as JsonObject });
            } catch (err) {
              setInputsError(`Not a JSON object: ${(err as Error).message}`);
            }
          }}
        />
        {inputsError && <div className="ff-field-error">{inputsError}</div>}
      </div>
      <div className="ff-field">
        <label className="ff-label" htmlFor={`ff-trigger-${index}-items`}>
          Items<span className="ff-type">template</span>
        </label>
        <input
          id={`ff-trigger-${index}-items`}
          className="ff-input ff-mono"
          placeholder="{{ output.json }}"
          data-testid={`trigger-${index}-items`}
          value={text("items")}
          onChange={(e) => update({ ...trigger, items: e.target.value })}
        />
        <div className="ff-help">The list in the action's output to split into one run per new item.</div>
      </div>
      <div className="ff-field">
        <label className="ff-label" htmlFor={`ff-trigger-${index}-key`}>
          Key<span className="ff-type">template</span>
        </label>
        <input
          id={`ff-trigger-${index}-key`}
          className="ff-input ff-mono"
          placeholder="{{ item.id }}"
          data-testid={`trigger-${index}-key`}
          value={text("key")}
          onChange={(e) => update({ ...trigger, key: e.target.value })}
        />
        <div className="ff-help">Identifies an item, so each one starts a run only once.</div>
      </div>
    </>
  );
}

export function WorkflowPanel({ meta, onChange, webhookUrl, saved, actions, triggerErrors }: Props) {
  const setTrigger = (index: number, trigger: Trigger) =>
    onChange({ ...meta, triggers: meta.triggers.map((t, i) => (i === index ? trigger : t)) });
  const concurrency = meta.extra.concurrency;

  return (
    <div className="ff-panel-body" data-testid="workflow-panel">
      <div className="ff-field ff-field-small">
        <label className="ff-label" htmlFor="ff-workflow-concurrency">
          Concurrency
        </label>
        <input
          id="ff-workflow-concurrency"
          type="number"
          min={1}
          className="ff-input ff-mono"
          placeholder="unlimited"
          data-testid="workflow-concurrency"
          value={typeof concurrency === "number" ? String(concurrency) : ""}
          onChange={(e) => {
            const extra = { ...meta.extra };
            if (e.target.value === "") delete extra.concurrency;
            else extra.concurrency = Number(e.target.value);
            onChange({ ...meta, extra });
          }}
        />
        <div className="ff-help">Most runs at once; extra runs wait in the queue.</div>
      </div>

      <div className="ff-section-title">Triggers</div>
      {meta.triggers.length === 0 && (
        <p className="ff-muted ff-small">No trigger: the workflow runs only when started by hand or through the API.</p>
      )}
      {meta.triggers.map((trigger, index) => (
        <div key={index} className="ff-trigger" data-testid={`trigger-${index}`} data-type={trigger.type}>
          <div className="ff-trigger-head">
            <span className="ff-badge">{trigger.type}</span>
            <button
              type="button"
              className="ff-icon-btn"
              aria-label={`Remove ${trigger.type} trigger`}
              data-testid={`remove-trigger-${index}`}
              onClick={() => onChange({ ...meta, triggers: meta.triggers.filter((_, i) => i !== index) })}
            >
              ×
            </button>
          </div>
          {trigger.type === "webhook" && (
            <>
              <div className="ff-field">
                <div className="ff-label">URL</div>
                {webhookUrl && saved ? (
                  <div className="ff-copy">
                    <code className="ff-mono" data-testid="webhook-url">
                      {webhookUrl}
                    </code>
                    <button
                      type="button"
                      className="ff-btn ff-btn-small"
                      onClick={() => navigator.clipboard?.writeText(new URL(webhookUrl, window.location.href).href)}
                    >
                      Copy
                    </button>
                  </div>
                ) : (
                  <div className="ff-muted ff-small" data-testid="webhook-url">
                    {webhookUrl ?? "Save the workflow to get its webhook URL."}
                  </div>
                )}
                <div className="ff-help">POST a JSON body to this URL; it becomes trigger.body.</div>
              </div>
              <div className="ff-field">
                <label className="ff-label" htmlFor={`ff-trigger-${index}-secret`}>
                  Secret<span className="ff-type">optional</span>
                </label>
                <input
                  id={`ff-trigger-${index}-secret`}
                  className="ff-input ff-mono"
                  autoComplete="off"
                  data-testid={`trigger-${index}-secret`}
                  value={typeof trigger.secret === "string" ? trigger.secret : ""}
                  onChange={(e) => setTrigger(index, { ...trigger, secret: e.target.value || undefined } as Trigger)}
                />
                <div className="ff-help">When set, requests must carry X-Signature-256: sha256=HMAC(body).</div>
              </div>
            </>
          )}
          {trigger.type === "cron" && <CronEditor trigger={trigger} index={index} update={(t) => setTrigger(index, t)} />}
          {trigger.type === "poll" && (
            <PollEditor trigger={trigger} index={index} update={(t) => setTrigger(index, t)} actions={actions} />
          )}
          {!["webhook", "cron", "poll"].includes(trigger.type) && (
            <pre className="ff-pre">{JSON.stringify(trigger, null, 2)}</pre>
          )}
          {(triggerErrors.get(index) ?? []).map((m) => (
            <div key={m} className="ff-field-error">
              {m}
            </div>
          ))}
        </div>
      ))}
      <div className="ff-add-trigger">
        {(["webhook", "cron", "poll"] as const).map((type) => (
          <button
            key={type}
            type="button"
            className="ff-btn ff-btn-small"
            data-testid={`add-trigger-${type}`}
            disabled={type === "webhook" && meta.triggers.some((t) => t.type === "webhook")}
            onClick={() => onChange({ ...meta, triggers: [...meta.triggers, { ...NEW_TRIGGER[type] }] })}
          >
            + {type}
          </button>
        ))}
      </div>
    </div>
  );
}
