import { useLayoutEffect, useMemo, useReducer, useRef } from "preact/hooks";
import { Virtualizer, elementScroll, observeElementOffset, observeElementRect } from "@tanstack/virtual-core";

/** @tanstack/virtual-core bound to a Preact component: only the rows in view are rendered. */
export function useVirtual(count: number, rowHeight: number) {
  const scrollRef = useRef<HTMLDivElement>(null);
  const [, rerender] = useReducer((n: number) => n + 1, 0);
  const v = useMemo(
    () =>
      new Virtualizer<HTMLDivElement, Element>({
        count,
        getScrollElement: () => scrollRef.current,
        estimateSize: () => rowHeight,
        overscan: 10,
        observeElementRect,
        observeElementOffset,
        scrollToFn: elementScroll,
        onChange: () => rerender(0),
      }),
    [],
  );
  v.setOptions({ ...v.options, count, estimateSize: () => rowHeight });
  useLayoutEffect(() => v._didMount(), []);
  useLayoutEffect(() => {
    v._willUpdate();
  });
  return { scrollRef, items: v.getVirtualItems(), total: v.getTotalSize(), v };
}
