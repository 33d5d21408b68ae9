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
