import { Widget } from '@lumino/widgets';

import { el, IComparison, show } from './api';
import { requestAPI } from './request';

/** Runs side by side in the main area: parameters, metrics with bars, data, SHAP tops. */
export class CompareWidget extends Widget {
  constructor(directory: string, ids: string[]) {
    super();
    this.addClass('mj-compare-view');
    this.id = CompareWidget.idFor(ids);
    this.title.label = `Compare ${ids.length} runs`;
    this.title.closable = true;
    this._directory = directory;
    this._ids = ids;
    const toggle = el('label', 'mj-show-all');
    this._toggle = el('input');
    this._toggle.type = 'checkbox';
    this._toggle.addEventListener('change', () => this.render());
    toggle.append(this._toggle, document.createTextNode(' Show all parameters'));
    this._body = el('div', 'mj-compare-body', 'Loading…');
    this.node.append(toggle, this._body);
    void this.load();
  }

  async load(): Promise<void> {
    try {
      const query = new URLSearchParams({ path: this._directory, ids: this._ids.join(',') });
      this._data = await requestAPI<IComparison>(`compare?${query.toString()}`);
      this.render();
    } catch (error) {
      this._body.textContent = `Could not compare: ${(error as Error).message}`;
      this._body.classList.add('mj-error');
    }
  }

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
      th.title = run.run_id;
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
    section('Parameters');
    for (const param of data.params) {
      if (!param.differs && !this._toggle.checked) {
        continue;
      }
      const tr = el('tr', param.differs ? 'mj-diff' : '');
      tr.dataset.param = param.key;
      tr.append(el('th', '', param.key));
      for (const value of param.values) {
        tr.append(el('td', '', show(value)));
      }
      body.append(tr);
    }
    section('Metrics');
    for (const metric of data.metrics) {
      const tr = el('tr');
      tr.dataset.metric = metric.key;
      tr.append(el('th', '', metric.key));
      const numbers = metric.values.filter((v): v is number => typeof v === 'number');
      const top = Math.max(...numbers.map(Math.abs), 0) || 1;
      metric.values.forEach((value, index) => {
        const td = el('td', metric.best === index ? 'mj-best' : '', show(value));
        if (typeof value === 'number') {
          const bar = el('div', 'mj-bar');
          bar.style.width = `${(100 * Math.abs(value)) / top}%`;
          td.append(bar);
        }
        tr.append(td);
      });
      body.append(tr);
    }
    section('Data');
    for (const role of ['train', 'eval'] as const) {
      const tr = el('tr');
      tr.append(el('th', '', `${role} data`));
      const recorded = data.data[role].hashes.some(h => h.length > 0);
      const verdict = !recorded ? 'not recorded' : data.data[role].same ? 'same data' : 'different data';
      const td = el('td', 'mj-data', verdict);
      td.colSpan = data.runs.length;
      tr.append(td);
      body.append(tr);
    }
    section('SHAP top features');
    const shap = el('tr');
    shap.append(el('th', '', 'features'));
    for (const run of data.shap) {
      shap.append(el('td', '', run.top.map(([name]) => name).join(', ') || '—'));
    }
    body.append(shap);
    table.append(body);
    this._body.replaceChildren(table);
    this._body.classList.remove('mj-error');
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
