import { useEffect, useRef, useState } from "react";

/**
 * A list fetched the first time `wanted` is true (not on page load, which stays two API reads),
 * then kept. Null until it answers; a failure reads as an empty list, the fields fall back to text.
 */
export function useOnDemand<T>(load: () => Promise<T[]>, wanted: boolean): T[] | null {
  const [value, setValue] = useState<T[] | null>(null);
  const requested = useRef(false);

  useEffect(() => {
    if (!wanted || requested.current) return;
    requested.current = true;
    load()
      .then(setValue)
      .catch(() => setValue([]));
  }, [wanted, load]);

  return value;
}
