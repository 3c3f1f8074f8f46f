// Starting a run (saving first when needed) and polling it until it ends.

import { useCallback, useEffect, useRef, useState } from "react";
import { ApiError, FINAL_RUN_STATES, type ApiClient, type FieldError, type Run, type Workflow } from "../api";
import { errorText } from "../errors";

const POLL_MS = 500;

interface Options {
  api: ApiClient;
  workflow: Workflow | null;
  dirty: boolean;
  save: () => Promise<Workflow | null>;
  setErrors: (errors: FieldError[]) => void;
  /** Something to read is on the Run tab. */
  showRunTab: () => void;
}

export function useRunner({ api, workflow, dirty, save, setErrors, showRunTab }: Options) {
  const [payload, setPayloadText] = useState("");
  const [payloadError, setPayloadError] = useState<string | null>(null);
  const [run, setRun] = useState<Run | null>(null);
  const [runError, setRunError] = useState<string | null>(null);
  const [starting, setStarting] = useState(false);
  const pollToken = useRef(0);

  const poll = useCallback(
    async (runId: number) => {
      const token = ++pollToken.current;
      let failures = 0;
      while (token === pollToken.current) {
        try {
          const latest = await api.getRun(runId);
          if (token !== pollToken.current) return;
          failures = 0;
          setRun({ ...latest, tasks: latest.tasks ?? [] });
          if (FINAL_RUN_STATES.includes(latest.status)) return;
        } catch (err) {
          if (++failures >= 10) {
            setRunError(`Lost track of run ${runId}: ${errorText(err)}`);
            return;
          }
        }
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
    },
    [api],
  );

  useEffect(() => () => void pollToken.current++, []);

  const startRun = useCallback(async () => {
    let body: unknown = undefined;
    if (payload.trim()) {
      try {
        body = JSON.parse(payload);
      } catch (err) {
        setPayloadError(`The payload is not valid JSON: ${errorText(err)}`);
        showRunTab();
        return;
      }
    }
    setPayloadError(null);
    setStarting(true);
    try {
      let target = workflow;
      if (!target || dirty) {
        target = await save();
        if (!target) return;
      }
      setRunError(null);
      const { run_id } = await api.runWorkflow(target.id, body);
      pollToken.current++;
      setRun({ id: run_id, status: "queued", tasks: [] });
      void poll(run_id);
    } catch (err) {
      if (err instanceof ApiError && err.errors.length) setErrors(err.errors);
      setRunError(`Could not start the run: ${errorText(err)}`);
      showRunTab();
    } finally {
      setStarting(false);
    }
  }, [api, dirty, payload, poll, save, setErrors, showRunTab, workflow]);

  const setPayload = useCallback((text: string) => {
    setPayloadText(text);
    setPayloadError(null);
  }, []);

  return { payload, setPayload, payloadError, run, runError, starting, startRun };
}
