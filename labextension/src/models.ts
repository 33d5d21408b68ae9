import { ISignal, Signal } from '@lumino/signaling';

import {
  el,
  IModel,
  IMonitoring,
  IPromotionRequest,
  IRequests,
  IReviewer,
  ISignoff,
  isoTime,
  timeNode
} from './api';
import { DriftStrip } from './drift';
import { requestAPI } from './request';

const RECENT_DECISIONS = 10;

/** ``SHA256:abcdefgh…``: enough to tell keys apart at a glance (the full one goes in a title). */
export function shortFingerprint(fingerprint: string): string {
  const colon = fingerprint.indexOf(':') + 1; // 0 when there is no "SHA256:" prefix
  const hash = fingerprint.slice(colon);
  return hash.length > 10 ? `${fingerprint.slice(0, colon)}${hash.slice(0, 8)}…` : fingerprint;
}

/** A key fingerprint as short text with the full value in its title. */
function fingerprintNode(fingerprint: string): HTMLElement {
  const node = el('code', 'mj-fingerprint', shortFingerprint(fingerprint));
  node.title = fingerprint;
  return node;
}

/** What the user asked to open: a model card by reference (`model:version` or a run id). */
export interface ICardRequest {
  directory: string;
  ref: string;
  label: string;
}

/**
 * The registry as the side panel shows it: models with their versions and stages, pending
 * promotion requests with their gate results, signed sign-offs and an approve/reject form, and
 * the latest decisions. Approvals are signed by the server with the key of the person it runs
 * for (its principal in the allowed-signers file), not as the Jupyter user; when the server
 * cannot sign, the view says why and the buttons are disabled. Under each model, the drift of
 * its monitored versions over their batches (see ``DriftStrip``).
 *
 * Every string from the server is set with textContent, never parsed as HTML.
 */
export class ModelsView {
  constructor() {
    this.node = el('div', 'mj-models-view');
    this._reviewer = el('div', 'mj-reviewer');
    this._signingProblem = el('div', 'mj-signing-problem');
    this._signingProblem.setAttribute('role', 'note');
    this._signingProblem.hidden = true;
    this._error = el('div', 'mj-models-error');
    this._error.hidden = true;
    this._notice = el('div', 'mj-notice');
    this._notice.setAttribute('role', 'status');
    this._models = el('div', 'mj-models');
    this._pending = el('div', 'mj-requests');
    this._recent = el('div', 'mj-recent');
    this.node.append(
      this._reviewer,
      this._signingProblem,
      this._notice,
      this._error,
      el('h3', 'mj-subtitle', 'Models'),
      this._models,
      el('h3', 'mj-subtitle', 'Pending requests'),
      this._pending,
      el('h3', 'mj-subtitle', 'Recent decisions'),
      this._recent
    );
  }

  readonly node: HTMLElement;

  /** Emitted when the user asks for a version's model card. */
  get cardRequested(): ISignal<this, ICardRequest> {
    return this._cardRequested;
  }

  /** Emitted when the user asks to compare two versions' runs (a candidate with production). */
  get compareRequested(): ISignal<this, { directory: string; ids: string[] }> {
    return this._compareRequested;
  }

  /** Load models and requests from the store of ``directory``. */
  async load(directory: string): Promise<void> {
    this._directory = directory;
    const query = new URLSearchParams({ path: directory }).toString();
    try {
      const [models, requests] = await Promise.all([
        requestAPI<{ models: IModel[] }>(`models?${query}`),
        requestAPI<IRequests>(`requests?${query}&limit=100`)
      ]);
      if (directory !== this._directory) {
        return; // the user moved on to another notebook meanwhile
      }
      this._error.hidden = true;
      this.renderReviewer(requests.reviewer);
      this._byName = new Map(models.models.map(m => [m.model, m]));
      const boxes = this.renderModels(models.models);
      this.renderRequests(requests.requests);
      await Promise.all(models.models.map(m => this.loadMonitoring(directory, m.model, boxes)));
    } catch (error) {
      this.showError(`Could not load the registry: ${(error as Error).message}`);
    }
  }

  /** The drift strip of one model's monitored versions, into its box. */
  private async loadMonitoring(
    directory: string,
    model: string,
    boxes: Map<string, HTMLElement>
  ): Promise<void> {
    const box = boxes.get(model);
    if (!box) {
      return;
    }
    const query = new URLSearchParams({ path: directory }).toString();
    try {
      const monitoring = await requestAPI<IMonitoring>(
        `models/${encodeURIComponent(model)}/monitoring?${query}`
      );
      if (directory !== this._directory || !box.isConnected) {
        return; // another notebook, or a newer load, replaced this view meanwhile
      }
      box.replaceChildren(new DriftStrip(model, monitoring, this._selectedBatches).node);
    } catch (error) {
      box.replaceChildren(
        el('p', 'mj-models-error', `Could not load the monitoring: ${(error as Error).message}`)
      );
    }
  }

  /** "Signing as PRINCIPAL (FINGERPRINT)", or why this server cannot sign. */
  private renderReviewer(reviewer: IReviewer): void {
    this._signer = reviewer;
    this._reviewer.title = `Jupyter user ${reviewer.username}`;
    if (reviewer.principal) {
      this._reviewer.replaceChildren(
        'Signing as ',
        el('strong', 'mj-principal', reviewer.principal),
        ' (',
        el('code', 'mj-fingerprint', reviewer.fingerprint ?? 'unknown key'),
        ')'
      );
      this._signingProblem.hidden = true;
      this._signingProblem.textContent = '';
    } else {
      this._reviewer.textContent = 'Not signing: approving and rejecting are off here';
      this._signingProblem.hidden = false;
      this._signingProblem.textContent = this.signingProblem() ?? '';
    }
  }

  /** Why this server cannot sign (null: it can). */
  private signingProblem(): string | null {
    if (this._signer?.principal) {
      return null;
    }
    return this._signer?.problem || 'this server cannot sign registry actions';
  }

  private showError(message: string): void {
    this._error.hidden = false;
    this._error.textContent = message;
  }

  /** The registered models; returns each model's (empty) box for its drift strip. */
  private renderModels(models: IModel[]): Map<string, HTMLElement> {
    const boxes = new Map<string, HTMLElement>();
    if (!models.length) {
      this._models.replaceChildren(
        el('p', 'mj-empty', 'No registered models yet: %register RUN MODEL in a notebook.')
      );
      return boxes;
    }
    const list = el('ul', 'mj-model-list');
    for (const model of models) {
      const item = el('li', 'mj-model');
      item.dataset.model = model.model;
      const head = el('div', 'mj-model-head');
      head.append(
        el('span', 'mj-model-name', model.model),
        el('span', 'mj-tier', `${model.risk_tier} risk`)
      );
      const versions = el('ul', 'mj-versions');
      for (const version of [...model.versions_list].reverse()) {
        const row = el('li', `mj-version mj-stage-${version.stage}`);
        row.dataset.version = String(version.version);
        const by = version.created_by ?? 'unknown';
        row.title = version.fingerprint
          ? `registered by ${by} with key ${version.fingerprint}`
          : `registered by ${by} (not signed)`;
        const ref = `${model.model}:${version.version}`;
        const card = el('button', 'mj-card-button', `v${version.version}`);
        card.title = `Open the model card of ${ref}`;
        card.addEventListener('click', () =>
          this._cardRequested.emit({ directory: this._directory, ref, label: ref })
        );
        row.append(
          card,
          el('span', 'mj-stage', version.stage),
          el('span', 'mj-hash', version.run_id.slice(0, 8)),
          timeNode(version.created_at)
        );
        const production = this.productionRun(model.model, version.version);
        if (production) {
          row.append(this.compareButton(production, version.run_id, `v${version.version}`));
        }
        versions.append(row);
      }
      const box = el('div', 'mj-monitoring-box');
      boxes.set(model.model, box);
      item.append(head, versions, box);
      list.append(item);
    }
    this._models.replaceChildren(list);
    return boxes;
  }

  private renderRequests(requests: IPromotionRequest[]): void {
    const pending = requests.filter(r => r.status === 'pending');
    this._pending.replaceChildren(
      ...(pending.length
        ? pending.map(r => this.requestCard(r))
        : [el('p', 'mj-empty', 'Nothing waits for a sign-off.')])
    );
    const decided = requests.filter(r => r.status !== 'pending').slice(0, RECENT_DECISIONS);
    this._recent.replaceChildren(
      ...(decided.length
        ? decided.map(r => this.requestCard(r))
        : [el('p', 'mj-empty', 'No decisions yet.')])
    );
  }

  private requestCard(request: IPromotionRequest): HTMLElement {
    const card = el('section', `mj-request mj-request-${request.status}`);
    card.dataset.request = String(request.id);
    const title = `#${request.id} ${request.model}:${request.version} ${request.from_stage} → ${request.to_stage}`;
    card.setAttribute('aria-label', `Promotion request ${title}`);
    const head = el('div', 'mj-request-head');
    head.append(el('span', 'mj-request-title', title), el('span', 'mj-badge', request.status));
    const who = el('div', 'mj-requester');
    who.append(
      'requested by ',
      el('span', 'mj-principal', request.requester),
      ' ',
      request.requester_key
        ? fingerprintNode(request.requester_key)
        : el('span', 'mj-unsigned', '(not signed)'),
      ' · ',
      timeNode(request.created_at)
    );
    if (request.comment) {
      who.append(el('q', 'mj-comment', request.comment));
    }
    const parts: HTMLElement[] = [head, who];
    const ref = `${request.model}:${request.version}`;
    const actions = el('div', 'mj-request-actions');
    const openCard = el('button', 'mj-request-card jp-Button', `Card of ${ref}`);
    openCard.title = `The model card of ${ref}, the version under review`;
    openCard.addEventListener('click', () =>
      this._cardRequested.emit({ directory: this._directory, ref, label: ref })
    );
    actions.append(openCard);
    const candidate = this._byName
      .get(request.model)
      ?.versions_list.find(v => v.version === request.version);
    const production = this.productionRun(request.model, request.version);
    if (candidate && production) {
      actions.append(this.compareButton(production, candidate.run_id, ref));
    }
    parts.push(actions);
    if (request.reason) {
      parts.push(el('div', 'mj-blocked-reason', `blocked: ${request.reason}`));
    }
    const gates = el('ul', 'mj-gates');
    for (const gate of request.gates) {
      const item = el('li', gate.passed ? 'mj-gate mj-pass' : 'mj-gate mj-fail');
      item.dataset.gate = gate.gate;
      item.append(
        el('span', 'mj-gate-mark', gate.passed ? '✓' : '✗'),
        el('span', 'mj-gate-name', gate.gate),
        el('span', 'mj-gate-message', gate.message)
      );
      gates.append(item);
    }
    if (!request.gates.length) {
      gates.append(el('li', 'mj-gate', 'no gates for this stage'));
    }
    const approvals = el(
      'div',
      'mj-approvals',
      `approvals ${request.approvals.length}/${request.required_signoffs}` +
        (request.approvals.length ? `: ${request.approvals.join(', ')}` : '')
    );
    parts.push(gates, approvals);
    if (request.signoffs.length || request.not_counted.length) {
      const signoffs = el('ul', 'mj-signoffs');
      signoffs.setAttribute('aria-label', `Sign-offs on request #${request.id}`);
      signoffs.append(...request.signoffs.map(s => this.signoffItem(s)));
      for (const ignored of request.not_counted) {
        const item = el(
          'li',
          'mj-not-counted',
          `not counted: ${ignored.principal} — ${ignored.reason}`
        );
        item.dataset.principal = ignored.principal;
        item.title = `signed ${isoTime(ignored.time) ?? 'at an unknown time'}`;
        signoffs.append(item);
      }
      parts.push(signoffs);
    }
    card.append(...parts);
    if (request.status === 'pending') {
      card.append(this.reviewForm(request));
    }
    return card;
  }

  /** The run of ``model``'s production version, when there is one other than ``version``. */
  private productionRun(model: string, version: number): string | null {
    const m = this._byName.get(model);
    if (!m || m.production === null || m.production === version) {
      return null;
    }
    return m.versions_list.find(v => v.version === m.production)?.run_id ?? null;
  }

  private compareButton(production: string, candidate: string, label: string): HTMLElement {
    const button = el('button', 'mj-compare-production jp-Button', 'Compare with production');
    button.title = `${label} beside the version in production, run by run`;
    button.addEventListener('click', () =>
      this._compareRequested.emit({ directory: this._directory, ids: [production, candidate] })
    );
    return button;
  }

  /** One sign-off: who, with which key, when, their comment, and whether the signature holds. */
  private signoffItem(signoff: ISignoff): HTMLElement {
    const verified = signoff.verified && !signoff.note;
    const item = el(
      'li',
      `mj-signoff mj-signoff-${signoff.decision} ${verified ? 'mj-verified' : 'mj-unverified'}`
    );
    item.dataset.principal = signoff.principal;
    item.dataset.decision = signoff.decision;
    const signature = el(
      'span',
      'mj-signature',
      verified ? 'signature verified' : (signoff.note ?? 'not signed')
    );
    const mark = el('span', 'mj-signature-mark', verified ? '✓' : '⚠');
    mark.setAttribute('aria-hidden', 'true');
    item.append(
      el('span', 'mj-principal', signoff.principal),
      el('span', 'mj-decision', signoff.decision === 'approve' ? 'approved' : 'rejected')
    );
    if (signoff.fingerprint) {
      item.append(fingerprintNode(signoff.fingerprint));
    }
    const status = el('span', 'mj-signature-status');
    status.append(mark, ' ', signature);
    item.append(timeNode(signoff.time), status);
    if (signoff.comment) {
      item.append(el('q', 'mj-comment', signoff.comment));
    }
    return item;
  }

  /** Why this server's principal may not take ``action`` on ``request`` (null: it may try). */
  private refusal(request: IPromotionRequest, action: 'approve' | 'reject'): string | null {
    const problem = this.signingProblem();
    if (problem) {
      return problem;
    }
    const me = this._signer?.principal;
    const key = this._signer?.fingerprint;
    const signed = request.signoffs.some(
      s => s.principal === me || (!!key && s.fingerprint === key)
    );
    if (signed) {
      return `${me} already signed request #${request.id}`;
    }
    const mine = request.requester === me || (!!key && request.requester_key === key);
    if (action === 'approve' && mine) {
      return (
        `${me} requested #${request.id} and cannot approve it (four eyes): ` +
        'another person must sign off'
      );
    }
    return null;
  }

  private reviewForm(request: IPromotionRequest): HTMLElement {
    const form = el('div', 'mj-review');
    const comment = el('textarea', 'mj-review-comment jp-mod-styled');
    comment.rows = 2;
    comment.placeholder = 'Comment (a rejection needs one)';
    comment.setAttribute('aria-label', `Comment on request #${request.id}`);
    const approve = el('button', 'mj-approve jp-Button', 'Approve');
    const reject = el('button', 'mj-reject jp-Button', 'Reject');
    const status = el('div', 'mj-review-status');
    status.setAttribute('role', 'status');
    const enable = (): void => {
      for (const [button, action] of [
        [approve, 'approve'],
        [reject, 'reject']
      ] as const) {
        const refusal = this.refusal(request, action);
        button.disabled = refusal !== null;
        const verb = action === 'approve' ? 'Approve' : 'Reject';
        button.title =
          refusal ?? `${verb} request #${request.id}, signed as ${this._signer?.principal}`;
      }
      comment.disabled = approve.disabled && reject.disabled;
    };
    enable();
    const act = async (action: 'approve' | 'reject'): Promise<void> => {
      approve.disabled = reject.disabled = true;
      status.classList.remove('mj-failed');
      status.textContent = action === 'approve' ? 'Approving…' : 'Rejecting…';
      try {
        const query = new URLSearchParams({ path: this._directory }).toString();
        const result = await requestAPI<IPromotionRequest>(
          `requests/${request.id}/${action}?${query}`,
          { method: 'POST', body: JSON.stringify({ comment: comment.value }) }
        );
        const verb = action === 'approve' ? 'Approved' : 'Rejected';
        this._notice.textContent = `${verb} request #${result.id}: it is ${result.status}.`;
        await this.load(this._directory);
      } catch (error) {
        status.classList.add('mj-failed');
        status.textContent = `Could not ${action}: ${(error as Error).message}`;
        enable();
      }
    };
    approve.addEventListener('click', () => void act('approve'));
    reject.addEventListener('click', () => void act('reject'));
    const buttons = el('div', 'mj-review-buttons');
    buttons.append(approve, reject);
    form.append(comment, buttons, status);
    return form;
  }

  private _directory = '';
  private _reviewer: HTMLElement;
  private _signingProblem: HTMLElement;
  private _signer: IReviewer | null = null;
  private _error: HTMLElement;
  private _notice: HTMLElement;
  private _models: HTMLElement;
  private _pending: HTMLElement;
  private _recent: HTMLElement;
  private _cardRequested = new Signal<this, ICardRequest>(this);
  private _compareRequested = new Signal<this, { directory: string; ids: string[] }>(this);
  private _byName = new Map<string, IModel>();
  private _selectedBatches = new Map<string, string>(); // MODEL:VERSION -> the batch shown
}
