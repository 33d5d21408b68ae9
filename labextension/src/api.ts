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
  metrics: { key: string; values: (number | string | null)[]; best: number | null }[];
  data: Record<'train' | 'eval', { hashes: string[][]; same: boolean }>;
  shap: { run_id: string; top: [string, number][] }[];
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

export interface IModelVersion {
  version: number;
  stage: string;
  run_id: string;
  created_by: string | null;
  created_at: number;
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
  approvals: string[];
}

export interface IRequests {
  reviewer: { username: string; name: string };
  requests: IPromotionRequest[];
}
