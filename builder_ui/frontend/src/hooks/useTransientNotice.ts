import { useEffect, useMemo, useState } from "react";
import { CYCLE_NOTICE_MS, transientNotice } from "../notice";

/** A notice that clears itself after `ms` and whenever `graphKey` (the serialised graph) changes. */
export function useTransientNotice(graphKey: string, ms: number = CYCLE_NOTICE_MS) {
  const [message, setMessage] = useState<string | null>(null);
  const notice = useMemo(() => transientNotice(setMessage, ms), [ms]);

  useEffect(() => notice.graphChanged(), [graphKey, notice]);
  useEffect(() => () => notice.dismiss(), [notice]);

  return { message, show: notice.show, dismiss: notice.dismiss };
}
