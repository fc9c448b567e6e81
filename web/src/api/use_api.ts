// Loading an API answer into a component: the data, the error (an ApiError), and a way to load it again.
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiError } from "./client";

export type Loaded<T> = {
  data: T | undefined;
  error: ApiError | undefined;
  loading: boolean;
  reload(): void;
};

export function useApi<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<ApiError>();
  const [loading, setLoading] = useState(true);
  const generation = useRef(0);
  const run = useCallback(() => {
    const mine = ++generation.current;
    setLoading(true);
    load()
      .then((d) => {
        if (mine !== generation.current) return;
        setData(d);
        setError(undefined);
      })
      .catch((e) => {
        if (mine !== generation.current) return;
        setError(e instanceof ApiError ? e : new ApiError(0, "client", String(e)));
      })
      .finally(() => mine === generation.current && setLoading(false));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);
  useEffect(run, [run]);
  return { data, error, loading, reload: run };
}
