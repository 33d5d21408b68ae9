import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { el, IRunPage, IRunSummary } from './api';
import { CurvesChart, IChart, ICurve, IRunPoint, ParallelChart, ScatterChart } from './charts';
import { requestAPI } from './request';

/** The most runs the scatter and parallel coordinates read from a filtered experiment. */
export const MAX_CHART_RUNS = 5000;
/** The most runs whose curves are overlaid. */
export const MAX_CURVES = 10;
const PAGE = 1000;

/** Which runs a charts view shows: the ticked ones, or an experiment's filtered listing. */
export interface IChartScope {
  directory: string;
  /** The ticked runs; null for the whole filtered experiment. */
  ids: string[] | null;
  experiment: string;
  filter: string;
  sort: string;
  /** The table's columns (`params.KEY`, `metrics.KEY`): the parallel coordinates' axes. */
  columns: string[];
  /** The experiment's primary metric, read against the others (coloured, last axis). */
  primary: string | null;
  /** The ticked runs' summaries the table already has (the others are fetched). */
  runs?: IRunSummary[];
}

/** A run summary as the charts read it: `params.KEY` / `metrics.KEY` / `tags.KEY` values. */
export function point(run: IRunSummary): IRunPoint {
  const values: Record<string, unknown> = {};
  for (const kind of ['params', 'metrics', 'tags'] as const) {
    for (const [key, value] of Object.entries(run[kind] ?? {})) {
      values[`${kind}.${key}`] = value;
    }
  }
  return { run_id: run.run_id, name: run.name, values };
}

/**
 * Charts of runs in a main-area tab: overlaid curves of a metric (smoothing, log scale),
 * parallel coordinates over the table's columns, and a parameter-vs-metric scatter.
 */
export class ChartsWidget extends Widget {
  constructor(scope: IChartScope) {
    super();
    this.scope = scope;
    this.addClass('mj-charts-view');
    this.id = ChartsWidget.idFor(scope);
    this.title.label = scope.ids
      ? `Charts: ${scope.ids.length} runs`
      : `Charts: ${scope.experiment || 'all experiments'}`;
    this.title.closable = true;
    this._summary = el('p', 'mj-charts-scope', 'Loading…');

    this._metric = el('select', 'mj-curve-metric jp-mod-styled');
    this._metric.title = 'Metric whose curves are drawn';
    this._metric.addEventListener('change', () => void this.drawCurves());
    this._smoothing = el('input', 'mj-smoothing');
    this._smoothing.type = 'range';
    this._smoothing.min = '0';
    this._smoothing.max = '0.99';
    this._smoothing.step = '0.01';
    this._smoothing.value = '0';
    this._smoothing.setAttribute('aria-label', 'Smoothing');
    this._smoothing.addEventListener('input', () => this.redrawCurves());
    this._log = el('input', 'mj-log-scale');
    this._log.type = 'checkbox';
    this._log.addEventListener('change', () => this.redrawCurves());
    const smoothingLabel = el('label', '', 'Smoothing ');
    smoothingLabel.append(this._smoothing);
    const logLabel = el('label', '');
    logLabel.append(this._log, document.createTextNode(' Log scale'));
    const curveControls = el('div', 'mj-chart-controls');
    curveControls.append(this._metric, smoothingLabel, logLabel);
    this._curvesBox = el('div', 'mj-chart-box');
    this._curvesNote = el('p', 'mj-chart-note');

    this._colour = el('select', 'mj-parallel-colour jp-mod-styled');
    this._colour.title = 'The axis read against the others (last, and the colour)';
    this._colour.addEventListener('change', () => this.drawParallel());
    const parallelControls = el('div', 'mj-chart-controls');
    const colourLabel = el('label', '', 'Colour by ');
    colourLabel.append(this._colour);
    parallelControls.append(colourLabel);
    this._parallelBox = el('div', 'mj-chart-box');

    this._x = el('select', 'mj-scatter-x jp-mod-styled');
    this._x.title = 'Horizontal axis';
    this._y = el('select', 'mj-scatter-y jp-mod-styled');
    this._y.title = 'Vertical axis';
    for (const select of [this._x, this._y]) {
      select.addEventListener('change', () => this.drawScatter());
    }
    const scatterControls = el('div', 'mj-chart-controls');
    scatterControls.append(this._x, el('span', '', ' against '), this._y);
    this._scatterBox = el('div', 'mj-chart-box');

    const section = (title: string, ...parts: HTMLElement[]): HTMLElement => {
      const box = el('section', 'mj-chart-section');
      box.append(el('h3', '', title), ...parts);
      return box;
    };
    this.node.append(
      this._summary,
      section('Curves', curveControls, this._curvesNote, this._curvesBox),
      section('Parallel coordinates', parallelControls, this._parallelBox),
      section('Scatter', scatterControls, this._scatterBox)
    );
    void this.load();
  }

  /** One view per scope (the same ticked runs, or the same experiment and filter). */
  static idFor(scope: IChartScope): string {
    const key = scope.ids
      ? scope.ids.map(i => i.slice(0, 8)).join('-')
      : `${scope.experiment}-${scope.filter}`;
    let hash = 0;
    for (const c of `${scope.directory}\n${key}`) {
      hash = (hash * 31 + c.charCodeAt(0)) | 0;
    }
    return `mlops-jupyter-charts-${(hash >>> 0).toString(16)}`;
  }

  readonly scope: IChartScope;

  private query(extra: Record<string, string>): string {
    return new URLSearchParams({ path: this.scope.directory, ...extra }).toString();
  }

  /** The runs in scope: the ticked ones, or up to MAX_CHART_RUNS of the filtered listing. */
  private async fetchRuns(): Promise<void> {
    const { ids, experiment, filter, sort } = this.scope;
    if (ids) {
      // the table's summaries; else a run's record (without its curves): the same params,
      // metrics and tags
      const known = new Map((this.scope.runs ?? []).map(r => [r.run_id, r]));
      this._runs = await Promise.all(
        ids.map(
          id =>
            known.get(id) ??
            requestAPI<IRunSummary>(
              `runs/${encodeURIComponent(id)}?${this.query({ history: '0' })}`
            )
        )
      );
      this._summary.textContent = `${this._runs.length} ticked runs`;
      return;
    }
    const runs: IRunSummary[] = [];
    let total = 0;
    for (let offset = 0; offset < MAX_CHART_RUNS; offset += PAGE) {
      const params: Record<string, string> = {
        sort: sort || '-started_at',
        offset: String(offset),
        limit: String(PAGE)
      };
      if (experiment) {
        params.experiment = experiment;
      }
      if (filter.trim()) {
        params.filter = filter;
      }
      const page = await requestAPI<IRunPage>(`runs?${this.query(params)}`);
      runs.push(...page.runs);
      total = page.total;
      if (runs.length >= total || !page.runs.length) {
        break;
      }
    }
    this._runs = runs;
    const where = [experiment || 'all experiments', filter.trim() && `filter ${filter.trim()}`]
      .filter(Boolean)
      .join(' · ');
    this._summary.textContent =
      runs.length < total
        ? `${where}: ${total} runs, the first ${runs.length} by ${sort || '-started_at'}`
        : `${where}: ${total} runs`;
  }

  async load(): Promise<void> {
    try {
      await this.fetchRuns();
    } catch (error) {
      this._summary.textContent = `Could not read the runs: ${(error as Error).message}`;
      this._summary.classList.add('mj-error');
      return;
    }
    this._points = this._runs.map(point);
    this.fillColumnChoices();
    await this.loadCurveKeys();
    this.drawParallel();
    this.drawScatter();
  }

  /** The runs whose curves are overlaid: the ticked ones, or the first MAX_CURVES listed. */
  private curveRuns(): IRunSummary[] {
    return this._runs.slice(0, MAX_CURVES);
  }

  private async loadCurveKeys(): Promise<void> {
    const ids = this.curveRuns().map(r => r.run_id);
    let keys: string[] = [];
    if (ids.length) {
      try {
        keys = (await requestAPI<{ keys: string[] }>(`curves/keys?${this.query({ ids: ids.join(',') })}`))
          .keys;
      } catch (error) {
        this._curvesNote.textContent = `Could not list the curves: ${(error as Error).message}`;
      }
    }
    const options = keys.map(k => {
      const option = el('option', '', k);
      option.value = k;
      return option;
    });
    this._metric.replaceChildren(...options);
    const primary = this.scope.primary;
    if (primary && keys.includes(primary)) {
      this._metric.value = primary;
    }
    if (!keys.length) {
      this._curvesNote.textContent = 'None of these runs logged a metric over several steps.';
      return;
    }
    await this.drawCurves();
  }

  /** Fetch the chosen metric's curves, then draw them. */
  async drawCurves(): Promise<void> {
    const key = this._metric.value;
    const runs = this.curveRuns();
    if (!key || !runs.length) {
      return;
    }
    const request = ++this._curveRequests;
    const started = performance.now();
    try {
      const answer = await requestAPI<{ key: string; runs: ICurve[] }>(
        `curves?${this.query({ ids: runs.map(r => r.run_id).join(','), key })}`
      );
      if (request !== this._curveRequests) {
        return;
      }
      this._curves = answer.runs;
      this._curvesFetchedMs = performance.now() - started;
    } catch (error) {
      this._curvesNote.textContent = `Could not read the curves: ${(error as Error).message}`;
      return;
    }
    this.redrawCurves();
  }

  private redrawCurves(): void {
    const key = this._metric.value;
    if (!key) {
      return;
    }
    const without = this._curves.filter(c => !c.steps.length).length;
    const more = this._runs.length > MAX_CURVES ? `the first ${MAX_CURVES} runs listed` : '';
    const notes = [
      more,
      without ? `${without} of them did not log ${key} over steps` : '',
      ...this._curves
        .filter(c => c.total > c.steps.length)
        .map(c => `${c.name ?? c.run_id.slice(0, 8)}: ${c.total} points drawn as ${c.steps.length}`)
    ].filter(Boolean);
    this._curvesNote.textContent = notes.join('; ');
    this._curvesChart?.destroy();
    this._curvesChart = new CurvesChart(key, this._curves, {
      smoothing: Number(this._smoothing.value),
      log: this._log.checked,
      width: this.chartWidth(),
      height: 280
    });
    this._curvesChart.node.dataset.fetchMs = this._curvesFetchedMs.toFixed(1);
    this._curvesBox.replaceChildren(this._curvesChart.node);
  }

  /** The params and metrics present in scope, for the parallel axes and scatter axes. */
  private fillColumnChoices(): void {
    const present = new Set(this._points.flatMap(p => Object.keys(p.values)));
    const columns = [...present].filter(c => !c.startsWith('tags.')).sort();
    const metrics = columns.filter(c => c.startsWith('metrics.'));
    const option = (column: string): HTMLOptionElement => {
      const o = el('option', '', column);
      o.value = column;
      return o;
    };
    this._colour.replaceChildren(...metrics.map(option));
    this._x.replaceChildren(...columns.map(option));
    this._y.replaceChildren(...metrics.map(option));
    const primary = this.scope.primary ? `metrics.${this.scope.primary}` : null;
    const yDefault = primary && metrics.includes(primary) ? primary : metrics[0];
    if (yDefault) {
      this._colour.value = yDefault;
      this._y.value = yDefault;
    }
    const param = this.scope.columns.find(c => c.startsWith('params.') && present.has(c));
    const firstParam = columns.find(c => c.startsWith('params.'));
    this._x.value = param ?? firstParam ?? columns[0] ?? '';
  }

  /**
   * Axes: the table's parameter columns (or, with none chosen, every parameter that varies
   * across the runs), its metric columns, then the colour metric last.
   */
  private parallelColumns(): string[] {
    const present = new Set(this._points.flatMap(p => Object.keys(p.values)));
    const colour = this._colour.value;
    const table = this.scope.columns.filter(c => present.has(c) && c !== colour);
    let params = table.filter(c => c.startsWith('params.'));
    if (!params.length) {
      params = [...present]
        .filter(c => c.startsWith('params.'))
        .filter(c => new Set(this._points.map(p => JSON.stringify(p.values[c]))).size > 1)
        .sort();
    }
    const metrics = table.filter(c => c.startsWith('metrics.'));
    return [...params.slice(0, 8), ...metrics.slice(0, 3), ...(colour ? [colour] : [])];
  }

  private drawParallel(): void {
    this._parallelChart?.destroy();
    const columns = this.parallelColumns();
    if (columns.length < 2 || !this._points.length) {
      this._parallelBox.replaceChildren(
        el('p', 'mj-chart-note', 'Parallel coordinates need runs with two parameters or metrics.')
      );
      this._parallelChart = null;
      return;
    }
    this._parallelChart = new ParallelChart(columns, this._points, this.chartWidth(), 300);
    this._parallelBox.replaceChildren(this._parallelChart.node);
  }

  private drawScatter(): void {
    this._scatterChart?.destroy();
    if (!this._x.value || !this._y.value) {
      this._scatterBox.replaceChildren(el('p', 'mj-chart-note', 'No metric to plot.'));
      this._scatterChart = null;
      return;
    }
    this._scatterChart = new ScatterChart(
      this._x.value,
      this._y.value,
      this._points,
      this.chartWidth(),
      280
    );
    this._scatterBox.replaceChildren(this._scatterChart.node);
  }

  private chartWidth(): number {
    return Math.max(320, (this.node.clientWidth || 800) - 32);
  }

  protected onResize(msg: Widget.ResizeMessage): void {
    super.onResize(msg);
    const width = this.chartWidth();
    this._curvesChart?.resize(width);
    this._parallelChart?.resize(width);
    this._scatterChart?.resize(width);
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.onResize(Widget.ResizeMessage.UnknownSize);
  }

  private _summary: HTMLElement;
  private _metric: HTMLSelectElement;
  private _smoothing: HTMLInputElement;
  private _log: HTMLInputElement;
  private _curvesBox: HTMLElement;
  private _curvesNote: HTMLElement;
  private _colour: HTMLSelectElement;
  private _parallelBox: HTMLElement;
  private _x: HTMLSelectElement;
  private _y: HTMLSelectElement;
  private _scatterBox: HTMLElement;
  private _runs: IRunSummary[] = [];
  private _points: IRunPoint[] = [];
  private _curves: ICurve[] = [];
  private _curvesFetchedMs = 0;
  private _curveRequests = 0;
  private _curvesChart: IChart | null = null;
  private _parallelChart: IChart | null = null;
  private _scatterChart: IChart | null = null;
}
