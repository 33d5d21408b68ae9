import { Clipboard, Notification } from '@jupyterlab/apputils';

/**
 * Deep links: a URL of this server's app (JupyterLab or Notebook 7) with `?mlops=KIND` that
 * opens a run, a comparison, a code diff or a card once the page has loaded.
 */

/** A deep link: what to open (`mlops=run|compare|card|diff`) and in which directory's store. */
export interface ILink {
  kind: 'run' | 'compare' | 'card' | 'diff';
  directory: string;
  /** run: its id; compare: the ids; card: the ref; diff: the two ids. */
  ids: string[];
}

/**
 * The URL that opens ``link``: this page's address (JupyterLab's /lab..., Notebook 7's
 * /notebooks/...) with the link in its query.
 */
export function linkUrl(link: ILink): string {
  const query = new URLSearchParams({ mlops: link.kind, path: link.directory });
  query.set(link.kind === 'card' ? 'ref' : 'ids', link.ids.join(','));
  return `${window.location.origin}${window.location.pathname}?${query.toString()}`;
}

/** Copy ``link``'s URL to the clipboard, say so, and keep it on ``button`` (`data-link`). */
export function copyLink(link: ILink, button?: HTMLElement): string {
  const url = linkUrl(link);
  Clipboard.copyToSystem(url);
  if (button) {
    button.dataset.link = url;
    button.title = url;
  }
  Notification.success(`Link copied: ${url}`, { autoClose: 4000 });
  return url;
}

/** The deep link in a page's query string, or null. */
export function parseLink(search: string): ILink | null {
  const query = new URLSearchParams(search);
  const kind = query.get('mlops');
  if (kind !== 'run' && kind !== 'compare' && kind !== 'card' && kind !== 'diff') {
    return null;
  }
  const ids = (query.get(kind === 'card' ? 'ref' : 'ids') ?? '')
    .split(',')
    .map(i => i.trim())
    .filter(Boolean);
  return ids.length ? { kind, directory: query.get('path') ?? '', ids } : null;
}
