import {
  ILabShell,
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, MainAreaWidget, WidgetTracker } from '@jupyterlab/apputils';
import { PathExt, URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { IStateDB } from '@jupyterlab/statedb';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { ChartsWidget, IChartScope } from './charts_view';
import { CardWidget, CompareWidget } from './compare';
import { parseLink } from './links';
import { IPanelState, listEarly, RunsPanel } from './panel';
import { DiffView, RunView } from './runview';
import { cachedState, cacheState } from './state_cache';

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
  export const refresh = 'mlops-jupyter:refresh-runs';
  export const openCompare = 'mlops-jupyter:open-compare';
  export const openCard = 'mlops-jupyter:open-card';
  export const showModels = 'mlops-jupyter:show-models';
  export const openRun = 'mlops-jupyter:open-run';
  export const openDiff = 'mlops-jupyter:open-diff';
  export const openCharts = 'mlops-jupyter:open-charts';
  export const openTable = 'mlops-jupyter:open-table';
}

const STATE_KEY = 'mlops-jupyter:panel';

/** The parts of a kernel IOPub message used here (the full types live in @jupyterlab/services). */
interface IIopubMessage {
  header: { msg_type: string };
  parent_header?: { msg_id?: string };
  content: { code?: unknown; execution_state?: unknown };
}

interface IopubSignal {
  connect(slot: (sender: unknown, msg: IIopubMessage) => void): boolean;
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
  optional: [ILabShell, ICommandPalette, ILayoutRestorer, IStateDB],
  activate: (
    app: JupyterFrontEnd,
    labShell: ILabShell | null,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    stateDB: IStateDB | null
  ) => {
    const panel = new RunsPanel();
    panel.title.icon = runsIcon;
    app.shell.add(panel, 'left', { rank: 600 });
    restorer?.add(panel, panel.id); // reopened after a reload if it was open

    // the panel's view, experiment, sort and directory survive a reload: this browser's copy
    // is shown at once and the panel lists its store; the workspace's copy (the state
    // database, read as soon as the workspace is in, not after the layout is restored)
    // replaces it if it differs. Without either, the panel lists once its defaults are known.
    let followed = false; // a document picked the directory: the saved one does not apply
    const savedHere = stateDB ? cachedState() : null;
    if (savedHere) {
      panel.state = savedHere;
      panel.markReady();
    }
    if (stateDB) {
      void stateDB
        .fetch(STATE_KEY)
        .then(saved => {
          if (saved) {
            const state = { ...(saved as unknown as IPanelState) };
            if (followed) {
              delete state.directory;
            }
            panel.restoreState(state);
          }
          cacheState(panel.state);
          panel.stateChanged.connect((_, state) => {
            void stateDB.save(STATE_KEY, { ...state });
            cacheState(state);
          });
        })
        .catch(() => undefined) // no saved state: the panel's defaults
        .finally(() => panel.markReady());
    } else {
      panel.markReady();
    }

    // compare views and card tabs are reopened after a reload too
    const compares = new WidgetTracker<MainAreaWidget<CompareWidget>>({
      namespace: 'mlops-jupyter-compare'
    });
    const cards = new WidgetTracker<MainAreaWidget<CardWidget>>({
      namespace: 'mlops-jupyter-card'
    });

    /**
     * Activate the tab showing ``id``, or open ``make()`` in a new main-area tab. Notebook 7's
     * main area holds its one document (it ignores a second widget), so there the view opens
     * in the right sidebar, beside the notebook.
     */
    const showInMain = <T extends Widget>(
      tracker: WidgetTracker<MainAreaWidget<T>>,
      id: string,
      args: { restored?: unknown },
      make: () => T
    ): void => {
      const open = tracker.find(w => w.content.id === id);
      if (open) {
        app.shell.activateById(open.id);
        return;
      }
      // a view the layout restorer brings back must not take the place of the document the
      // page was opened on
      const activate = !args.restored;
      const view = new MainAreaWidget({ content: make() });
      view.id = `${id}-tab`;
      view.title.label = view.content.title.label;
      view.title.icon = runsIcon;
      void tracker.add(view);
      if (labShell) {
        app.shell.add(view, 'main', { activate });
      } else {
        view.addClass('mj-in-sidebar');
        app.shell.add(view, 'right', { rank: 900, activate });
      }
      if (activate) {
        app.shell.activateById(view.id);
      }
    };

    app.commands.addCommand(CommandIDs.openCompare, {
      label: 'Compare MLOps runs',
      execute: args => {
        const directory = String(args.directory ?? '');
        const ids = (args.ids as string[] | undefined) ?? [];
        showInMain(compares, CompareWidget.idFor(ids), args, () => {
          const view = new CompareWidget(directory, ids);
          view.actionRequested.connect((_, { action, args: a }) => {
            if (action === 'diff') {
              void app.commands.execute(CommandIDs.openDiff, { directory, ...a });
            } else if (action === 'charts') {
              const scope: IChartScope = {
                directory,
                ids,
                experiment: '',
                filter: '',
                sort: '',
                columns: panel.state.columns?.[`${directory}\n${panel.state.experiment}`] ?? [],
                primary: panel.primaryMetric
              };
              void app.commands.execute(CommandIDs.openCharts, scope as never);
            }
          });
          return view;
        });
      }
    });
    app.commands.addCommand(CommandIDs.openCard, {
      label: 'Open a model card',
      execute: args => {
        const directory = String(args.directory ?? '');
        const ref = String(args.ref ?? '');
        const label = String(args.label ?? ref);
        showInMain(cards, CardWidget.idFor(ref), args, () => {
          const settings = ServerConnection.makeSettings();
          const query = new URLSearchParams({ path: directory }).toString();
          const url =
            URLExt.join(settings.baseUrl, 'mlops-jupyter/api/cards', encodeURIComponent(ref)) +
            `?${query}`;
          return new CardWidget(url, ref, label, directory);
        });
      }
    });
    const runViews = new WidgetTracker<MainAreaWidget<RunView>>({ namespace: 'mlops-jupyter-run' });
    const diffs = new WidgetTracker<MainAreaWidget<DiffView>>({ namespace: 'mlops-jupyter-diff' });
    const charts = new WidgetTracker<MainAreaWidget<ChartsWidget>>({
      namespace: 'mlops-jupyter-charts'
    });
    app.commands.addCommand(CommandIDs.openRun, {
      label: 'Open an MLOps run',
      execute: args => {
        const directory = String(args.directory ?? '');
        const id = String(args.id ?? '');
        showInMain(runViews, RunView.idFor(id), args, () => {
          const view = new RunView(directory, id);
          view.tagsChanged.connect(() => void panel.refresh());
          view.actionRequested.connect((_, { action, args: a }) => {
            if (action === 'card') {
              void app.commands.execute(CommandIDs.openCard, { directory, ...a });
            } else if (action === 'diff') {
              void app.commands.execute(CommandIDs.openDiff, { directory, ...a });
            }
          });
          return view;
        });
      }
    });
    app.commands.addCommand(CommandIDs.openDiff, {
      label: 'Diff the code of two MLOps runs',
      execute: args => {
        const directory = String(args.directory ?? '');
        const [a, b] = [String(args.a ?? ''), String(args.b ?? '')];
        showInMain(diffs, DiffView.idFor(a, b), args, () => new DiffView(directory, a, b));
      }
    });
    app.commands.addCommand(CommandIDs.openCharts, {
      label: 'Charts of MLOps runs',
      execute: args => {
        const scope = args as unknown as IChartScope;
        showInMain(charts, ChartsWidget.idFor(scope), args, () => new ChartsWidget({ ...scope }));
      }
    });
    let table: RunsPanel | null = null;
    app.commands.addCommand(CommandIDs.openTable, {
      label: 'Open the MLOps runs table in the main area',
      execute: () => {
        if (!table || table.isDisposed) {
          table = new RunsPanel('main');
          table.markReady();
          table.title.icon = runsIcon;
          connectPanel(table);
          app.shell.add(table, labShell ? 'main' : 'right', { rank: 900 });
        }
        table.state = panel.state;
        table.directory = panel.directory;
        app.shell.activateById(table.id);
      }
    });
    palette?.addItem({ command: CommandIDs.openTable, category: 'MLOps' });

    if (restorer) {
      void restorer.restore(runViews, {
        command: CommandIDs.openRun,
        args: w => ({ directory: w.content.directory, id: w.content.runId, restored: true }),
        name: w => w.content.id
      });
      void restorer.restore(diffs, {
        command: CommandIDs.openDiff,
        args: w => ({ directory: w.content.directory, a: w.content.a, b: w.content.b, restored: true }),
        name: w => w.content.id
      });
      void restorer.restore(charts, {
        command: CommandIDs.openCharts,
        args: w => ({ ...w.content.scope, runs: undefined, restored: true }),
        name: w => w.content.id
      });
      void restorer.restore(compares, {
        command: CommandIDs.openCompare,
        args: w => ({ directory: w.content.directory, ids: w.content.ids, restored: true }),
        name: w => w.content.id
      });
      void restorer.restore(cards, {
        command: CommandIDs.openCard,
        args: w => ({
          directory: w.content.directory,
          ref: w.content.ref,
          label: w.content.label,
          restored: true
        }),
        name: w => w.content.id
      });
    }

    function connectPanel(source: RunsPanel): void {
      source.compareRequested.connect((_, { directory, ids }) => {
        void app.commands.execute(CommandIDs.openCompare, { directory, ids });
      });
      source.cardRequested.connect((_, { directory, ref, label }) => {
        void app.commands.execute(CommandIDs.openCard, { directory, ref, label });
      });
      source.actionRequested.connect((_, { action, args }) => {
        const command = {
          run: CommandIDs.openRun,
          diff: CommandIDs.openDiff,
          charts: CommandIDs.openCharts,
          table: CommandIDs.openTable
        }[action];
        void app.commands.execute(command, args as never);
      });
    }
    connectPanel(panel);

    // a deep link (?mlops=run&path=DIR&ids=ID) opens its view once the layout is restored
    const link = parseLink(window.location.search);
    if (link) {
      void app.restored.then(() => {
        const { kind, directory, ids } = link;
        if (kind === 'run') {
          void app.commands.execute(CommandIDs.openRun, { directory, id: ids[0] });
        } else if (kind === 'compare') {
          void app.commands.execute(CommandIDs.openCompare, { directory, ids });
        } else if (kind === 'diff') {
          void app.commands.execute(CommandIDs.openDiff, { directory, a: ids[0], b: ids[1] ?? '' });
        } else {
          void app.commands.execute(CommandIDs.openCard, { directory, ref: ids[0], label: ids[0] });
        }
        const url = new URL(window.location.href);
        for (const key of ['mlops', 'path', 'ids', 'ref']) {
          url.searchParams.delete(key);
        }
        window.history.replaceState(window.history.state, '', url.toString());
      });
    }

    // a %%track cell that finished executing means a new run: refresh the table
    const watched = new WeakSet<object>();
    const watch = (widget: Widget | null): void => {
      const iopub = (widget as { sessionContext?: { iopubMessage?: IopubSignal } } | null)
        ?.sessionContext?.iopubMessage;
      if (!iopub || watched.has(iopub)) {
        return;
      }
      watched.add(iopub);
      const tracked = new Set<string>();
      iopub.connect((_: unknown, msg: IIopubMessage) => {
        const parent = msg.parent_header?.msg_id ?? '';
        if (msg.header.msg_type === 'execute_input') {
          const code = String(msg.content.code ?? '').trimStart();
          if (code.startsWith('%%track')) {
            tracked.add(parent);
          }
        } else if (
          msg.header.msg_type === 'status' &&
          msg.content.execution_state === 'idle' &&
          tracked.delete(parent)
        ) {
          void panel.refresh(true);
        }
      });
    };

    app.commands.addCommand(CommandIDs.refresh, {
      label: 'Refresh MLOps runs',
      execute: () => panel.refresh()
    });
    palette?.addItem({ command: CommandIDs.refresh, category: 'MLOps' });

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

    app.commands.addCommand(CommandIDs.showModels, {
      label: 'Review MLOps models and promotion requests',
      execute: () => {
        app.shell.activateById(panel.id);
        panel.showView('models');
      }
    });
    palette?.addItem({ command: CommandIDs.showModels, category: 'MLOps' });

    // Follow the current document: its directory (without any drive prefix) picks the store.
    const follow = (widget: Widget | null): void => {
      const path = documentPath(widget);
      if (path !== null) {
        followed = true;
        panel.directory = PathExt.dirname(app.serviceManager.contents.localPath(path));
      }
    };
    if (labShell) {
      labShell.currentChanged.connect((_, change) => {
        follow(change.newValue);
        watch(change.newValue);
      });
    } else {
      // Notebook 7: its shell says when its one document is in place (with no arguments)
      app.shell.currentChanged?.connect(() => {
        follow(app.shell.currentWidget);
        watch(app.shell.currentWidget);
      });
    }
    follow(app.shell.currentWidget);
    watch(app.shell.currentWidget);
    panel.prefetch(); // what the runs view shows, while the saved state is read
  }
};

/**
 * Asks for the runs the panel will show as soon as JupyterLab starts its plugins: it needs
 * nothing, so it is activated before the panel's plugin, whose dependencies come later. From
 * the state this browser kept (none: nothing asked).
 */
const earlyListing: JupyterFrontEndPlugin<void> = {
  id: 'mlops-jupyter:early-listing',
  description: "Starts the runs panel's first listing while JupyterLab is still starting.",
  autoStart: true,
  activate: () => {
    const saved = cachedState();
    if (saved) {
      listEarly(saved);
    }
  }
};

export default [earlyListing, plugin];
