import {
  el,
  IDriftFeature,
  IMonitoredBatch,
  IMonitoredVersion,
  IMonitoring,
  IPerformance,
  IPredictionDrift,
  isoTime,
  timeNode
} from './api';

/** A status is never colour alone: each has a mark too (ok has none: the quiet default). */
const MARKS: Record<string, string> = { ok: '', warn: '!', drift: '▲' };
const SCHEMA_MARKS: Record<string, string> = { missing: '∅', new: '+', type: '≠' };

/** A number as the strip shows it: three decimals, tiny p-values in exponent form. */
export function figure(value: number | null | undefined, kind: 'psi' | 'p' = 'psi'): string {
  if (value === null || value === undefined || !Number.isFinite(value)) {
    return '—';
  }
  if (kind === 'p' && value !== 0 && Math.abs(value) < 0.001) {
    return value.toExponential(1);
  }
  return value.toFixed(3);
}

/** A share as a whole percentage. */
function percent(share: number): string {
  return `${Math.round(share * 100)}%`;
}

/** What one feature's cell says: its status, schema change and PSI. */
function featureSummary(feature: IDriftFeature): string {
  if (feature.schema) {
    return `${feature.status} (${feature.schema}: ${feature.note ?? 'schema change'})`;
  }
  const psi = feature.psi === null ? 'no PSI' : `PSI ${figure(feature.psi)}`;
  return `${feature.status}, ${psi}`;
}

/** The drifting features of a batch among those the training data had. */
function drifting(batch: IMonitoredBatch): { drift: number; compared: number } {
  const compared = batch.features.filter(f => f.schema !== 'new');
  return { drift: compared.filter(f => f.status === 'drift').length, compared: compared.length };
}

/** One estimate: "accuracy 0.712 [0.683, 0.740] (training 0.700)". */
function metricText(name: string, metric: IPerformance['metrics'][string]): string {
  const interval = metric.interval?.length === 2 ? metric.interval : null;
  const around = interval ? ` [${figure(interval[0])}, ${figure(interval[1])}]` : '';
  const training =
    metric.reference !== undefined && metric.reference !== null
      ? ` (training ${figure(metric.reference)})`
      : '';
  return `${name} ${figure(metric.value)}${around}${training}`;
}

function performanceText(performance: IPerformance): string {
  const metrics = Object.entries(performance.metrics ?? {}).map(([name, metric]) =>
    metricText(name, metric)
  );
  const status = performance.status ? `: ${performance.status}` : '';
  return `${metrics.join('; ') || 'no metric'} on ${performance.n} labelled rows${status}`;
}

function predictionText(prediction: IPredictionDrift): string {
  const test = prediction.test ? `, ${prediction.test} p ${figure(prediction.p_value, 'p')}` : '';
  return `${prediction.feature}: ${prediction.status}, PSI ${figure(prediction.psi)}${test}`;
}

/**
 * The drift of a model's monitored versions over time: per version (production first) a heat
 * strip with one row per feature (training order) and one column per batch (oldest to newest),
 * the share of drifting features per batch and the latest decision. A batch's column button
 * (or any of its cells) opens its detail: time, batch id, rows, decision, who recorded it, the
 * per-feature table, prediction drift and performance (also from labels recorded later).
 *
 * Every string from the server is set with textContent, never parsed as HTML.
 */
export class DriftStrip {
  constructor(model: string, monitoring: IMonitoring, selected: Map<string, string>) {
    this._model = model;
    this._selected = selected;
    this.node = el('div', 'mj-monitoring');
    this.node.dataset.model = model;
    if (!monitoring.versions.length) {
      const hint = el('p', 'mj-drift-empty', 'No monitored batches yet: ');
      hint.append(el('code', '', `%monitor ${model} --data X`), ' in a notebook records one.');
      this.node.append(hint);
      return;
    }
    for (const version of monitoring.versions) {
      this.node.append(this.versionSection(version));
    }
  }

  readonly node: HTMLElement;

  private versionSection(version: IMonitoredVersion): HTMLElement {
    const ref = `${this._model}:${version.version}`;
    const section = el('section', `mj-drift mj-stage-${version.stage}`);
    section.dataset.version = String(version.version);
    section.setAttribute('aria-label', `Drift of ${ref} (${version.stage}) over its batches`);
    const latest = el(
      'span',
      `mj-drift-latest mj-decision-${version.latest.decision}`,
      `latest: ${version.latest.decision}`
    );
    latest.title = `latest batch ${isoTime(version.latest.created_at) ?? ''}`.trim();
    const count =
      version.shown < version.total
        ? `latest ${version.shown} of ${version.total} batches`
        : `${version.total} batch${version.total === 1 ? '' : 'es'}`;
    const head = el('div', 'mj-drift-head');
    head.append(
      el('span', 'mj-drift-ref', `v${version.version}`),
      el('span', 'mj-stage', version.stage),
      latest,
      el('span', 'mj-drift-count', count)
    );
    const detail = el('div', 'mj-batch-detail');
    detail.setAttribute('role', 'region');
    detail.setAttribute('aria-live', 'polite');
    detail.hidden = true;
    const buttons: HTMLButtonElement[] = [];
    const first = version.total - version.shown + 1; // the ordinal of the oldest batch shown
    const show = (index: number, focus = false): void => {
      const batch = version.batches[index];
      buttons.forEach((b, i) => b.setAttribute('aria-pressed', String(i === index)));
      section
        .querySelectorAll('.mj-cell.mj-selected')
        .forEach(cell => cell.classList.remove('mj-selected'));
      section
        .querySelectorAll(`.mj-cell[data-index="${index}"]`)
        .forEach(cell => cell.classList.add('mj-selected'));
      this._selected.set(ref, batch.id);
      this.renderDetail(detail, version, batch, first + index, () => {
        detail.hidden = true;
        this._selected.delete(ref);
        buttons.forEach(b => b.setAttribute('aria-pressed', 'false'));
        section
          .querySelectorAll('.mj-cell.mj-selected')
          .forEach(cell => cell.classList.remove('mj-selected'));
        buttons[index].focus();
      });
      detail.hidden = false;
      if (focus) {
        buttons[index].focus();
      }
    };

    const table = el('table', 'mj-strip');
    table.setAttribute('aria-label', `Feature drift of ${ref}, one column per batch`);
    const headRow = el('tr');
    const corner = el('th', 'mj-strip-corner', 'feature');
    corner.scope = 'col';
    headRow.append(corner);
    version.batches.forEach((batch, index) => {
      const ordinal = first + index;
      const { drift, compared } = drifting(batch);
      const when = isoTime(batch.created_at) ?? 'unknown time';
      const button = el('button', `mj-batch-button mj-decision-${batch.decision}`, String(ordinal));
      button.dataset.batch = batch.id;
      button.dataset.index = String(index);
      button.setAttribute('aria-pressed', 'false');
      button.setAttribute(
        'aria-label',
        `Batch ${ordinal} of ${version.total}, ${when}: ${batch.decision}, ` +
          `${drift} of ${compared} features drifting. Show its detail`
      );
      button.title = `${batch.batch_id}\n${when}: ${batch.decision}`;
      button.addEventListener('click', () => show(index));
      button.addEventListener('keydown', event => {
        const step = event.key === 'ArrowRight' ? 1 : event.key === 'ArrowLeft' ? -1 : 0;
        const next = buttons[index + step];
        if (step && next) {
          event.preventDefault();
          next.focus();
        }
      });
      buttons.push(button);
      const th = el('th', 'mj-batch-col');
      th.scope = 'col';
      th.append(button);
      headRow.append(th);
    });
    const thead = el('thead');
    thead.append(headRow);

    const tbody = el('tbody');
    for (const name of version.features) {
      const row = el('tr', 'mj-strip-row');
      row.dataset.feature = name;
      const label = el('th', 'mj-strip-feature', name);
      label.scope = 'row';
      label.title = name;
      row.append(label);
      version.batches.forEach((batch, index) => {
        const feature = batch.features.find(f => f.feature === name);
        const status = feature ? feature.status : 'none';
        const cell = el('td', `mj-cell mj-cell-${status}`);
        cell.dataset.batch = batch.id;
        cell.dataset.index = String(index);
        cell.dataset.status = status;
        const text = feature ? featureSummary(feature) : 'not in this batch';
        cell.title = `${name} in batch ${first + index}: ${text}`;
        const mark = el(
          'span',
          'mj-cell-mark',
          feature ? ((feature.schema && SCHEMA_MARKS[feature.schema]) ?? MARKS[status] ?? '') : ''
        );
        mark.setAttribute('role', 'img');
        mark.setAttribute('aria-label', `${name}, batch ${first + index}: ${text}`);
        cell.append(mark);
        cell.addEventListener('click', () => show(index, true));
        row.append(cell);
      });
      tbody.append(row);
    }

    const shareRow = el('tr', 'mj-share-row');
    const shareLabel = el('th', 'mj-strip-feature', 'drifting');
    shareLabel.scope = 'row';
    shareLabel.title = 'share of the training features that drift';
    shareRow.append(shareLabel);
    version.batches.forEach((batch, index) => {
      const { drift, compared } = drifting(batch);
      const cell = el('td', 'mj-share');
      cell.dataset.batch = batch.id;
      cell.title = `batch ${first + index}: ${drift} of ${compared} features drifting`;
      const bar = el('span', 'mj-share-bar');
      bar.style.height = `${Math.round(Math.min(Math.max(batch.drift_share, 0), 1) * 100)}%`;
      bar.setAttribute('aria-hidden', 'true');
      const track = el('span', 'mj-share-track');
      track.append(bar);
      cell.append(track, el('span', 'mj-share-text', percent(batch.drift_share)));
      shareRow.append(cell);
    });
    const tfoot = el('tfoot');
    tfoot.append(shareRow);
    table.append(thead, tbody, tfoot);

    const scroll = el('div', 'mj-strip-scroll');
    scroll.append(table);
    section.append(head, scroll, detail);
    const keep = this._selected.get(ref);
    const kept = keep ? version.batches.findIndex(b => b.id === keep) : -1;
    if (kept >= 0) {
      show(kept); // a refresh keeps the batch the user was reading
    }
    requestAnimationFrame(() => (scroll.scrollLeft = scroll.scrollWidth)); // the newest in view
    return section;
  }

  private renderDetail(
    detail: HTMLElement,
    version: IMonitoredVersion,
    batch: IMonitoredBatch,
    ordinal: number,
    close: () => void
  ): void {
    detail.dataset.batch = batch.id;
    detail.setAttribute('aria-label', `Batch ${ordinal} of ${this._model}:${version.version}`);
    const head = el('div', 'mj-batch-head');
    const closeButton = el('button', 'mj-batch-close', '×');
    closeButton.title = 'Close the batch detail';
    closeButton.setAttribute('aria-label', 'Close the batch detail');
    closeButton.addEventListener('click', close);
    const title = el('span', 'mj-batch-title', `Batch ${ordinal} of ${version.total} · `);
    title.append(timeNode(batch.created_at));
    head.append(title, closeButton);

    const { drift, compared } = drifting(batch);
    const facts = el('dl', 'mj-batch-facts');
    const fact = (name: string, value: string | HTMLElement, className: string): void => {
      const dd = el('dd', className);
      dd.append(value);
      facts.append(el('dt', '', name), dd);
    };
    fact('batch id', batch.batch_id, 'mj-batch-id');
    fact('rows', String(batch.n_rows), 'mj-batch-rows');
    fact('decision', batch.decision, `mj-batch-decision mj-decision-${batch.decision}`);
    fact(
      'drifting',
      `${drift} of ${compared} features (${percent(batch.drift_share)})`,
      'mj-batch-share'
    );
    fact('served from', batch.stage, 'mj-batch-stage');
    fact('recorded by', batch.recorded_by ?? 'unknown', 'mj-batch-recorder');

    const table = el('table', 'mj-batch-features');
    const header = el('tr');
    for (const name of ['feature', 'status', 'PSI', 'test', 'statistic', 'p-value']) {
      const th = el('th', '', name);
      th.scope = 'col';
      header.append(th);
    }
    const thead = el('thead');
    thead.append(header);
    const tbody = el('tbody');
    for (const feature of batch.features) {
      const row = el('tr', `mj-feature-row mj-status-${feature.status}`);
      row.dataset.feature = feature.feature;
      const name = el('th', 'mj-feature-name', feature.feature);
      name.scope = 'row';
      const status = el('td', 'mj-feature-status');
      const mark = el('span', 'mj-status-mark', MARKS[feature.status] ?? '');
      mark.setAttribute('aria-hidden', 'true');
      status.append(mark, feature.schema ? `${feature.status} (${feature.schema})` : feature.status);
      if (feature.note) {
        status.title = feature.note;
      }
      row.append(
        name,
        status,
        el('td', 'mj-feature-psi', figure(feature.psi)),
        el('td', 'mj-feature-test', feature.test ?? '—'),
        el('td', 'mj-feature-statistic', figure(feature.statistic)),
        el('td', 'mj-feature-p', figure(feature.p_value, 'p'))
      );
      tbody.append(row);
    }
    table.append(thead, tbody);

    const parts: HTMLElement[] = [head, facts, table];
    const predictions = batch.predictions ?? batch.labels?.predictions;
    if (predictions) {
      const line = el('div', `mj-batch-predictions mj-decision-${predictions.status}`);
      line.append(el('span', 'mj-label-inline', 'predictions '), predictionText(predictions));
      parts.push(line);
    }
    if (batch.performance) {
      const line = el('div', 'mj-batch-performance');
      line.append(
        el('span', 'mj-label-inline', 'performance '),
        performanceText(batch.performance)
      );
      parts.push(line);
    }
    if (batch.labels?.performance) {
      const line = el('div', 'mj-batch-labels');
      line.append(
        el('span', 'mj-label-inline', 'labels '),
        performanceText(batch.labels.performance),
        ` · recorded ${isoTime(batch.labels.created_at) ?? 'at an unknown time'} by ` +
          `${batch.labels.recorded_by ?? 'unknown'}`
      );
      parts.push(line);
    }
    detail.replaceChildren(...parts);
  }

  private _model: string;
  private _selected: Map<string, string>;
}
