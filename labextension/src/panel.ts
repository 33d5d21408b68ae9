import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { requestAPI } from './request';

/** What `GET /mlops-jupyter/api/store` answers. */
export interface IStoreInfo {
  store_dir: string;
  db_path: string;
  exists: boolean;
  root_dir: string;
  relative_store_dir: string | null;
}

/**
 * The MLOps runs side panel. For now it shows the store the server resolved for the current
 * notebook's directory; the run table arrives with the comparison panel.
 *
 * Every string from the server is set with textContent, never parsed as HTML.
 */
export class RunsPanel extends Widget {
  constructor() {
    super();
    this.id = 'mlops-jupyter-panel';
    this.addClass('mj-panel');
    this.title.caption = 'MLOps runs';

    const header = document.createElement('div');
    header.className = 'mj-header';
    const heading = document.createElement('h2');
    heading.className = 'mj-title';
    heading.textContent = 'MLOps runs';
    this._refreshButton = document.createElement('button');
    this._refreshButton.className = 'mj-refresh jp-Button';
    this._refreshButton.title = 'Refresh';
    this._refreshButton.textContent = 'Refresh';
    this._refreshButton.addEventListener('click', () => void this.refresh());
    header.append(heading, this._refreshButton);

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

    this.node.append(header, label, this._path, this._status, this._error);
  }

  /** The notebook directory (relative to the server root) whose store is shown. */
  get directory(): string {
    return this._directory;
  }

  set directory(value: string) {
    if (value !== this._directory) {
      this._directory = value;
      void this.refresh();
    }
  }

  /** Ask the server which store applies, and show it. */
  async refresh(): Promise<void> {
    const request = ++this._requests;
    this.node.classList.add('mj-loading');
    try {
      const query = new URLSearchParams({ path: this._directory }).toString();
      const info = await requestAPI<IStoreInfo>(`store?${query}`);
      if (request !== this._requests) {
        return;
      }
      this._error.hidden = true;
      this._error.textContent = '';
      this._path.textContent = info.relative_store_dir ?? info.store_dir;
      this._path.title = info.db_path;
      this._status.textContent = info.exists
        ? 'store exists'
        : 'store will be created on first tracked run';
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

  /** Refresh whenever the panel is shown (the store may have been created meanwhile). */
  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this.refresh();
  }

  private _directory = '';
  private _requests = 0;
  private _refreshButton: HTMLButtonElement;
  private _path: HTMLElement;
  private _status: HTMLElement;
  private _error: HTMLElement;
}
