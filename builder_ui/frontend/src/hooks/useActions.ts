import { useEffect, useMemo, useState } from "react";
import type { ActionInfo, ApiClient } from "../api";
import { errorText } from "../errors";

/** The action library (GET /api/actions/), loaded once. */
export function useActions(api: ApiClient) {
  const [actions, setActions] = useState<ActionInfo[]>([]);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    api
      .listActions()
      .then(setActions)
      .catch((err) => setError(`Could not load the action library: ${errorText(err)}`))
      .finally(() => setLoading(false));
  }, [api]);

  const byName = useMemo(() => new Map(actions.map((a) => [a.name, a])), [actions]);
  return { actions, loading, error, byName };
}
