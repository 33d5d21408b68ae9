import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { duration, el, IRunPage, readable, timeNode } from './api';
import { CurvesChart, ICurve } from './charts';
import { copyLink } from './links';
import { requestAPI } from './request';

/** The free-text note of a run is its `note` tag. */
export const NOTE_TAG = 'note';

/** What `GET runs/<id>?history=0` answers (the parts the run view shows). */
export interface IRunRecord {
  run_id: string;
  experiment: string;
  name: string | null;
  status: string;
  started_at: string;
  ended_at: string | null;
  duration_s: number | null;
  params: Record<string, unknown>;
  param_sources?: Record<string, string>;
  metrics: Record<string, number | string>;
  /** Points per metric (with `history=0`); else the whole metric_history. */
  curves?: Record<string, number>;
  metric_history?: Record<string, unknown[]>;
  tags: Record<string, string>;
  /** The edits of its tags after it finished, oldest first (`at` in ISO 8601, UTC). */
  tag_history?: ITagEdit[];
  datasets: IDataset[];
  artifacts: { name: string; kind: string; blob: string; size: number; media_type: string | null }[];
  explanation: { status: string; reason: string | null; feature_names: string[] | null } | null;
  environment: { python: string; platform: string; packages: Record<string, string> } | null;
  code: string | null;
  execution_count: number | null;
  notebook_path: string | null;
  user: string | null;
  host: string | null;
  git_commit: string | null;
  git_dirty: boolean | null;
  history: { execution_count: number | null; source: string | null }[];
  error: string | null;
  capture_errors: { what?: string; error?: string; message?: string }[];
}

interface ITagEdit {
  key: string;
  /** null: the tag was removed. */
  value: string | null;
  /** null: the tag was new. */
  previous: string | null;
  user: string | null;
  at: string;
}

/** A tag's value as a short quoted text (the whole value in the title). */
function shortValue(value: string): string {
  return value.length > 60 ? `“${value.slice(0, 57)}…”` : `“${value}”`;
}

/** The history of a run's tags, newest first, folded (who changed what, and when). */
function tagHistory(edits: ITagEdit[]): HTMLElement {
  const box = el('details', 'mj-tag-history');
  box.append(el('summary', '', edits.length === 1 ? '1 tag edit' : `${edits.length} tag edits`));
  const list = el('ol', 'mj-tag-edits');
  for (const edit of [...edits].reverse()) {
    const item = el('li', 'mj-tag-edit');
    item.dataset.tag = edit.key;
    const what =
      edit.value === null
        ? `${edit.key} removed`
        : `${edit.key} = ${shortValue(edit.value)}`;
    const text = el('span', 'mj-tag-edit-text', what);
    if (edit.previous !== null) {
      text.append(el('span', 'mj-tag-edit-was', ` (was ${shortValue(edit.previous)})`));
    }
    text.title = [
      edit.value === null ? null : `now: ${edit.value}`,
      edit.previous === null ? 'a new tag' : `before: ${edit.previous}`
    ]
      .filter(Boolean)
      .join('\n');
    item.append(
      text,
      el('span', 'mj-tag-edit-by', ` by ${edit.user ?? 'unknown'} · `),
      timeNode(Date.parse(edit.at) / 1000)
    );
    list.append(item);
  }
  box.append(list);
  return box;
}

interface IColumnProfile {
  dtype?: string;
  nulls?: number;
  min?: unknown;
  max?: unknown;
  mean?: unknown;
  unique?: number;
  top?: [string, number][];
  note?: string;
}

interface IDataset {
  hash: string;
  role: string;
  variable: string;
  kind: string;
  shape: number[] | null;
  profile: { rows?: number; columns?: Record<string, IColumnProfile>; note?: string } | null;
  source_path: string | null;
}

/** A size in bytes as a person reads it. */
export function bytes(size: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = size;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${unit ? readable(value) : value} ${units[unit]}`;
}

function table(className: string, head: string[], rows: (string | Node)[][]): HTMLTableElement {
  const t = el('table', `mj-kv ${className}`);
  const tr = el('tr');
  for (const h of head) {
    tr.append(el('th', '', h));
  }
  const thead = el('thead');
  thead.append(tr);
  const body = el('tbody');
  for (const row of rows) {
    const r = el('tr');
    for (const cell of row) {
      const td = el('td');
      td.append(cell);
      r.append(td);
    }
    body.append(r);
  }
  t.append(thead, body);
  return t;
}

function section(title: string, className: string, ...parts: Node[]): HTMLElement {
  const box = el('section', `mj-run-section ${className}`);
  box.append(el('h3', '', title), ...parts);
  return box;
}

/**
 * One run, whole: parameters, metrics with their curves, tags (editable) and a note, the data
 * with hashes and profiles, the model and other artifacts, environment and git, and the cell
 * source with the cells run before it. Every string is set as text.
 */
export class RunView extends Widget {
  constructor(directory: string, runId: string) {
    super();
    this.directory = directory;
    this.runId = runId;
    this.id = RunView.idFor(runId);
    this.addClass('mj-run-view');
    this.title.label = `Run ${runId.slice(0, 8)}`;
    this.title.closable = true;
    this._body = el('div', 'mj-run-body', 'Loading…');
    this.node.append(this._body);
    void this.load();
  }

  static idFor(runId: string): string {
    return `mlops-jupyter-run-${runId.replace(/[^0-9a-fA-F]/g, '').slice(0, 32)}`;
  }

  readonly directory: string;
  readonly runId: string;

  /** Emitted with `{action, ...}` for the shell to act on (open a card, a diff, a link). */
  get actionRequested(): ISignal<this, { action: string; args: Record<string, unknown> }> {
    return this._action;
  }

  private query(extra: Record<string, string> = {}): string {
    return new URLSearchParams({ path: this.directory, ...extra }).toString();
  }

  async load(): Promise<void> {
    try {
      this._run = await requestAPI<IRunRecord>(
        `runs/${encodeURIComponent(this.runId)}?${this.query({ history: '0' })}`
      );
    } catch (error) {
      this._body.textContent = `Could not read the run: ${(error as Error).message}`;
      this._body.classList.add('mj-error');
      return;
    }
    this.title.label = `Run ${this._run.name ?? this._run.run_id.slice(0, 8)}`;
    this.render();
  }

  /** The metrics that have a curve (more than one logged point). */
  private curveKeys(): string[] {
    const run = this._run;
    if (!run) {
      return [];
    }
    if (run.curves) {
      return Object.keys(run.curves).filter(k => (run.curves?.[k] ?? 0) > 1);
    }
    return Object.entries(run.metric_history ?? {})
      .filter(([, points]) => points.length > 1)
      .map(([k]) => k);
  }

  render(): void {
    const run = this._run;
    if (!run) {
      return;
    }
    const header = el('div', 'mj-run-header');
    header.append(el('h2', 'mj-run-title', run.name ?? run.run_id.slice(0, 8)));
    const facts = el('p', 'mj-run-facts');
    const started = run.started_at.slice(0, 19).replace('T', ' ');
    facts.append(
      el('span', `mj-status mj-status-${run.status}`, run.status),
      document.createTextNode(
        ` · ${run.experiment} · started ${started} UTC · ${duration(run.duration_s)}` +
          (run.user ? ` · ${run.user}${run.host ? `@${run.host}` : ''}` : '') +
          (run.notebook_path ? ` · ${run.notebook_path}` : '')
      )
    );
    const id = el('code', 'mj-run-id', run.run_id);
    const actions = el('div', 'mj-run-actions');
    const card = el('button', 'mj-run-card jp-Button', 'Model card');
    card.addEventListener('click', () =>
      this._action.emit({ action: 'card', args: { ref: run.run_id, label: run.name ?? run.run_id } })
    );
    const link = el('button', 'mj-copy-link jp-Button', 'Copy link');
    link.addEventListener('click', () =>
      copyLink({ kind: 'run', directory: this.directory, ids: [run.run_id] }, link)
    );
    this._diffWith = el('select', 'mj-diff-with jp-mod-styled');
    this._diffWith.title = 'Another run of this experiment to diff the code with';
    const diff = el('button', 'mj-diff-button jp-Button', 'Diff code');
    diff.addEventListener('click', () => {
      if (this._diffWith.value) {
        this._action.emit({ action: 'diff', args: { a: this._diffWith.value, b: run.run_id } });
      }
    });
    actions.append(card, link, this._diffWith, diff);
    header.append(facts, id, actions);
    void this.fillDiffChoices();

    const parts: HTMLElement[] = [header];
    if (run.error) {
      parts.push(section('Error', 'mj-run-error', el('pre', 'mj-error', run.error)));
    }
    parts.push(this.tagsSection(), this.noteSection());
    parts.push(
      section(
        'Parameters',
        'mj-run-params',
        Object.keys(run.params).length
          ? table(
              'mj-params',
              ['parameter', 'value', 'from'],
              Object.entries(run.params).map(([k, v]) => [k, readable(v), run.param_sources?.[k] ?? ''])
            )
          : el('p', 'mj-empty', 'No parameters recorded.')
      )
    );
    parts.push(this.metricsSection());
    parts.push(this.dataSection());
    parts.push(this.artifactsSection());
    parts.push(this.environmentSection());
    parts.push(this.codeSection());
    if (run.capture_errors?.length) {
      parts.push(
        section(
          'What could not be captured',
          'mj-run-capture-errors',
          table(
            'mj-capture-errors',
            ['what', 'error'],
            run.capture_errors.map(e => [String(e.what ?? ''), String(e.error ?? e.message ?? '')])
          )
        )
      );
    }
    this._body.replaceChildren(...parts);
    this._body.classList.remove('mj-error');
    const keys = this.curveKeys();
    if (keys.length) {
      void this.drawCurve(keys[0]);
    }
  }

  private async fillDiffChoices(): Promise<void> {
    const run = this._run;
    if (!run) {
      return;
    }
    try {
      const page = await requestAPI<IRunPage>(
        `runs?${this.query({ experiment: run.experiment, sort: '-started_at', limit: '50' })}`
      );
      const options = page.runs
        .filter(r => r.run_id !== run.run_id)
        .map(r => {
          const o = el('option', '', `${r.name ?? r.run_id.slice(0, 8)} (${r.started_at.slice(5, 16).replace('T', ' ')})`);
          o.value = r.run_id;
          return o;
        });
      this._diffWith.replaceChildren(...options);
      const earlier = page.runs.findIndex(r => r.run_id === run.run_id);
      const previous = page.runs[earlier + 1];
      if (previous) {
        this._diffWith.value = previous.run_id; // the run before this one, by default
      }
    } catch {
      this._diffWith.replaceChildren();
    }
  }

  private tagsSection(): HTMLElement {
    const run = this._run as IRunRecord;
    const list = el('ul', 'mj-tags');
    for (const [key, value] of Object.entries(run.tags)) {
      if (key === NOTE_TAG) {
        continue;
      }
      const item = el('li', 'mj-tag-chip');
      item.dataset.tag = key;
      item.append(el('span', 'mj-tag-text', `${key} = ${value}`));
      const remove = el('button', 'mj-tag-remove', '×');
      remove.title = `Remove the tag ${key}`;
      remove.setAttribute('aria-label', `Remove the tag ${key}`);
      remove.addEventListener('click', () => void this.editTags({}, [key]));
      item.append(remove);
      list.append(item);
    }
    if (!list.children.length) {
      list.append(el('li', 'mj-empty', 'No tags yet.'));
    }
    const form = el('form', 'mj-tag-form');
    const key = el('input', 'mj-tag-key jp-mod-styled');
    key.placeholder = 'key';
    key.setAttribute('aria-label', 'Tag key');
    const value = el('input', 'mj-tag-value jp-mod-styled');
    value.placeholder = 'value';
    value.setAttribute('aria-label', 'Tag value');
    const add = el('button', 'mj-tag-add jp-Button', 'Add tag');
    add.type = 'submit';
    form.append(key, value, add);
    form.addEventListener('submit', event => {
      event.preventDefault();
      if (key.value.trim()) {
        void this.editTags({ [key.value.trim()]: value.value }, []);
      }
    });
    this._tagError = el('div', 'mj-tag-error mj-error');
    this._tagError.hidden = true;
    const parts: Node[] = [list, form, this._tagError];
    if (run.tag_history?.length) {
      parts.push(tagHistory(run.tag_history));
    }
    return section('Tags', 'mj-run-tags', ...parts);
  }

  private noteSection(): HTMLElement {
    const run = this._run as IRunRecord;
    const note = el('textarea', 'mj-note jp-mod-styled');
    note.value = run.tags[NOTE_TAG] ?? '';
    note.rows = 3;
    note.placeholder = 'What was this run for? What did it show?';
    note.setAttribute('aria-label', 'Note');
    const save = el('button', 'mj-note-save jp-Button', 'Save note');
    const status = el('span', 'mj-note-status');
    save.addEventListener('click', async () => {
      status.textContent = 'saving…';
      const ok = note.value.trim()
        ? await this.editTags({ [NOTE_TAG]: note.value }, [])
        : await this.editTags({}, [NOTE_TAG]);
      status.textContent = ok ? 'saved' : 'not saved';
    });
    const row = el('div', 'mj-note-actions');
    row.append(save, status);
    return section('Note', 'mj-run-note', note, row);
  }

  /** Set and delete tags on the server, then show what it answered (the tags and their
   * history; the note's text box is left as it is). */
  private async editTags(set: Record<string, string>, remove: string[]): Promise<boolean> {
    const run = this._run;
    if (!run) {
      return false;
    }
    try {
      const answer = await requestAPI<{ tags: Record<string, string>; tag_history: ITagEdit[] }>(
        `runs/${encodeURIComponent(run.run_id)}/tags?${this.query()}`,
        { method: 'POST', body: JSON.stringify({ set, delete: remove }) }
      );
      run.tags = answer.tags;
      run.tag_history = answer.tag_history;
      this._body.querySelector('.mj-run-tags')?.replaceWith(this.tagsSection());
      this._tagsChanged.emit(run.run_id);
      return true;
    } catch (error) {
      if (this._tagError) {
        this._tagError.hidden = false;
        this._tagError.textContent = `Could not save: ${(error as Error).message}`;
      }
      return false;
    }
  }

  /** Emitted with the run id after its tags changed (the runs table refreshes). */
  get tagsChanged(): ISignal<this, string> {
    return this._tagsChanged;
  }

  private metricsSection(): HTMLElement {
    const run = this._run as IRunRecord;
    const curves = new Set(this.curveKeys());
    const rows = Object.entries(run.metrics).map(([k, v]) => {
      const value = el('span', 'mj-num', readable(v));
      value.title = String(v);
      let curve: Node = document.createTextNode('');
      if (curves.has(k)) {
        const button = el('button', 'mj-curve-button', `curve (${run.curves?.[k] ?? ''} points)`);
        button.dataset.metric = k;
        button.addEventListener('click', () => void this.drawCurve(k));
        curve = button;
      }
      return [k, value, curve];
    });
    this._curveBox = el('div', 'mj-run-curve');
    return section(
      'Metrics',
      'mj-run-metrics',
      rows.length
        ? table('mj-metrics', ['metric', 'last value', ''], rows)
        : el('p', 'mj-empty', 'No metrics recorded.'),
      this._curveBox
    );
  }

  private async drawCurve(key: string): Promise<void> {
    const run = this._run as IRunRecord;
    try {
      const answer = await requestAPI<{ runs: ICurve[] }>(
        `curves?${this.query({ ids: run.run_id, key })}`
      );
      const chart = new CurvesChart(key, answer.runs, {
        smoothing: 0,
        log: false,
        width: Math.max(320, this.node.clientWidth - 48),
        height: 220
      });
      const title = el('h4', '', key);
      this._curveBox.replaceChildren(title, chart.node);
      this._curveChart?.destroy();
      this._curveChart = chart;
    } catch (error) {
      this._curveBox.textContent = `Could not read the curve: ${(error as Error).message}`;
    }
  }

  private dataSection(): HTMLElement {
    const run = this._run as IRunRecord;
    if (!run.datasets.length) {
      return section('Data', 'mj-run-data', el('p', 'mj-empty', 'No data recorded.'));
    }
    const boxes: HTMLElement[] = [];
    for (const d of run.datasets) {
      const box = el('div', 'mj-dataset');
      box.dataset.role = d.role;
      const shape = d.shape ? d.shape.join(' × ') : '';
      box.append(
        el('h4', '', `${d.role}: ${d.variable}`),
        el('p', '', [d.kind, shape, d.source_path ? `from ${d.source_path}` : ''].filter(Boolean).join(' · ')),
        el('code', 'mj-hash-full', d.hash)
      );
      const columns = Object.entries(d.profile?.columns ?? {});
      if (columns.length) {
        const details = el('details', 'mj-profile');
        details.append(el('summary', '', `Profile of ${columns.length} columns`));
        details.append(
          table(
            'mj-profile-table',
            ['column', 'type', 'nulls', 'min', 'mean', 'max', 'top values'],
            columns.map(([name, p]) => [
              name,
              p.dtype ?? '',
              p.nulls === undefined ? '' : String(p.nulls),
              p.min === undefined ? '' : readable(p.min),
              p.mean === undefined ? '' : readable(p.mean),
              p.max === undefined ? '' : readable(p.max),
              p.note ?? (p.top ?? []).slice(0, 3).map(([k, n]) => `${k} (${n})`).join(', ')
            ])
          )
        );
        box.append(details);
      } else if (d.profile?.note) {
        box.append(el('p', 'mj-empty', d.profile.note));
      }
      boxes.push(box);
    }
    return section('Data', 'mj-run-data', ...boxes);
  }

  private artifactsSection(): HTMLElement {
    const run = this._run as IRunRecord;
    const parts: Node[] = [];
    if (run.artifacts.length) {
      parts.push(
        table(
          'mj-artifacts',
          ['name', 'kind', 'size', 'type', 'digest'],
          run.artifacts.map(a => [
            a.name,
            a.kind,
            bytes(a.size),
            a.media_type ?? '',
            el('code', 'mj-hash', a.blob.slice(0, 19))
          ])
        )
      );
    } else {
      parts.push(el('p', 'mj-empty', 'No model or other artifacts stored.'));
    }
    const e = run.explanation;
    if (e) {
      const text =
        e.status === 'ok'
          ? `SHAP explanation over ${e.feature_names?.length ?? 0} features`
          : `SHAP explanation: ${e.status}${e.reason ? ` (${e.reason})` : ''}`;
      parts.push(el('p', 'mj-explanation', text));
    }
    return section('Model and artifacts', 'mj-run-artifacts', ...parts);
  }

  private environmentSection(): HTMLElement {
    const run = this._run as IRunRecord;
    const parts: Node[] = [];
    const env = run.environment;
    if (env) {
      parts.push(el('p', '', `Python ${env.python} on ${env.platform}`));
      const packages = Object.entries(env.packages).sort(([a], [b]) => a.localeCompare(b));
      const details = el('details', 'mj-packages');
      details.append(el('summary', '', `${packages.length} packages`));
      details.append(table('mj-package-table', ['package', 'version'], packages));
      parts.push(details);
    } else {
      parts.push(el('p', 'mj-empty', 'No environment recorded.'));
    }
    parts.push(
      el(
        'p',
        'mj-git',
        run.git_commit
          ? `git ${run.git_commit.slice(0, 12)}${run.git_dirty ? ' with uncommitted changes' : ''}`
          : 'not in a git repository'
      )
    );
    return section('Environment', 'mj-run-environment', ...parts);
  }

  private codeSection(): HTMLElement {
    const run = this._run as IRunRecord;
    const label = run.execution_count === null ? 'The cell' : `The cell (In [${run.execution_count}])`;
    const parts: Node[] = [el('h4', '', label), el('pre', 'mj-code', run.code ?? '(not recorded)')];
    const before = run.history ?? [];
    if (before.length) {
      const details = el('details', 'mj-history');
      details.append(el('summary', '', `${before.length} cells run before it`));
      for (const cell of before) {
        const head = cell.execution_count === null ? 'In [ ]' : `In [${cell.execution_count}]`;
        details.append(el('div', 'mj-history-label', head), el('pre', 'mj-code', cell.source ?? ''));
      }
      parts.push(details);
    }
    return section('Code', 'mj-run-code', ...parts);
  }

  dispose(): void {
    this._curveChart?.destroy();
    super.dispose();
  }

  private _body: HTMLElement;
  private _run: IRunRecord | null = null;
  private _diffWith: HTMLSelectElement = el('select');
  private _tagError: HTMLElement | null = null;
  private _curveBox: HTMLElement = el('div');
  private _curveChart: CurvesChart | null = null;
  private _action = new Signal<this, { action: string; args: Record<string, unknown> }>(this);
  private _tagsChanged = new Signal<this, string>(this);
}

/** One side of a code diff, as `GET diff` answers it. */
interface IDiffLines {
  lines: { op: ' ' | '+' | '-' | '@@'; a: number | null; b: number | null; text: string }[];
  added: number;
  removed: number;
}

interface IDiff {
  a: { run_id: string; name: string | null; started_at: string };
  b: { run_id: string; name: string | null; started_at: string };
  cell: IDiffLines;
  history: IDiffLines;
  same_cell: boolean;
  same_history: boolean;
}

/** The code of two runs side by side: the cell, and the cells run before it. */
export class DiffView extends Widget {
  constructor(directory: string, a: string, b: string) {
    super();
    this.directory = directory;
    this.a = a;
    this.b = b;
    this.id = DiffView.idFor(a, b);
    this.addClass('mj-diff-view');
    this.title.label = `Diff ${a.slice(0, 8)} → ${b.slice(0, 8)}`;
    this.title.closable = true;
    this._body = el('div', 'mj-diff-body', 'Loading…');
    this.node.append(this._body);
    void this.load();
  }

  static idFor(a: string, b: string): string {
    return `mlops-jupyter-diff-${a.slice(0, 8)}-${b.slice(0, 8)}`.replace(/[^A-Za-z0-9_-]/g, '');
  }

  readonly directory: string;
  readonly a: string;
  readonly b: string;

  async load(): Promise<void> {
    try {
      const query = new URLSearchParams({ path: this.directory, a: this.a, b: this.b });
      const diff = await requestAPI<IDiff>(`diff?${query.toString()}`);
      const name = (r: IDiff['a']) => r.name ?? r.run_id.slice(0, 8);
      this.title.label = `Diff ${name(diff.a)} → ${name(diff.b)}`;
      this._body.replaceChildren(
        el('p', 'mj-diff-runs', `${name(diff.a)} (−) → ${name(diff.b)} (+)`),
        this.block('The cell', diff.cell, diff.same_cell),
        this.block('Cells run before it', diff.history, diff.same_history)
      );
    } catch (error) {
      this._body.textContent = `Could not diff: ${(error as Error).message}`;
      this._body.classList.add('mj-error');
    }
  }

  private block(title: string, diff: IDiffLines, same: boolean): HTMLElement {
    const box = el('section', 'mj-diff-section');
    const counts = same ? 'identical' : `+${diff.added} −${diff.removed}`;
    box.append(el('h3', '', `${title}: ${counts}`));
    const pre = el('div', 'mj-code-diff');
    pre.setAttribute('role', 'table');
    for (const line of diff.lines) {
      const kind =
        line.op === '+' ? 'mj-code-add' : line.op === '-' ? 'mj-code-del' : line.op === '@@' ? 'mj-code-hunk' : 'mj-code-same';
      const row = el('div', `mj-code-line ${kind}`);
      row.setAttribute('role', 'row');
      row.append(
        el('span', 'mj-code-no', line.a === null ? '' : String(line.a)),
        el('span', 'mj-code-no', line.b === null ? '' : String(line.b)),
        el('span', 'mj-code-op', line.op === '+' || line.op === '-' ? line.op : ''),
        el('span', 'mj-code-text', line.text)
      );
      pre.append(row);
    }
    box.append(pre);
    return box;
  }

  private _body: HTMLElement;
}

