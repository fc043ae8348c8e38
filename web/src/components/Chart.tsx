import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface Line {
  label: string;
  values: (number | null)[];
  color: string;
  dash?: number[];
  width?: number;
}

/**
 * A uPlot time series: `x` in epoch seconds, one line per series; `band`
 * fills between two series (a forecast's interval). Resizes with its box.
 */
export function Chart({
  x,
  lines,
  band,
  height = 260,
  label,
  yLabel,
}: {
  x: number[];
  lines: Line[];
  band?: [number, number];
  height?: number;
  label: string;
  yLabel?: string;
}) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const opts: uPlot.Options = {
      width: Math.max(280, el.clientWidth),
      height,
      series: [
        {},
        ...lines.map((l) => ({
          label: l.label,
          stroke: l.color,
          width: l.width ?? 1.5,
          dash: l.dash,
          spanGaps: false,
          points: { show: false },
        })),
      ],
      bands: band ? [{ series: band, fill: "rgba(37, 99, 235, 0.12)" }] : undefined,
      axes: [{}, { label: yLabel, size: 60 }],
      legend: { show: true },
      cursor: { drag: { x: true, y: false } },
    };
    const plot = new uPlot(opts, [x, ...lines.map((l) => l.values)] as uPlot.AlignedData, el);
    const ro = new ResizeObserver(() => plot.setSize({ width: Math.max(280, el.clientWidth), height }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.destroy();
    };
  }, [x, lines, band, height, yLabel]);
  return <figure class="chart" ref={box} role="img" aria-label={label} />;
}
