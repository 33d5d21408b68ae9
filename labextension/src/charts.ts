/**
 * Charts of runs: overlaid metric curves (uPlot: thousands of points per run cost a few
 * milliseconds), a parameter-vs-metric scatter (uPlot, points only) and parallel coordinates
 * (a canvas: one polyline per run). Colours and fonts come from JupyterLab's CSS variables,
 * read when a chart is drawn, so the light and dark themes both read well.
 *
 * Each chart keeps what it plotted on its element (`mjChart`), so a test or a curious user
 * can read back the exact numbers drawn.
 */
import uPlot from 'uplot';

import { el, readable } from './api';

/** Ten distinct hues legible on light and dark backgrounds (Tableau 10). */
export const PALETTE = [
  '#4e79a7',
  '#f28e2b',
  '#e15759',
  '#76b7b2',
  '#59a14f',
  '#edc948',
  '#b07aa1',
  '#ff9da7',
  '#9c755f',
  '#bab0ac'
];

/** One run's curve of one metric. */
export interface ICurve {
  run_id: string;
  name: string | null;
  steps: number[];
  values: (number | string)[];
  total: number;
}

/** A CSS variable of the current theme, with a fallback. */
export function themeColour(name: string, fallback: string): string {
  const value = getComputedStyle(document.body).getPropertyValue(name).trim();
  return value || fallback;
}

/** JSON numbers with `"NaN"`/`"Infinity"` strings as numbers (null when not finite). */
export function finite(value: number | string | null | undefined): number | null {
  const n = typeof value === 'number' ? value : Number.NaN;
  return Number.isFinite(n) ? n : null;
}

/**
 * TensorBoard's smoothing: an exponential moving average, debiased so the first points are
 * not pulled to zero. ``weight`` 0 leaves the curve as it is; non-finite points are kept
 * as gaps and do not enter the average.
 */
export function smooth(values: (number | null)[], weight: number): (number | null)[] {
  if (weight <= 0) {
    return values;
  }
  let last = 0;
  let seen = 0;
  return values.map(v => {
    if (v === null) {
      return null;
    }
    last = last * weight + (1 - weight) * v;
    seen += 1;
    return last / (1 - Math.pow(weight, seen));
  });
}

function axes(): uPlot.Axis[] {
  const stroke = themeColour('--jp-ui-font-color1', '#333');
  const grid = { stroke: themeColour('--jp-border-color2', '#e0e0e0'), width: 1 };
  const font = `11px ${themeColour('--jp-ui-font-family', 'sans-serif')}`;
  return [
    { stroke, grid, ticks: grid, font },
    {
      stroke,
      grid,
      ticks: grid,
      font,
      size: 56,
      values: (_, ticks) => ticks.map(t => (t === null || t === undefined ? '' : readable(t)))
    }
  ];
}

/** Something drawn that can be resized and must be destroyed. */
export interface IChart {
  readonly node: HTMLElement;
  resize(width: number): void;
  destroy(): void;
}

/** Options of a curves chart. */
export interface ICurveOptions {
  /** 0 (none) to 0.99 (heavy). */
  smoothing: number;
  /** A logarithmic y axis (non-positive values are left out). */
  log: boolean;
  width: number;
  height: number;
}

/**
 * Overlaid curves of one metric over steps, one series per run (runs with different steps
 * are aligned on the union of their steps; gaps are spanned).
 */
export class CurvesChart implements IChart {
  constructor(key: string, curves: ICurve[], options: ICurveOptions) {
    this.node = el('div', 'mj-chart mj-curves');
    this.node.dataset.metric = key;
    const drawn = curves.filter(c => c.steps.length > 0);
    const tables: uPlot.AlignedData[] = drawn.map(c => {
      let ys = smooth(c.values.map(finite), options.smoothing);
      if (options.log) {
        ys = ys.map(v => (v !== null && v > 0 ? v : null));
      }
      return [c.steps, ys] as uPlot.AlignedData;
    });
    const data: uPlot.AlignedData = tables.length ? uPlot.join(tables) : [[]];
    const series: uPlot.Series[] = [
      { label: 'step' },
      ...drawn.map((c, i) => ({
        label: c.name ?? c.run_id.slice(0, 8),
        stroke: PALETTE[i % PALETTE.length],
        width: 1.5,
        spanGaps: true,
        points: { show: false },
        value: (_: uPlot, v: number | null) => (v === null ? '—' : readable(v))
      }))
    ];
    const started = performance.now();
    this.plot = new uPlot(
      {
        width: options.width,
        height: options.height,
        series,
        scales: { x: { time: false }, y: options.log ? { distr: 3 } : {} },
        axes: axes(),
        legend: { live: true },
        hooks: {
          draw: [
            () => {
              this.node.dataset.drawMs = (performance.now() - started).toFixed(1);
              performance.mark('mj-curves-drawn');
            }
          ]
        }
      },
      data,
      this.node
    );
    (this.node as unknown as { mjChart: unknown }).mjChart = {
      key,
      runs: drawn.map(c => c.run_id),
      data: this.plot.data,
      smoothing: options.smoothing,
      distr: this.plot.scales.y.distr // 3: logarithmic
    };
  }

  resize(width: number): void {
    this.plot.setSize({ width, height: this.plot.height });
  }

  destroy(): void {
    this.plot.destroy();
  }

  readonly node: HTMLElement;
  private plot: uPlot;
}

/** A run as the scatter and parallel coordinates see it: its values by column. */
export interface IRunPoint {
  run_id: string;
  name: string | null;
  values: Record<string, unknown>;
}

/** Numbers on a numeric axis, or the categories of a text one (in first-seen order). */
export interface IAxis {
  column: string;
  kind: 'number' | 'category';
  min: number;
  max: number;
  categories: string[];
}

/** The axis of ``column`` over ``runs``: numeric when every present value is a number. */
export function axisOf(column: string, runs: IRunPoint[]): IAxis {
  const present = runs.map(r => r.values[column]).filter(v => v !== undefined && v !== null);
  const numbers = present.map(v => finite(v as number | string));
  if (present.length && numbers.every(n => n !== null)) {
    const ns = numbers as number[];
    return {
      column,
      kind: 'number',
      min: Math.min(...ns),
      max: Math.max(...ns),
      categories: []
    };
  }
  const categories = [...new Set(present.map(v => (typeof v === 'string' ? v : JSON.stringify(v))))];
  return { column, kind: 'category', min: 0, max: Math.max(categories.length - 1, 0), categories };
}

/** Where ``value`` sits on ``axis``: 0 (bottom) to 1 (top), null when missing. */
export function position(axis: IAxis, value: unknown): number | null {
  if (value === undefined || value === null) {
    return null;
  }
  let n: number | null;
  if (axis.kind === 'number') {
    n = finite(value as number | string);
  } else {
    const index = axis.categories.indexOf(typeof value === 'string' ? value : JSON.stringify(value));
    n = index < 0 ? null : index;
  }
  if (n === null) {
    return null;
  }
  return axis.max === axis.min ? 0.5 : (n - axis.min) / (axis.max - axis.min);
}

/** A colour from blue (0) to orange (1) for a run's place on the colour column. */
function ramp(t: number): string {
  const a = [78, 121, 167];
  const b = [242, 142, 43];
  const mix = a.map((x, i) => Math.round(x + (b[i] - x) * t));
  return `rgb(${mix.join(',')})`;
}

/**
 * Parallel coordinates: a vertical axis per column, a polyline per run, coloured by the
 * last column (the metric to read the others against). Drawn on a canvas: thousands of
 * runs stay quick.
 */
export class ParallelChart implements IChart {
  constructor(columns: string[], runs: IRunPoint[], width: number, height: number) {
    this.node = el('div', 'mj-chart mj-parallel');
    this._runs = runs;
    this._axes = columns.map(c => axisOf(c, runs));
    this._canvas = el('canvas');
    this._labels = el('div', 'mj-parallel-labels');
    this.node.append(this._labels, this._canvas);
    this._height = height;
    (this.node as unknown as { mjChart: unknown }).mjChart = {
      columns,
      axes: this._axes,
      runs: runs.map(r => r.run_id)
    };
    this.resize(width);
  }

  resize(width: number): void {
    this._width = width;
    this.draw();
  }

  destroy(): void {
    this.node.remove();
  }

  private draw(): void {
    const ratio = window.devicePixelRatio || 1;
    const [w, h] = [this._width, this._height];
    this._canvas.width = Math.round(w * ratio);
    this._canvas.height = Math.round(h * ratio);
    this._canvas.style.width = `${w}px`;
    this._canvas.style.height = `${h}px`;
    const ctx = this._canvas.getContext('2d');
    if (!ctx) {
      return;
    }
    ctx.scale(ratio, ratio);
    const n = this._axes.length;
    const pad = { left: 40, right: 40, top: 36, bottom: 24 };
    const x = (i: number) => (n < 2 ? w / 2 : pad.left + ((w - pad.left - pad.right) * i) / (n - 1));
    const y = (t: number) => pad.top + (1 - t) * (h - pad.top - pad.bottom);
    const colourAxis = this._axes[n - 1];
    ctx.globalAlpha = this._runs.length > 500 ? 0.35 : 0.8;
    ctx.lineWidth = 1.25;
    for (const run of this._runs) {
      const shade = colourAxis ? position(colourAxis, run.values[colourAxis.column]) : null;
      ctx.strokeStyle = shade === null ? themeColour('--jp-ui-font-color3', '#999') : ramp(shade);
      ctx.beginPath();
      let drawing = false;
      this._axes.forEach((axis, i) => {
        const t = position(axis, run.values[axis.column]);
        if (t === null) {
          drawing = false;
          return;
        }
        if (drawing) {
          ctx.lineTo(x(i), y(t));
        } else {
          ctx.moveTo(x(i), y(t));
          drawing = true;
        }
      });
      ctx.stroke();
    }
    ctx.globalAlpha = 1;
    ctx.strokeStyle = themeColour('--jp-ui-font-color2', '#555');
    ctx.lineWidth = 1;
    const labels: HTMLElement[] = [];
    this._axes.forEach((axis, i) => {
      ctx.beginPath();
      ctx.moveTo(x(i), y(1));
      ctx.lineTo(x(i), y(0));
      ctx.stroke();
      const name = axis.column.slice(axis.column.indexOf('.') + 1);
      const top = axis.kind === 'number' ? readable(axis.max) : axis.categories[axis.categories.length - 1] ?? '';
      const bottom = axis.kind === 'number' ? readable(axis.min) : axis.categories[0] ?? '';
      for (const [text, cls, px] of [
        [name, 'mj-axis-name', 4],
        [top, 'mj-axis-max', pad.top - 16],
        [bottom, 'mj-axis-min', h - pad.bottom + 4]
      ] as const) {
        const label = el('span', cls, text);
        label.style.left = `${x(i)}px`;
        label.style.top = `${px}px`;
        label.title = axis.column;
        labels.push(label);
      }
    });
    this._labels.replaceChildren(...labels);
  }

  readonly node: HTMLElement;
  private _runs: IRunPoint[];
  private _axes: IAxis[];
  private _canvas: HTMLCanvasElement;
  private _labels: HTMLElement;
  private _width = 600;
  private _height: number;
}

/** A parameter (or metric) against a metric, a point per run; text values as categories. */
export class ScatterChart implements IChart {
  constructor(
    xColumn: string,
    yColumn: string,
    runs: IRunPoint[],
    width: number,
    height: number
  ) {
    this.node = el('div', 'mj-chart mj-scatter');
    const xAxis = axisOf(xColumn, runs);
    const points = runs
      .map(r => {
        const xv = r.values[xColumn];
        const xs =
          xAxis.kind === 'number'
            ? finite(xv as number | string)
            : xAxis.categories.indexOf(typeof xv === 'string' ? xv : JSON.stringify(xv));
        return { run: r, x: xs, y: finite(r.values[yColumn] as number | string) };
      })
      .filter(p => p.x !== null && p.x >= 0 && p.y !== null)
      .sort((a, b) => (a.x as number) - (b.x as number));
    const data: uPlot.AlignedData = [points.map(p => p.x as number), points.map(p => p.y)];
    const [xAxisOpts, yAxisOpts] = axes();
    if (xAxis.kind === 'category') {
      xAxisOpts.values = (_, ticks) =>
        ticks.map(t => (Number.isInteger(t) ? xAxis.categories[t] ?? '' : ''));
      xAxisOpts.incrs = [1];
    } else {
      xAxisOpts.values = (_, ticks) => ticks.map(readable);
    }
    const short = (c: string) => c.slice(c.indexOf('.') + 1);
    xAxisOpts.label = short(xColumn);
    yAxisOpts.label = short(yColumn);
    this.plot = new uPlot(
      {
        width,
        height,
        series: [
          { label: short(xColumn), value: (_, v) => (v === null ? '—' : readable(v)) },
          {
            label: short(yColumn),
            stroke: PALETTE[0],
            fill: PALETTE[0],
            paths: () => null,
            points: { show: true, size: 7, fill: PALETTE[0] },
            value: (_, v) => (v === null ? '—' : readable(v))
          }
        ],
        scales: {
          x: {
            time: false,
            range: (_, min, max) =>
              xAxis.kind === 'category' ? [-0.5, xAxis.categories.length - 0.5] : pad(min, max)
          },
          y: { range: (_, min, max) => pad(min, max) }
        },
        axes: [xAxisOpts, yAxisOpts],
        cursor: { points: { size: 9 } }
      },
      data,
      this.node
    );
    (this.node as unknown as { mjChart: unknown }).mjChart = {
      x: xColumn,
      y: yColumn,
      runs: points.map(p => p.run.run_id),
      data: this.plot.data,
      categories: xAxis.categories
    };
  }

  resize(width: number): void {
    this.plot.setSize({ width, height: this.plot.height });
  }

  destroy(): void {
    this.plot.destroy();
  }

  readonly node: HTMLElement;
  private plot: uPlot;
}

/** A range a little wider than ``[min, max]`` (a single value gets room around it). */
function pad(min: number | null, max: number | null): uPlot.Range.MinMax {
  if (min === null || max === null) {
    return [0, 1];
  }
  const span = max - min || Math.abs(max) || 1;
  return [min - span * 0.05, max + span * 0.05];
}

/** A tiny SVG line of a curve for a table cell (no axes; its last value is the cell's text). */
export function sparkline(values: (number | string)[], width = 60, height = 16): SVGSVGElement {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('class', 'mj-sparkline');
  svg.setAttribute('width', String(width));
  svg.setAttribute('height', String(height));
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('aria-hidden', 'true');
  const ys = values.map(finite);
  const present = ys.filter((v): v is number => v !== null);
  if (present.length < 2) {
    return svg;
  }
  const [lo, hi] = [Math.min(...present), Math.max(...present)];
  const step = width / (ys.length - 1);
  const points = ys
    .map((v, i) =>
      v === null
        ? null
        : `${(i * step).toFixed(1)},${(hi === lo ? height / 2 : 1 + ((hi - v) / (hi - lo)) * (height - 2)).toFixed(1)}`
    )
    .filter(p => p !== null)
    .join(' ');
  const line = document.createElementNS(ns, 'polyline');
  line.setAttribute('points', points);
  line.setAttribute('fill', 'none');
  line.setAttribute('stroke', 'currentColor');
  line.setAttribute('stroke-width', '1.2');
  svg.append(line);
  return svg;
}
