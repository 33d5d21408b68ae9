import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { el, IComparison, readable } from './api';
import { copyLink } from './links';
import { requestAPI } from './request';

/** A finite number (not a boolean, not the strings "NaN"/"Infinity"). */
function isNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

/** A value's cell: ``readable(value)``; a finite number gets `mj-num` and its exact value. */
function valueCell(value: unknown, classes = '', suffix = ''): HTMLTableCellElement {
  const td = el('td', '', readable(value) + (isNumber(value) ? suffix : ''));
  if (isNumber(value)) {
    td.className = ['mj-num', classes].filter(Boolean).join(' ');
    td.title = String(value);
  }
  return td;
}

const POLL_MS = 2000; // while a compared run's SHAP explanation is still being computed
const MAX_POLLS = 300;

/**
 * Runs side by side in the main area: parameters (differences marked), metrics (the best by
 * each metric's direction, the primary metric first), data, SHAP tops. The `%compare` widget
 * draws the same table (mlops_jupyter/widgets/compare.py): one design, one set of classes.
 */
export class CompareWidget extends Widget {
  constructor(directory: string, ids: string[]) {
    super();
    this.addClass('mj-compare-view');
    this.id = CompareWidget.idFor(ids);
    this.title.label = `Compare ${ids.length} runs`;
    this.title.closable = true;
    this._directory = directory;
    this._ids = ids;
    const bar = el('div', 'mj-compare-actions');
    const toggle = el('label', 'mj-show-all');
    this._toggle = el('input');
    this._toggle.type = 'checkbox';
    this._toggle.addEventListener('change', () => this.render());
    toggle.append(this._toggle, document.createTextNode(' Show all parameters'));
    const link = el('button', 'mj-copy-link jp-Button', 'Copy link');
    link.title = 'Copy a link that reopens this comparison';
    link.addEventListener('click', () =>
      copyLink({ kind: 'compare', directory: this._directory, ids: this._ids }, link)
    );
    const charts = el('button', 'mj-compare-charts jp-Button', 'Charts');
    charts.addEventListener('click', () =>
      this._action.emit({ action: 'charts', args: { ids: this._ids } })
    );
    bar.append(toggle, link, charts);
    if (ids.length === 2) {
      const diff = el('button', 'mj-compare-diff jp-Button', 'Code diff');
      diff.addEventListener('click', () =>
        this._action.emit({ action: 'diff', args: { a: this._ids[0], b: this._ids[1] } })
      );
      bar.append(diff);
    }
    this._body = el('div', 'mj-compare-body', 'Loading…');
    this.node.append(bar, this._body);
    void this.load();
  }

  /** Emitted for the shell to act on: copy a link, open charts or a code diff. */
  get actionRequested(): ISignal<this, { action: string; args: Record<string, unknown> }> {
    return this._action;
  }

  async load(): Promise<void> {
    try {
      const query = new URLSearchParams({ path: this._directory, ids: this._ids.join(',') });
      this._data = await requestAPI<IComparison>(`compare?${query.toString()}`);
      this.render();
      if (this._data.shap.some(s => s.status === 'pending') && this._polls < MAX_POLLS) {
        this._polls += 1; // SHAP still running: look again, and redraw when it lands
        this._timer = window.setTimeout(() => void this.load(), POLL_MS);
      }
    } catch (error) {
      this._body.textContent = `Could not compare: ${(error as Error).message}`;
      this._body.classList.add('mj-error');
    }
  }

  /** The one compare design: see the docstring of mlops_jupyter/widgets/compare.py. */
  render(): void {
    const data = this._data;
    if (!data) {
      return;
    }
    const table = el('table', 'mj-compare-table');
    const head = el('tr');
    head.append(el('th', '', ''));
    for (const run of data.runs) {
      const th = el('th', '', run.name ?? run.run_id.slice(0, 8));
      th.scope = 'col';
      th.title = run.run_id;
      th.append(el('br'), el('small', '', `${run.run_id.slice(0, 8)} · ${run.status}`));
      head.append(th);
    }
    table.append(el('thead'));
    table.tHead?.append(head);
    const body = el('tbody');
    const section = (title: string): void => {
      const tr = el('tr', 'mj-section');
      const th = el('th', '', title);
      th.colSpan = data.runs.length + 1;
      tr.append(th);
      body.append(tr);
    };
    const rowHead = (text: string, title?: string): HTMLElement => {
      const th = el('th', '', text);
      th.scope = 'row';
      if (title) {
        th.title = title;
      }
      return th;
    };
    section('Parameters');
    let hidden = 0;
    for (const param of data.params) {
      if (!param.differs && !this._toggle.checked) {
        hidden += 1;
        continue;
      }
      const tr = el('tr', param.differs ? 'mj-diff' : '');
      tr.dataset.param = param.key;
      tr.append(rowHead(param.key));
      for (const value of param.values) {
        tr.append(valueCell(value));
      }
      body.append(tr);
    }
    section('Metrics (★ best)');
    for (const metric of data.metrics) {
      const tr = el('tr', metric.primary ? 'mj-primary' : '');
      tr.dataset.metric = metric.key;
      const direction = metric.direction ?? (metric.lower_is_better ? 'min' : 'max');
      let why = direction === 'min' ? 'lower is better' : 'higher is better';
      why += metric.direction_conflict
        ? ' (by its name: the experiments set different directions)'
        : metric.direction_source === 'experiment'
          ? ' (set for the experiment)'
          : ' (by its name)';
      const label = `${metric.key} ${direction === 'min' ? '↓' : '↑'}${metric.primary ? ' (primary)' : ''}`;
      tr.append(rowHead(label, why));
      const numbers = metric.values.filter(isNumber).map(Math.abs);
      const top = Math.max(...numbers, 0) || 1;
      metric.values.forEach((value, index) => {
        const best = metric.best === index;
        const td = valueCell(value, best ? 'mj-best' : '', best ? ' ★' : '');
        if (isNumber(value)) {
          const bar = el('div', 'mj-bar');
          bar.style.width = `${Math.round((100 * Math.abs(value)) / top)}%`;
          td.append(bar);
        }
        tr.append(td);
      });
      body.append(tr);
    }
    section('Data');
    for (const role of ['train', 'eval'] as const) {
      const tr = el('tr');
      tr.dataset.data = role;
      tr.append(rowHead(`${role} data`));
      const hashes = data.data[role].hashes;
      const recorded = hashes.some(h => h.length > 0);
      const verdict = !recorded ? 'not recorded' : data.data[role].same ? 'same data' : 'different data';
      const td = el('td', '', `${verdict} `);
      const short = hashes.map(hs => hs.map(h => h.slice(11, 21)).join(',') || 'none').join(', ');
      td.append(el('small', '', `(${short})`));
      td.colSpan = data.runs.length;
      tr.append(td);
      body.append(tr);
    }
    section('SHAP top features');
    const shap = el('tr');
    shap.dataset.shap = '';
    shap.append(rowHead('features'));
    for (const run of data.shap) {
      const status = run.status ?? (run.top.length ? 'ok' : 'none');
      const text =
        status === 'ok' && run.top.length
          ? run.top.map(([name]) => name).join(', ')
          : status === 'pending' || status === 'failed'
            ? status
            : '—';
      const td = el('td', `mj-shap-${status}`, text);
      if (run.reason && (status === 'failed' || status === 'none')) {
        td.title = run.reason;
      }
      shap.append(td);
    }
    body.append(shap);
    table.append(body);
    const parts: HTMLElement[] = [table];
    if (hidden) {
      const note = el('p', 'mj-note');
      note.append(el('small', '', `${hidden} identical parameters hidden.`));
      parts.push(note);
    }
    this._body.replaceChildren(...parts);
    this._body.classList.remove('mj-error');
  }

  dispose(): void {
    window.clearTimeout(this._timer);
    super.dispose();
  }

  /** The DOM id of the view comparing ``ids`` (one view per selection). */
  static idFor(ids: string[]): string {
    return `mlops-jupyter-compare-${ids.map(i => i.slice(0, 8)).join('-')}`;
  }

  /** The notebook directory whose store holds the runs. */
  get directory(): string {
    return this._directory;
  }

  /** The compared run ids, in column order. */
  get ids(): string[] {
    return [...this._ids];
  }

  private _directory: string;
  private _ids: string[];
  private _toggle: HTMLInputElement;
  private _body: HTMLElement;
  private _data: IComparison | null = null;
  private _polls = 0;
  private _timer = 0;
  private _action = new Signal<this, { action: string; args: Record<string, unknown> }>(this);
}

/** A model card in a main-area tab: a sandboxed iframe (no scripts) on the card endpoint. */
export class CardWidget extends Widget {
  constructor(url: string, ref: string, label: string, directory: string) {
    super();
    this.ref = ref;
    this.label = label;
    this.directory = directory;
    this.addClass('mj-card-view');
    this.id = CardWidget.idFor(ref);
    this.title.label = `Card: ${label}`;
    this.title.closable = true;
    const bar = el('div', 'mj-card-actions');
    const link = el('button', 'mj-copy-link jp-Button', 'Copy link');
    link.addEventListener('click', () => copyLink({ kind: 'card', directory, ids: [ref] }, link));
    bar.append(link);
    this.node.append(bar);
    const frame = el('iframe', 'mj-card-frame');
    frame.setAttribute('sandbox', '');
    frame.title = `Model card of ${label}`;
    frame.src = url;
    this.node.append(frame);
  }

  /** The DOM id of the tab showing the card of ``ref`` (one tab per card). */
  static idFor(ref: string): string {
    return `mlops-jupyter-card-${ref.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 64)}`;
  }

  readonly ref: string;
  readonly label: string;
  readonly directory: string;
}
