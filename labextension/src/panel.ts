import { Message } from '@lumino/messaging';
import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { ServerConnection } from '@jupyterlab/services';
import { URLExt } from '@jupyterlab/coreutils';

import { duration, el, IExperiment, IRunColumns, IRunPage, readable } from './api';
import { ICurve, sparkline } from './charts';
import { ICardRequest, ModelsView } from './models';
import { requestAPI } from './request';

const PAGE_SIZE = 50;
/** A listing this recent (ms) is not redone when the panel is shown. */
const FRESH_MS = 2000;
const METRIC_COLUMNS = 3;

/** What `GET /mlops-jupyter/api/store` answers. */
export interface IStoreInfo {
  /** `sqlite` (a `.mlops` folder) or `postgresql` (a team store). */
  engine: 'sqlite' | 'postgresql';
  /** `user@host:port/database` of a team store (never its password), else null. */
  team_store: string | null;
  store_dir: string | null;
  db_path: string | null;
  exists: boolean;
  root_dir: string;
  relative_store_dir: string | null;
}

/** Everything the runs view draws, in one answer (`GET panel`). */
interface IPanelView {
  store: IStoreInfo;
  experiments: IExperiment[] | null;
  /** The experiment shown: the one asked for if it exists, else '' (all of them). */
  experiment: string;
  columns: IRunColumns | null;
  settings: IMetricSettings | null;
  runs: IRunPage | null;
  /** Why the filter (or sort) was refused; the rest is still answered. */
  runs_error: string | null;
}

/** The query of `GET panel` for a state (the first page unless ``offset`` says otherwise). */
function panelQuery(
  state: { directory: string; experiment: string; sort: string; filter: string },
  offset = 0
): string {
  const params: Record<string, string> = {
    path: state.directory,
    sort: state.sort,
    offset: String(offset),
    limit: String(PAGE_SIZE)
  };
  if (state.experiment) {
    params.experiment = state.experiment;
  }
  if (state.filter.trim()) {
    params.filter = state.filter;
  }
  return new URLSearchParams(params).toString();
}

/** Listings asked for before any panel exists, by query (taken once). */
const earlyViews = new Map<string, Promise<IPanelView>>();

/**
 * Ask already for the runs view a saved state shows: a page load calls this as JupyterLab
 * starts its plugins, before the panel's own plugin (which waits on the shell, the palette,
 * the layout restorer) is activated; the panel's first listing takes the answer if it asks
 * for the same.
 */
export function listEarly(state: IPanelState): void {
  if (state.view === 'models' || typeof state.directory !== 'string') {
    return;
  }
  const query = panelQuery({
    directory: state.directory,
    experiment: state.experiment || '',
    sort: state.sort || '-started_at',
    filter: typeof state.filter === 'string' ? state.filter : ''
  });
  const view = requestAPI<IPanelView>(`panel?${query}`);
  view.catch(() => undefined); // said by the listing that takes it
  earlyViews.set(query, view);
}

/** The early answer for ``query``, if one was asked for (the others are dropped). */
function takeEarly(query: string): Promise<IPanelView> | null {
  const view = earlyViews.get(query) ?? null;
  earlyViews.clear();
  return view;
}

/** What the panel remembers across reloads. */
export interface IPanelState {
  view: 'runs' | 'models';
  experiment: string;
  sort: string;
  /** The filter line (the REST `filter=` syntax). */
  filter?: string;
  /** The columns chosen per store directory and experiment: `params.KEY`, `metrics.KEY`... */
  columns?: Record<string, string[]>;
  /** Where the training-data hash column is hidden (the same keys as ``columns``). */
  hideData?: Record<string, boolean>;
  /**
   * The store directory last shown: a page load lists it at once, without waiting for the
   * layout (and the document that picks the directory) to be restored.
   */
  directory?: string;
}

/** The primary metric of an experiment and the direction of its metrics. */
export interface IMetricSettings {
  experiment: string;
  primary_metric: string | null;
  /** The directions people set (the others: `GET columns` says, from their names). */
  directions: Record<string, 'min' | 'max'>;
}

/** Something the panel asks the shell to open: a run, charts, a code diff, the table. */
export interface IPanelAction {
  action: 'run' | 'charts' | 'diff' | 'table';
  args: Record<string, unknown>;
}

const NO_SETTINGS: IMetricSettings = { experiment: '', primary_metric: null, directions: {} };

const KINDS = [
  ['params', 'Parameters'],
  ['metrics', 'Metrics'],
  ['tags', 'Tags']
] as const;

/**
 * The MLOps runs side panel: the store the server resolved for the current notebook's
 * directory, and two views: Runs (an experiment picker and a sortable, paginated runs table;
 * the server sorts and pages, so 100,000 runs cost the same as 100; select 2 to 10 runs to
 * compare them) and Models (the registry: versions, stages, requests to review).
 *
 * Every string from the server is set with textContent, never parsed as HTML.
 */
export class RunsPanel extends Widget {
  /**
   * ``placement`` 'left' is the side panel; 'main' the same table in a main-area tab, for
   * when the sidebar is too narrow for the columns wanted.
   */
  constructor(placement: 'left' | 'main' = 'left') {
    super();
    this.placement = placement;
    this.id = placement === 'left' ? 'mlops-jupyter-panel' : 'mlops-jupyter-runs-main';
    this.addClass('mj-panel');
    this.addClass(`mj-placement-${placement}`);
    this.title.caption = 'MLOps runs';
    if (placement === 'main') {
      this.title.label = 'MLOps runs';
      this.title.closable = true;
    }

    const header = document.createElement('div');
    header.className = 'mj-header';
    const heading = document.createElement('h2');
    heading.className = 'mj-title';
    heading.textContent = 'MLOps runs';
    this._refreshButton = document.createElement('button');
    this._refreshButton.className = 'mj-refresh jp-Button';
    this._refreshButton.title = 'Refresh';
    this._refreshButton.textContent = 'Refresh';
    this._refreshButton.addEventListener('click', () => void this.refresh(true));
    header.append(heading, this._refreshButton);
    if (placement === 'left') {
      this._wideButton = el('button', 'mj-open-main jp-Button', '⤢');
      this._wideButton.title = 'Open the runs table in the main area (room for more columns)';
      this._wideButton.setAttribute('aria-label', this._wideButton.title);
      this._wideButton.addEventListener('click', () =>
        this._action.emit({ action: 'table', args: { state: this.state, directory: this._directory } })
      );
      header.append(this._wideButton);
    }

    const label = document.createElement('div');
    label.className = 'mj-label';
    label.textContent = 'Store';
    this._path = document.createElement('code');
    this._path.className = 'mj-store-path';
    this._status = document.createElement('div');
    this._status.className = 'mj-store-status';
    this._error = document.createElement('div');
    this._error.className = 'mj-error';
    this._error.hidden = true;

    this._experiment = el('select', 'mj-experiment jp-mod-styled');
    this._experiment.title = 'Experiment';
    this._experiment.addEventListener('change', () => {
      this._offset = 0;
      this._chosenExperiment = this._experiment.value;
      this.emitState();
      void this.loadColumns().then(() => this.loadRuns());
    });
    this._columnsButton = el('button', 'mj-columns-button jp-Button', 'Columns');
    this._columnsButton.title = 'Choose the parameters, metrics and tags shown';
    this._columnsButton.setAttribute('aria-expanded', 'false');
    this._columnsButton.addEventListener('click', () => this.toggleColumnMenu());
    this._columnMenu = el('div', 'mj-columns-menu');
    this._columnMenu.hidden = true;
    this._filter = el('input', 'mj-filter jp-mod-styled');
    this._filter.type = 'search';
    this._filter.placeholder = 'metrics.auc >= 0.8 params.model = rf tags.owner = ana';
    this._filter.title =
      'Filter: params.KEY = VALUE, metrics.KEY >= NUMBER, tags.KEY = TEXT (=, !=, >, >=, <, <=); Enter to apply';
    this._filter.setAttribute('aria-label', 'Filter runs');
    this._filter.addEventListener('keydown', event => {
      if (event.key === 'Enter') {
        this.applyFilter();
      }
    });
    this._filter.addEventListener('search', () => {
      if (!this._filter.value) {
        this.applyFilter(); // the clear button (Enter is the keydown above: not twice)
      }
    });
    this._filterError = el('div', 'mj-filter-error');
    this._filterError.setAttribute('role', 'alert');
    this._filterError.hidden = true;
    const controls = el('div', 'mj-controls');
    controls.append(this._experiment, this._columnsButton);
    this._table = el('table', 'mj-runs');
    const pager = el('div', 'mj-pager');
    this._prev = el('button', 'mj-prev jp-Button', '‹');
    this._prev.title = 'Previous page';
    this._prev.addEventListener('click', () => this.page(-1));
    this._pageLabel = el('span', 'mj-page', '');
    this._next = el('button', 'mj-next jp-Button', '›');
    this._next.title = 'Next page';
    this._next.addEventListener('click', () => this.page(1));
    pager.append(this._prev, this._pageLabel, this._next);
    this._compareButton = el('button', 'mj-compare jp-Button', 'Compare');
    this._compareButton.disabled = true;
    this._compareButton.addEventListener('click', () => {
      this._compareRequested.emit({ directory: this._directory, ids: [...this._selected] });
    });
    this._chartsButton = el('button', 'mj-charts jp-Button', 'Charts');
    this._chartsButton.title = 'Curves, parallel coordinates and a scatter of the ticked runs, or of all filtered runs';
    this._chartsButton.addEventListener('click', () => this.openCharts());
    this._diffButton = el('button', 'mj-code-diff-button jp-Button', 'Code diff');
    this._diffButton.title = 'The code of two ticked runs, line by line';
    this._diffButton.disabled = true;
    this._diffButton.addEventListener('click', () => {
      const [a, b] = this.selectedOldestFirst();
      this._action.emit({ action: 'diff', args: { directory: this._directory, a, b } });
    });
    this._exportButton = el('button', 'mj-export jp-Button', 'Export CSV');
    this._exportButton.title = 'Every run of this filtered view, with the columns shown, as CSV';
    this._exportButton.addEventListener('click', () => void this.exportCsv());
    const actions = el('div', 'mj-actions');
    actions.append(this._compareButton, this._chartsButton, this._diffButton, this._exportButton);
    this._runsBox = el('div', 'mj-runs-box');
    this._runsBox.append(
      controls,
      this._columnMenu,
      this._filter,
      this._filterError,
      this._tableBox,
      pager,
      actions
    );
    this._tableBox.append(this._table);
    this._models.cardRequested.connect((_, request) => this._cardRequested.emit(request));
    this._models.compareRequested.connect((_, request) => this._compareRequested.emit(request));

    const tabs = el('div', 'mj-tabs');
    tabs.setAttribute('role', 'tablist');
    for (const [view, text] of [
      ['runs', 'Runs'],
      ['models', 'Models']
    ] as const) {
      const tab = el('button', 'mj-tab', text);
      tab.id = `mj-tab-${view}`;
      tab.dataset.view = view;
      tab.setAttribute('role', 'tab');
      tab.addEventListener('click', () => this.showView(view));
      tab.addEventListener('keydown', event => {
        if (event.key === 'ArrowLeft' || event.key === 'ArrowRight') {
          const other = view === 'runs' ? 'models' : 'runs';
          this.showView(other);
          this._tabs[other]?.focus();
        }
      });
      this._tabs[view] = tab;
      tabs.append(tab);
    }
    this._runsBox.setAttribute('role', 'tabpanel');
    this._runsBox.setAttribute('aria-labelledby', 'mj-tab-runs');
    this._models.node.setAttribute('role', 'tabpanel');
    this._models.node.setAttribute('aria-labelledby', 'mj-tab-models');
    this._storeBox = el('div', 'mj-store-box');
    this._storeBox.hidden = true;
    this._storeBox.append(tabs, this._runsBox, this._models.node);
    this.node.append(header, label, this._path, this._status, this._error, this._storeBox);
    this.markView();
  }

  /** Emitted when the view, experiment or sort changes (to be saved for the next reload). */
  get stateChanged(): ISignal<this, IPanelState> {
    return this._stateChanged;
  }

  /** The view, experiment and sort shown. */
  get state(): IPanelState {
    return {
      view: this._view,
      experiment: this._chosenExperiment,
      sort: this._sort,
      filter: this._filterText,
      columns: { ...this._chosenColumns },
      hideData: { ...this._hideData },
      directory: this._directory
    };
  }

  set state(value: IPanelState) {
    this.applyState(value);
    void this.refresh();
  }

  /**
   * Take a saved state (the workspace's, after the browser's copy was shown): list anew only
   * if it changes what is shown.
   */
  restoreState(value: IPanelState): void {
    const before = JSON.stringify(this.state);
    this.applyState(value);
    if (JSON.stringify(this.state) !== before) {
      void this.refresh();
    }
  }

  private applyState(value: IPanelState): void {
    this._view = value.view === 'models' ? 'models' : 'runs';
    this._chosenExperiment = value.experiment || '';
    this._sort = value.sort || '-started_at';
    this._filterText = typeof value.filter === 'string' ? value.filter : '';
    this._filter.value = this._filterText;
    const columns = value.columns && typeof value.columns === 'object' ? value.columns : {};
    this._chosenColumns = Object.fromEntries(
      Object.entries(columns).filter(([, v]) => Array.isArray(v))
    );
    const hidden = value.hideData && typeof value.hideData === 'object' ? value.hideData : {};
    this._hideData = Object.fromEntries(Object.entries(hidden).filter(([, v]) => v === true));
    if (typeof value.directory === 'string' && value.directory !== this._directory) {
      this._directory = value.directory;
      this._offset = 0;
      this._selected.clear();
      this.prefetch();
    }
    this.markView();
  }

  /** Show the Runs or the Models view. */
  showView(view: 'runs' | 'models'): void {
    if (view !== this._view) {
      this._view = view;
      this.markView();
      this.emitState();
      void this.refresh();
    }
  }

  private markView(): void {
    for (const view of ['runs', 'models'] as const) {
      const current = view === this._view;
      const tab = this._tabs[view];
      if (tab) {
        tab.setAttribute('aria-selected', String(current));
        tab.classList.toggle('mj-mod-current', current);
        tab.tabIndex = current ? 0 : -1;
      }
    }
    this._runsBox.hidden = this._view !== 'runs';
    this._models.node.hidden = this._view !== 'models';
  }

  private emitState(): void {
    this._stateChanged.emit(this.state);
  }

  /** Emitted when the user asks to compare the selected runs. */
  get compareRequested(): ISignal<this, { directory: string; ids: string[] }> {
    return this._compareRequested;
  }

  /** Emitted when the user asks for a run, charts, a code diff or the table in the main area. */
  get actionRequested(): ISignal<this, IPanelAction> {
    return this._action;
  }

  /** Emitted when the user asks for a model card (a run's, or a model version's). */
  get cardRequested(): ISignal<this, ICardRequest> {
    return this._cardRequested;
  }

  /** The notebook directory (relative to the server root) whose store is shown. */
  get directory(): string {
    return this._directory;
  }

  set directory(value: string) {
    if (value !== this._directory) {
      this._directory = value;
      this._offset = 0;
      this._selected.clear();
      this.prefetch();
      this.emitState();
      void this.refresh();
    }
  }

  /**
   * While the saved state is still being read (a page load), ask already for what the runs
   * view shows with the state known so far; the first refresh uses the answer if the state
   * did not change meanwhile.
   */
  prefetch(): void {
    if (this._ready || this._view === 'models') {
      return;
    }
    const query = this.viewQuery();
    if (this._early?.query === query) {
      return;
    }
    const view = takeEarly(query) ?? requestAPI<IPanelView>(`panel?${query}`);
    view.catch(() => undefined); // said by the refresh that reads it
    this._early = { query, view };
  }

  /**
   * Ask the server which store applies, and show it. A refresh asked for while one for the
   * same directory and view is on its way joins it (a page load asks three times: for the
   * directory, the restored state, and on being shown); ``force`` (the Refresh button, a
   * tracked cell that finished) always asks anew.
   */
  refresh(force = false): Promise<void> {
    if (!this._ready) {
      return this._whenReady; // asked before the saved state is back: done once it is
    }
    const key = JSON.stringify([this._directory, this.state]);
    if (!force && this._inFlight && this._inFlight.key === key) {
      return this._inFlight.done;
    }
    const done = this.reload().finally(() => {
      if (this._inFlight?.done === done) {
        this._inFlight = null;
        this._listed = { key, at: performance.now() };
      }
    });
    this._inFlight = { key, done };
    return done;
  }

  /**
   * The panel has its saved state (or knows there is none): it lists the store once (the
   * refreshes asked for until now are that one).
   */
  markReady(): void {
    if (this._ready) {
      return;
    }
    this._ready = true;
    void this.refresh().then(this._resolveReady);
  }

  private async reload(): Promise<void> {
    const request = ++this._requests;
    this.node.classList.add('mj-loading');
    try {
      if (this._view === 'models') {
        const query = new URLSearchParams({ path: this._directory }).toString();
        const info = await requestAPI<IStoreInfo>(`store?${query}`);
        if (request !== this._requests) {
          return;
        }
        this.showStore(info);
        if (info.exists) {
          await this._models.load(this._directory);
        }
        return;
      }
      // the store, its experiments, the column keys, the metric settings and a page of
      // runs in one answer: one round trip while JupyterLab may still be starting
      const query = this.viewQuery();
      const runRequest = ++this._runRequests; // a page asked for later wins over this one
      const early = this._early?.query === query ? this._early.view : takeEarly(query);
      this._early = null;
      const view = await (early ?? requestAPI<IPanelView>(`panel?${query}`));
      if (request !== this._requests) {
        return;
      }
      this.showStore(view.store);
      if (!view.store.exists) {
        return;
      }
      this.showExperiments(view.experiments ?? []);
      this._available = view.columns ?? { params: [], metrics: [], tags: [] };
      this._settings = view.settings ?? NO_SETTINGS;
      this.renderColumnMenu();
      if (runRequest !== this._runRequests) {
        return; // the filter, sort or page changed meanwhile: that listing draws the table
      }
      if (view.runs) {
        this._page = view.runs;
        this.showFilterError('');
        this.renderRuns();
      } else if (view.runs_error !== null && this._filterText.trim()) {
        this.showFilterError(view.runs_error); // the filter's syntax: said beside it
      } else {
        this._error.hidden = false;
        this._error.textContent = `Could not list runs: ${view.runs_error ?? 'no answer'}`;
      }
    } catch (error) {
      if (request !== this._requests) {
        return;
      }
      this._error.hidden = false;
      this._error.textContent = `Could not resolve the store: ${(error as Error).message}`;
    } finally {
      if (request === this._requests) {
        this.node.classList.remove('mj-loading');
      }
    }
  }

  /** The store's place and whether it exists (the runs and models boxes show only if so). */
  private showStore(info: IStoreInfo): void {
    this._error.hidden = true;
    this._error.textContent = '';
    if (info.team_store) {
      this._path.textContent = `team store ${info.team_store}`;
      this._path.title = 'PostgreSQL: the store this project shares with its team';
    } else {
      this._path.textContent = info.relative_store_dir ?? info.store_dir ?? '';
      this._path.title = info.db_path ?? '';
    }
    this._status.textContent = info.exists
      ? 'store exists'
      : 'store will be created on first tracked run';
    this._storeBox.hidden = !info.exists;
  }

  /** The query of `GET panel` for what is shown now. */
  private viewQuery(): string {
    return panelQuery(
      {
        directory: this._directory,
        experiment: this._chosenExperiment,
        sort: this._sort,
        filter: this._filterText
      },
      this._offset
    );
  }

  private query(extra: Record<string, string> = {}): string {
    return new URLSearchParams({ path: this._directory, ...extra }).toString();
  }

  /** The experiment picker: the chosen one kept if it is still there, else all of them. */
  private showExperiments(experiments: IExperiment[]): void {
    const chosen = this._chosenExperiment;
    const options = [el('option', '', 'All experiments')];
    options[0].value = '';
    for (const e of experiments) {
      const option = el('option', '', `${e.experiment} (${e.runs})`);
      option.value = e.experiment;
      options.push(option);
    }
    this._experiment.replaceChildren(...options);
    this._experiment.value = experiments.some(e => e.experiment === chosen) ? chosen : '';
    this._chosenExperiment = this._experiment.value;
  }

  /** The keys the column chooser offers, for the chosen experiment. */
  async loadColumns(): Promise<void> {
    const params: Record<string, string> = {};
    if (this._experiment.value) {
      params.experiment = this._experiment.value;
    }
    // both at once; either failing leaves the listing working (no chooser, no primary metric)
    const [available, settings] = await Promise.all([
      requestAPI<IRunColumns>(`columns?${this.query(params)}`).catch(() => null),
      this._experiment.value
        ? requestAPI<IMetricSettings>(`experiments/settings?${this.query(params)}`).catch(
            () => null
          )
        : null
    ]);
    this._available = available ?? { params: [], metrics: [], tags: [] };
    this._settings = settings ?? NO_SETTINGS;
    this.renderColumnMenu();
  }

  /** The experiment's primary metric (null for all experiments, or none chosen). */
  get primaryMetric(): string | null {
    return this._experiment.value ? this._settings.primary_metric : null;
  }

  /** Whether a smaller value of ``metric`` is better in the experiment shown. */
  private lowerIsBetter(metric: string): boolean {
    const set = this._settings.directions[metric] ?? this._available.directions?.[metric];
    return set === 'min';
  }

  /** Make ``metric`` the experiment's primary metric (null: none), with its direction. */
  private async setPrimary(metric: string | null, direction: 'min' | 'max'): Promise<void> {
    const experiment = this._experiment.value;
    const body = metric
      ? { experiment, metric, direction, primary: true }
      : { experiment, primary: null };
    try {
      this._settings = await requestAPI<IMetricSettings>(
        `experiments/settings?${this.query({ experiment })}`,
        { method: 'POST', body: JSON.stringify(body) }
      );
      this.showFilterError('');
    } catch (error) {
      this.showFilterError(`Could not set the primary metric: ${(error as Error).message}`);
      return;
    }
    if (metric) {
      const column = `metrics.${metric}`;
      if (!this.chosenColumns().includes(column)) {
        this._chosenColumns[this.columnsKey()] = [column, ...this.chosenColumns()];
      }
      this._sort = direction === 'min' ? column : `-${column}`; // best first
      this._offset = 0;
      this.emitState();
    }
    this.renderColumnMenu();
    await this.loadRuns();
  }

  /** Fetch the page of runs, and draw it (unless ``render`` is false: the caller will). */
  async loadRuns(render = true): Promise<void> {
    const params: Record<string, string> = {
      sort: this._sort,
      offset: String(this._offset),
      limit: String(PAGE_SIZE)
    };
    if (this._experiment.value) {
      params.experiment = this._experiment.value;
    }
    if (this._filterText.trim()) {
      params.filter = this._filterText;
    }
    const request = ++this._runRequests;
    try {
      const page = await requestAPI<IRunPage>(`runs?${this.query(params)}`);
      if (request !== this._runRequests) {
        return;
      }
      this._page = page;
      this.showFilterError('');
      if (render) {
        this.renderRuns();
      }
    } catch (error) {
      if (request !== this._runRequests) {
        return;
      }
      const status = (error as { response?: Response }).response?.status;
      if (status === 400 && this._filterText.trim()) {
        this.showFilterError((error as Error).message); // the filter's syntax: said beside it
        return;
      }
      this._error.hidden = false;
      this._error.textContent = `Could not list runs: ${(error as Error).message}`;
    }
  }

  private applyFilter(): void {
    if (this._filter.value !== this._filterText) {
      this._filterText = this._filter.value;
      this._offset = 0;
      this.emitState();
    }
    void this.loadRuns();
  }

  private showFilterError(message: string): void {
    this._filterError.textContent = message;
    this._filterError.hidden = !message;
    this._filter.setAttribute('aria-invalid', String(Boolean(message)));
    this._table.classList.toggle('mj-stale', Boolean(message));
  }

  /** Where the column choice is remembered: this store's directory and experiment. */
  private columnsKey(): string {
    return `${this._directory}\n${this._chosenExperiment}`;
  }

  /** Whether the training-data hash column is shown (it is, unless unticked in Columns). */
  private showsData(): boolean {
    return !this._hideData[this.columnsKey()];
  }

  /** The columns chosen for the experiment shown (the first three metrics by default). */
  private chosenColumns(): string[] {
    const chosen = this._chosenColumns[this.columnsKey()];
    if (chosen) {
      return chosen;
    }
    const onPage = new Set((this._page?.runs ?? []).flatMap(r => Object.keys(r.metrics)));
    const metrics = this._available.metrics.length ? this._available.metrics : [...onPage];
    return [...metrics]
      .sort()
      .slice(0, METRIC_COLUMNS)
      .map(k => `metrics.${k}`);
  }

  private toggleColumnMenu(): void {
    this._columnMenu.hidden = !this._columnMenu.hidden;
    this._columnsButton.setAttribute('aria-expanded', String(!this._columnMenu.hidden));
    if (!this._columnMenu.hidden) {
      this.renderColumnMenu();
    }
  }

  private renderColumnMenu(): void {
    const chosen = new Set(this.chosenColumns());
    const groups: HTMLElement[] = [];
    for (const [kind, title] of KINDS) {
      const keys = this._available[kind];
      const group = el('fieldset', 'mj-columns-group');
      group.dataset.kind = kind;
      group.append(el('legend', '', title));
      if (!keys.length) {
        group.append(el('span', 'mj-empty', 'none'));
      }
      for (const key of keys) {
        const column = `${kind}.${key}`;
        const label = el('label', 'mj-column-choice');
        const box = el('input');
        box.type = 'checkbox';
        box.dataset.column = column;
        box.checked = chosen.has(column);
        box.addEventListener('change', () => this.chooseColumn(column, box.checked));
        label.append(box, document.createTextNode(` ${key}`));
        group.append(label);
      }
      groups.push(group);
    }
    const data = el('fieldset', 'mj-columns-group');
    data.dataset.kind = 'data';
    data.append(el('legend', '', 'Data'));
    const label = el('label', 'mj-column-choice');
    const box = el('input');
    box.type = 'checkbox';
    box.dataset.option = 'train_hash';
    box.checked = this.showsData();
    box.addEventListener('change', () => {
      this._hideData[this.columnsKey()] = !box.checked;
      this.emitState();
      this.renderRuns();
    });
    label.append(box, document.createTextNode(' training data hash'));
    data.append(label);
    groups.push(data);
    groups.unshift(this.primaryChooser());
    this._columnMenu.replaceChildren(...groups);
  }

  /** The primary metric and its direction (per experiment: remembered in the store). */
  private primaryChooser(): HTMLElement {
    const group = el('fieldset', 'mj-primary-group');
    group.append(el('legend', '', 'Primary metric'));
    if (!this._experiment.value) {
      group.append(el('span', 'mj-empty', 'choose an experiment'));
      return group;
    }
    const metric = el('select', 'mj-primary-metric jp-mod-styled');
    metric.setAttribute('aria-label', 'Primary metric');
    const none = el('option', '', 'none');
    none.value = '';
    metric.append(none);
    for (const key of this._available.metrics) {
      const option = el('option', '', key);
      option.value = key;
      metric.append(option);
    }
    const primary = this._settings.primary_metric;
    metric.value = primary && this._available.metrics.includes(primary) ? primary : '';
    const direction = el('select', 'mj-primary-direction jp-mod-styled');
    direction.setAttribute('aria-label', 'Direction of the primary metric');
    for (const [value, text] of [
      ['max', 'higher is better'],
      ['min', 'lower is better']
    ]) {
      const option = el('option', '', text);
      option.value = value;
      direction.append(option);
    }
    const directionOf = (key: string): 'min' | 'max' =>
      key && this.lowerIsBetter(key) ? 'min' : 'max';
    direction.value = directionOf(metric.value);
    direction.disabled = !metric.value;
    metric.addEventListener('change', () => {
      direction.value = directionOf(metric.value);
      direction.disabled = !metric.value;
      void this.setPrimary(metric.value || null, direction.value as 'min' | 'max');
    });
    direction.addEventListener('change', () => {
      if (metric.value) {
        void this.setPrimary(metric.value, direction.value as 'min' | 'max');
      }
    });
    group.append(metric, direction);
    return group;
  }

  private chooseColumn(column: string, on: boolean): void {
    const current = this.chosenColumns().filter(c => c !== column);
    this._chosenColumns[this.columnsKey()] = on ? [...current, column] : current;
    this.emitState();
    this.renderRuns();
  }

  private page(step: number): void {
    const total = this._page?.total ?? 0;
    const offset = this._offset + step * PAGE_SIZE;
    if (offset >= 0 && offset < total) {
      this._offset = offset;
      void this.loadRuns();
    }
  }

  private sortBy(key: string): void {
    this._sort = this._sort === `-${key}` ? key : `-${key}`;
    this._offset = 0;
    this.emitState();
    void this.loadRuns();
  }

  private renderRuns(): void {
    const page = this._page;
    if (!page) {
      return;
    }
    const chosen = this.chosenColumns();
    const columns: [string, string][] = [
      ['status', 'status'],
      ['name', 'name'],
      ['started_at', 'started'],
      ['duration_s', 'duration'],
      ...chosen.map(c => {
        const key = c.slice(c.indexOf('.') + 1);
        if (c.startsWith('metrics.') && key === this.primaryMetric) {
          return [c, `${key} ${this.lowerIsBetter(key) ? '↓' : '↑'}`] as [string, string];
        }
        return [c, key] as [string, string];
      }),
      ...(this.showsData() ? [['data', 'data'] as [string, string]] : [])
    ];
    const head = el('tr');
    head.append(el('th', 'mj-select-col', ''));
    for (const [key, label] of columns) {
      const th = el('th');
      if (key === 'data') {
        th.textContent = label;
      } else {
        const button = el('button', 'mj-sort', label);
        button.dataset.sort = key;
        th.dataset.column = key;
        if (key === `metrics.${this.primaryMetric}`) {
          th.classList.add('mj-primary');
        }
        const arrow = this._sort === key ? ' ▲' : this._sort === `-${key}` ? ' ▼' : '';
        button.textContent = label + arrow;
        button.title = `Sort by ${label}`;
        button.addEventListener('click', () => this.sortBy(key));
        th.append(button);
      }
      head.append(th);
    }
    // the best value of the primary metric on the page, by its direction
    const best = new Map<string, number>();
    const primary = this.primaryMetric;
    if (primary && chosen.includes(`metrics.${primary}`)) {
      const values = page.runs
        .map(r => r.metrics[primary])
        .filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
      if (values.length) {
        best.set(
          `metrics.${primary}`,
          this.lowerIsBetter(primary) ? Math.min(...values) : Math.max(...values)
        );
      }
    }
    const body = el('tbody');
    for (const run of page.runs) {
      const tr = el('tr', `mj-run mj-status-${run.status}`);
      tr.dataset.runId = run.run_id;
      const pick = el('input', 'mj-select');
      pick.type = 'checkbox';
      pick.checked = this._selected.has(run.run_id);
      pick.title = `Select ${run.name ?? run.run_id.slice(0, 8)} to compare`;
      pick.addEventListener('change', () => {
        if (pick.checked) {
          this._selected.add(run.run_id);
        } else {
          this._selected.delete(run.run_id);
        }
        this.updateCompareButton();
      });
      const selectCell = el('td');
      selectCell.append(pick);
      const label = run.name ?? run.run_id.slice(0, 8);
      const name = el('button', 'mj-run-name', label);
      name.title = 'Open the run: parameters, metrics, data, code';
      name.addEventListener('click', () =>
        this._action.emit({ action: 'run', args: { directory: this._directory, id: run.run_id } })
      );
      const card = el('button', 'mj-card-button', '▤');
      card.title = `Model card of ${label}`;
      card.setAttribute('aria-label', card.title);
      card.addEventListener('click', () =>
        this._cardRequested.emit({ directory: this._directory, ref: run.run_id, label })
      );
      const nameCell = el('td', 'mj-name-cell');
      nameCell.append(name, card);
      tr.append(
        selectCell,
        el('td', 'mj-status', run.status),
        nameCell,
        el('td', '', run.started_at.slice(5, 16).replace('T', ' ')),
        el('td', 'mj-num', duration(run.duration_s))
      );
      for (const column of chosen) {
        const dot = column.indexOf('.');
        const kind = column.slice(0, dot) as 'params' | 'metrics' | 'tags';
        const value = (run[kind] ?? {})[column.slice(dot + 1)];
        const td = el('td', kind === 'tags' ? 'mj-tag' : 'mj-num');
        td.append(el('span', 'mj-value', readable(value)));
        td.dataset.column = column;
        if (typeof value === 'number') {
          td.title = String(value); // the exact value
          if (best.get(column) === value) {
            td.classList.add('mj-best');
            td.title += ' (best on this page)';
          }
        }
        tr.append(td);
      }
      if (this.showsData()) {
        const hash = el('td', 'mj-hash', run.train_hash ? run.train_hash.slice(11, 19) : '—');
        hash.title = run.train_hash ?? 'no training data recorded';
        tr.append(hash);
      }
      body.append(tr);
    }
    const thead = el('thead');
    thead.append(head);
    this._table.replaceChildren(thead, body);
    const last = Math.min(page.offset + page.runs.length, page.total);
    this._pageLabel.textContent = page.total
      ? `${page.offset + 1}–${last} of ${page.total}`
      : 'no runs yet';
    this._prev.disabled = page.offset === 0;
    this._next.disabled = last >= page.total;
    this.updateCompareButton();
    this._wideButton?.classList.toggle(
      'mj-mod-attention',
      this._tableBox.scrollWidth > this._tableBox.clientWidth + 1
    );
    performance.mark('mj-runs-rendered');
    void this.drawSparklines(page, chosen);
  }

  /** A small line of each metric's curve beside its last value, for runs that logged one. */
  private async drawSparklines(page: IRunPage, chosen: string[]): Promise<void> {
    const metrics = chosen.filter(c => c.startsWith('metrics.')).map(c => c.slice(8));
    const ids = page.runs.map(r => r.run_id);
    if (!metrics.length || !ids.length) {
      return;
    }
    const request = this._runRequests;
    try {
      const withCurves = new Set(
        (await requestAPI<{ keys: string[] }>(`curves/keys?${this.query({ ids: ids.join(',') })}`))
          .keys
      );
      for (const key of metrics.filter(k => withCurves.has(k))) {
        const answer = await requestAPI<{ runs: ICurve[] }>(
          `curves?${this.query({ ids: ids.join(','), key, points: '32' })}`
        );
        if (request !== this._runRequests || this._page !== page) {
          return; // the table changed meanwhile
        }
        for (const curve of answer.runs) {
          if (curve.steps.length < 2) {
            continue;
          }
          const cell = this._table.querySelector(
            `tr[data-run-id="${curve.run_id}"] td[data-column="metrics.${CSS.escape(key)}"]`
          );
          cell?.prepend(sparkline(curve.values));
        }
      }
    } catch {
      // sparklines are a nicety: the table stands without them
    }
  }

  private updateCompareButton(): void {
    const n = this._selected.size;
    this._compareButton.disabled = n < 2 || n > 10;
    this._compareButton.textContent = n ? `Compare ${n} runs` : 'Compare';
    this._diffButton.disabled = n !== 2;
    this._chartsButton.textContent = n ? `Charts of ${n}` : 'Charts';
    this._chartsButton.disabled = n > 20;
  }

  /** The ticked runs, the earlier started first (a diff reads from the older to the newer). */
  private selectedOldestFirst(): string[] {
    const started = new Map((this._page?.runs ?? []).map(r => [r.run_id, r.started_at]));
    return [...this._selected].sort((a, b) =>
      (started.get(a) ?? '').localeCompare(started.get(b) ?? '')
    );
  }

  private openCharts(): void {
    this._action.emit({
      action: 'charts',
      args: {
        directory: this._directory,
        ids: this._selected.size ? [...this._selected] : null,
        experiment: this._experiment.value,
        filter: this._filterText,
        sort: this._sort,
        columns: this.chosenColumns(),
        primary: this.primaryMetric,
        runs: (this._page?.runs ?? []).filter(r => this._selected.has(r.run_id))
      }
    });
  }

  /** Download every run of the filtered view as CSV, with the columns shown. */
  async exportCsv(): Promise<void> {
    const params: Record<string, string> = {
      sort: this._sort,
      columns: [...this.chosenColumns(), ...(this.showsData() ? ['train_hash'] : [])].join(',')
    };
    if (this._experiment.value) {
      params.experiment = this._experiment.value;
    }
    if (this._filterText.trim()) {
      params.filter = this._filterText;
    }
    const settings = ServerConnection.makeSettings();
    const url = URLExt.join(settings.baseUrl, 'mlops-jupyter/api/runs.csv') + `?${this.query(params)}`;
    this._exportButton.disabled = true;
    this._exportButton.textContent = 'Exporting…';
    try {
      const response = await ServerConnection.makeRequest(url, {}, settings);
      if (!response.ok) {
        let message = `${response.status} ${response.statusText}`;
        try {
          message = (await response.json()).error?.message ?? message;
        } catch {
          // not JSON: the status says it
        }
        throw new Error(message);
      }
      const blob = await response.blob();
      const link = el('a');
      link.href = URL.createObjectURL(blob);
      const name = /filename="([^"]+)"/.exec(response.headers.get('Content-Disposition') ?? '');
      link.download = name ? name[1] : 'runs.csv';
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
      this._error.hidden = true;
    } catch (error) {
      this._error.hidden = false;
      this._error.textContent = `Could not export: ${(error as Error).message}`;
    } finally {
      this._exportButton.disabled = false;
      this._exportButton.textContent = 'Export CSV';
    }
  }

  /**
   * Refresh whenever the panel is shown (the store may have been created meanwhile), unless
   * it has just listed what it shows (a page load lists before the layout shows the panel).
   */
  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    const key = JSON.stringify([this._directory, this.state]);
    if (this._listed?.key === key && performance.now() - this._listed.at < FRESH_MS) {
      return;
    }
    void this.refresh();
  }

  private _directory = '';
  private _sort = '-started_at';
  private _filterText = '';
  private _chosenColumns: Record<string, string[]> = {};
  private _hideData: Record<string, boolean> = {};
  private _available: IRunColumns = { params: [], metrics: [], tags: [] };
  private _runRequests = 0;
  private _columnsButton: HTMLButtonElement;
  private _columnMenu: HTMLElement;
  private _filter: HTMLInputElement;
  private _filterError: HTMLElement;
  private _offset = 0;
  private _page: IRunPage | null = null;
  private _selected = new Set<string>();
  private _experiment: HTMLSelectElement;
  private _table: HTMLTableElement;
  private _prev: HTMLButtonElement;
  private _next: HTMLButtonElement;
  private _pageLabel: HTMLElement;
  private _compareButton: HTMLButtonElement;
  private _chartsButton: HTMLButtonElement;
  private _diffButton: HTMLButtonElement;
  private _exportButton: HTMLButtonElement;
  private _wideButton: HTMLButtonElement | null = null;
  private _tableBox = el('div', 'mj-table-box');
  private _settings: IMetricSettings = NO_SETTINGS;
  private _action = new Signal<this, IPanelAction>(this);
  readonly placement: 'left' | 'main';
  private _runsBox: HTMLElement;
  private _storeBox: HTMLElement;
  private _models = new ModelsView();
  private _tabs: Partial<Record<'runs' | 'models', HTMLButtonElement>> = {};
  private _view: 'runs' | 'models' = 'runs';
  private _chosenExperiment = '';
  private _stateChanged = new Signal<this, IPanelState>(this);
  private _compareRequested = new Signal<this, { directory: string; ids: string[] }>(this);
  private _cardRequested = new Signal<this, ICardRequest>(this);
  private _requests = 0;
  private _inFlight: { key: string; done: Promise<void> } | null = null;
  private _listed: { key: string; at: number } | null = null;
  private _ready = false;
  private _early: { query: string; view: Promise<IPanelView> } | null = null;
  private _resolveReady: () => void = () => undefined;
  private _whenReady = new Promise<void>(resolve => (this._resolveReady = resolve));
  private _refreshButton: HTMLButtonElement;
  private _path: HTMLElement;
  private _status: HTMLElement;
  private _error: HTMLElement;
}
