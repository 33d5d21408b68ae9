import {
  ILabShell,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { RunsPanel } from './panel';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24">
<g class="jp-icon3" fill="#616161">
<rect x="3" y="13" width="4" height="8" rx="1"/>
<rect x="10" y="8" width="4" height="13" rx="1"/>
<rect x="17" y="3" width="4" height="18" rx="1"/>
</g></svg>`;

export const runsIcon = new LabIcon({ name: 'mlops-jupyter:runs', svgstr: ICON_SVG });

/** Command ids. */
export namespace CommandIDs {
  export const openPanel = 'mlops-jupyter:open-panel';
}

/** The path of the document shown in a widget (a notebook, a file), if it is one. */
function documentPath(widget: Widget | null): string | null {
  const context = (widget as { context?: { path?: unknown } } | null)?.context;
  return context && typeof context.path === 'string' ? context.path : null;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'mlops-jupyter:plugin',
  description: 'MLOps runs side panel: the store of the current notebook and its runs.',
  autoStart: true,
  optional: [ILabShell, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    labShell: ILabShell | null,
    palette: ICommandPalette | null
  ) => {
    const panel = new RunsPanel();
    panel.title.icon = runsIcon;
    app.shell.add(panel, 'left', { rank: 600 });

    app.commands.addCommand(CommandIDs.openPanel, {
      label: 'Open MLOps runs panel',
      caption: 'Show the MLOps runs side panel',
      icon: runsIcon,
      execute: () => {
        app.shell.activateById(panel.id);
        return panel.refresh();
      }
    });
    palette?.addItem({ command: CommandIDs.openPanel, category: 'MLOps' });

    // Follow the current document: its directory (without any drive prefix) picks the store.
    const follow = (widget: Widget | null): void => {
      const path = documentPath(widget);
      if (path !== null) {
        panel.directory = PathExt.dirname(app.serviceManager.contents.localPath(path));
      }
    };
    if (labShell) {
      labShell.currentChanged.connect((_, change) => follow(change.newValue));
      follow(labShell.currentWidget);
    }
    void panel.refresh();
  }
};

export default plugin;
