import { ISignal, Signal } from '@lumino/signaling';

import { el, IModel, IPromotionRequest, IRequests } from './api';
import { requestAPI } from './request';

const RECENT_DECISIONS = 10;

/** What the user asked to open: a model card by reference (`model:version` or a run id). */
export interface ICardRequest {
  directory: string;
  ref: string;
  label: string;
}

/**
 * The registry as the side panel shows it: models with their versions and stages, pending
 * promotion requests with their gate results and an approve/reject form, and the latest
 * decisions. The reviewer is the Jupyter user the server authenticated.
 *
 * Every string from the server is set with textContent, never parsed as HTML.
 */
export class ModelsView {
  constructor() {
    this.node = el('div', 'mj-models-view');
    this._reviewer = el('div', 'mj-reviewer');
    this._error = el('div', 'mj-models-error');
    this._error.hidden = true;
    this._notice = el('div', 'mj-notice');
    this._notice.setAttribute('role', 'status');
    this._models = el('div', 'mj-models');
    this._pending = el('div', 'mj-requests');
    this._recent = el('div', 'mj-recent');
    this.node.append(
      this._reviewer,
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
      this._reviewer.textContent = `Reviewing as ${requests.reviewer.name || requests.reviewer.username}`;
      this._reviewer.title = `Jupyter user ${requests.reviewer.username}`;
      this.renderModels(models.models);
      this.renderRequests(requests.requests);
    } catch (error) {
      this.showError(`Could not load the registry: ${(error as Error).message}`);
    }
  }

  private showError(message: string): void {
    this._error.hidden = false;
    this._error.textContent = message;
  }

  private renderModels(models: IModel[]): void {
    if (!models.length) {
      this._models.replaceChildren(
        el('p', 'mj-empty', 'No registered models yet: %register RUN MODEL in a notebook.')
      );
      return;
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
        const ref = `${model.model}:${version.version}`;
        const card = el('button', 'mj-card-button', `v${version.version}`);
        card.title = `Open the model card of ${ref}`;
        card.addEventListener('click', () =>
          this._cardRequested.emit({ directory: this._directory, ref, label: ref })
        );
        row.append(
          card,
          el('span', 'mj-stage', version.stage),
          el('span', 'mj-hash', version.run_id.slice(0, 8))
        );
        versions.append(row);
      }
      item.append(head, versions);
      list.append(item);
    }
    this._models.replaceChildren(list);
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
    const who = el('div', 'mj-requester', `requested by ${request.requester}`);
    if (request.comment) {
      who.append(el('q', 'mj-comment', request.comment));
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
    card.append(head, who, gates, approvals);
    if (request.status === 'pending') {
      card.append(this.reviewForm(request));
    }
    return card;
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
        approve.disabled = reject.disabled = false;
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
  private _error: HTMLElement;
  private _notice: HTMLElement;
  private _models: HTMLElement;
  private _pending: HTMLElement;
  private _recent: HTMLElement;
  private _cardRequested = new Signal<this, ICardRequest>(this);
}
