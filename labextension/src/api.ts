/** Shapes of the mlops-jupyter REST API answers the front end uses. */

export interface IRunSummary {
  run_id: string;
  experiment: string;
  name: string | null;
  status: string;
  started_at: string;
  duration_s: number | null;
  train_hash: string | null;
  params: Record<string, unknown>;
  metrics: Record<string, number | string>;
  tags: Record<string, string>;
}

/** What `GET columns` answers: the keys a runs table can show. */
export interface IRunColumns {
  params: string[];
  metrics: string[];
  tags: string[];
  /** Each metric's direction: set for the experiment, else read from its name. */
  directions?: Record<string, 'min' | 'max'>;
}

export interface IRunPage {
  total: number;
  offset: number;
  limit: number;
  runs: IRunSummary[];
}

export interface IExperiment {
  experiment: string;
  runs: number;
}

export interface IComparison {
  runs: { run_id: string; name: string | null; experiment: string; status: string }[];
  params: { key: string; values: unknown[]; differs: boolean }[];
  metrics: {
    key: string;
    values: (number | string | null)[];
    best: number | null;
    lower_is_better: boolean;
    direction?: 'min' | 'max';
    /** `experiment`: set for it; `name`: read from the metric's name. */
    direction_source?: 'experiment' | 'name';
    direction_conflict?: boolean;
    primary?: boolean;
  }[];
  data: Record<'train' | 'eval', { hashes: string[][]; same: boolean }>;
  shap: {
    run_id: string;
    top: [string, number][];
    status?: 'ok' | 'pending' | 'failed' | 'none';
    reason?: string | null;
  }[];
}

/** Short, readable text for any JSON value. */
export function show(value: unknown): string {
  if (value === null || value === undefined) {
    return '—';
  }
  if (typeof value === 'number') {
    return Number.isInteger(value) ? String(value) : value.toPrecision(4);
  }
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/**
 * A number as a person reads it in a table: about three significant figures (0.835,
 * 0.000167 as 1.67e-4), whole numbers whole, anything else as `show` gives it.
 */
export function readable(value: unknown): string {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    return show(value);
  }
  const size = Math.abs(value);
  if (Number.isInteger(value) && size < 1e6) {
    return String(value);
  }
  if (size !== 0 && (size < 1e-3 || size >= 1e6)) {
    return value.toExponential(2).replace(/\.?0+e/, 'e');
  }
  return size >= 1000 ? String(Math.round(value)) : String(Number(value.toPrecision(3)));
}

/** A duration in seconds with its unit: 167 µs, 0.25 ms, 4.2 s, 3 min 20 s, 2 h 5 min. */
export function duration(seconds: unknown): string {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) {
    return '—';
  }
  const three = (x: number) => String(Number(x.toPrecision(3)));
  if (seconds < 1e-3) {
    return `${three(seconds * 1e6)} µs`;
  }
  if (seconds < 1) {
    return `${three(seconds * 1e3)} ms`;
  }
  if (seconds < 60) {
    return `${three(seconds)} s`;
  }
  if (seconds < 3600) {
    return `${Math.floor(seconds / 60)} min ${Math.floor(seconds % 60)} s`;
  }
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
}

/** Build an element with a class and text (never HTML). */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className = '',
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/** Unix seconds as an ISO time in UTC (null when missing or invalid). */
export function isoTime(seconds: number | null | undefined): string | null {
  const date = new Date((seconds ?? NaN) * 1000);
  return seconds && !Number.isNaN(date.getTime()) ? date.toISOString() : null;
}

/** Unix seconds as a local date and time (the ISO time, in UTC, in its title). */
export function timeNode(seconds: number): HTMLElement {
  const node = el('time', 'mj-time');
  const iso = isoTime(seconds);
  if (iso === null) {
    node.textContent = 'unknown time';
    return node;
  }
  const date = new Date(iso);
  node.dateTime = iso;
  node.title = iso;
  node.textContent = date.toLocaleString(undefined, {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit'
  });
  return node;
}

export interface IModelVersion {
  version: number;
  stage: string;
  run_id: string;
  blob: string | null;
  created_by: string | null;
  created_at: number;
  fingerprint: string | null; // the registering key; null before signing existed
}

export interface IModel {
  model: string;
  risk_tier: string;
  versions: number;
  production: number | null;
  staging: number | null;
  versions_list: IModelVersion[];
}

export interface IGate {
  gate: string;
  passed: boolean;
  message: string;
}

export interface IPromotionRequest {
  id: number;
  model: string;
  version: number;
  from_stage: string;
  to_stage: string;
  status: 'pending' | 'blocked' | 'rejected' | 'applied';
  requester: string;
  comment: string | null;
  gates: IGate[];
  required_signoffs: number;
  approvals: string[]; // principals whose sign-off counts
  audit_head: string;
  requester_key: string | null; // fingerprint of the requesting key; null before signing
  created_at: number; // unix seconds
  reason: string | null; // why the request was blocked at approval
  signoffs: ISignoff[];
  not_counted: INotCounted[];
}

/** A sign-off statement on a request, as the signed audit log says it is. */
export interface ISignoff {
  principal: string;
  decision: 'approve' | 'reject';
  comment: string;
  time: number; // unix seconds
  fingerprint: string | null;
  verified: boolean;
  note: string | null; // e.g. signed with a since-revoked key
}

/** A sign-off statement that does not count, and why. */
export interface INotCounted {
  principal: string;
  time: number;
  reason: string;
}

/**
 * Who this server signs as: the key of the person it runs for. ``principal`` is null when it
 * cannot sign, and ``problem`` then says why.
 */
export interface IReviewer {
  username: string;
  name: string;
  principal: string | null;
  fingerprint: string | null;
  problem: string | null;
}

export interface IRequests {
  reviewer: IReviewer;
  requests: IPromotionRequest[];
}

/** One feature of a monitored batch against the training data profile. */
export interface IDriftFeature {
  feature: string;
  kind: string | null; // numeric, categorical, schema, other
  status: 'ok' | 'warn' | 'drift';
  psi: number | null;
  test: string | null; // ks or chi2
  statistic: number | null;
  p_value: number | null;
  schema: string | null; // missing, new or type: a schema change
  note: string | null;
  missing: { reference: number; batch: number } | null;
  unseen_rows: number | null;
}

/** The predictions of a batch against the training labels' profile. */
export interface IPredictionDrift {
  feature: string;
  status: 'ok' | 'warn' | 'drift';
  psi: number | null;
  test: string | null;
  statistic: number | null;
  p_value: number | null;
}

export interface IMetricEstimate {
  value: number | null;
  interval?: (number | null)[];
  reference?: number;
  reference_metric?: string;
}

/** How the model did on a batch once its labels were known. */
export interface IPerformance {
  n: number;
  task?: string;
  status?: string;
  metrics: Record<string, IMetricEstimate>;
}

/** Labels that arrived after their batch (the latest such row of the batch id). */
export interface ILabels {
  id: string;
  created_at: number;
  n_rows: number;
  decision: string;
  predictions: IPredictionDrift | null;
  performance: IPerformance | null;
  recorded_by: string | null;
}

export interface IMonitoredBatch {
  id: string;
  batch_id: string;
  created_at: number; // unix seconds
  n_rows: number;
  stage: string; // the stage the version served from
  decision: 'ok' | 'warn' | 'drift';
  drift_share: number;
  features: IDriftFeature[];
  predictions: IPredictionDrift | null;
  performance: IPerformance | null;
  labels: ILabels | null;
  recorded_by: string | null;
}

export interface IMonitoredVersion {
  version: number;
  stage: string;
  total: number; // every batch recorded against the version
  shown: number; // the latest ones sent, oldest first in ``batches``
  features: string[]; // training order, then columns new in a batch
  latest: { id: string; created_at: number; decision: string; drift_share: number };
  batches: IMonitoredBatch[];
}

export interface IMonitoring {
  model: string;
  limit: number;
  versions: IMonitoredVersion[]; // production first
}
