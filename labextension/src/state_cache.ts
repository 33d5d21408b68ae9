import { PageConfig } from '@jupyterlab/coreutils';

import { IPanelState } from './panel';

/**
 * The panel's state kept in this browser's localStorage beside the workspace's copy. A page
 * load reads it at once, while the workspace (the state database) arrives some 0.3 s later,
 * so the panel lists its store without waiting; the workspace's state, when it differs (saved
 * from another browser), then replaces it. Nothing here is secret: the view, experiment, sort,
 * filter, columns and directory shown.
 */
function storageKey(): string {
  const workspace = PageConfig.getOption('workspace') || 'default';
  return `mlops-jupyter:panel:${PageConfig.getBaseUrl()}:${workspace}`;
}

/** The state this browser last saved for this server and workspace, if any. */
export function cachedState(): IPanelState | null {
  try {
    const text = window.localStorage.getItem(storageKey());
    const value: unknown = text ? JSON.parse(text) : null;
    return value && typeof value === 'object' && !Array.isArray(value)
      ? (value as IPanelState)
      : null;
  } catch {
    return null; // storage disabled, or not JSON: the workspace's state alone
  }
}

/** Keep ``state`` for the next page load in this browser. */
export function cacheState(state: IPanelState): void {
  try {
    window.localStorage.setItem(storageKey(), JSON.stringify(state));
  } catch {
    // storage full or disabled: the workspace keeps the state anyway
  }
}
