/**
 * The tfserve-lab JupyterLab plugin: a left side panel, a status bar item and two commands.
 */
import {
  ILabShell,
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  Clipboard,
  Dialog,
  ICommandPalette,
  Notification,
  showDialog
} from '@jupyterlab/apputils';
import { IStatusBar } from '@jupyterlab/statusbar';

import { ServerFetcher } from './api';
import { CommandIDs } from './commands';
import {
  curlSnippet,
  ISnippetTarget,
  pythonGrpcSnippet,
  pythonRestSnippet
} from './format';
import { tfserveIcon } from './icon';
import { TfServeModel } from './model';
import { IPanelActions, SnippetKind, TfServePanel } from './panel';
import { TfServeStatus } from './status';

const PLUGIN_ID = 'tfserve-lab:plugin';
const PANEL_ID = 'tfserve-lab-panel';

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Engines, models, versions and live traffic of tfserve-lab.',
  autoStart: true,
  requires: [ILabShell],
  optional: [ICommandPalette, ILayoutRestorer, IStatusBar],
  activate: (
    app: JupyterFrontEnd,
    shell: ILabShell,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    statusBar: IStatusBar | null
  ): void => {
    const model = new TfServeModel({
      fetcher: new ServerFetcher(app.serviceManager.serverSettings)
    });
    const actions = Private.actions(model);
    const panel = new TfServePanel(model, actions);
    panel.id = PANEL_ID;
    panel.title.icon = tfserveIcon;
    panel.title.caption = 'TF Serving';
    shell.add(panel, 'left', { rank: 900 });
    restorer?.add(panel, PANEL_ID);

    app.commands.addCommand(CommandIDs.open, {
      label: 'Show TF Serving Panel',
      execute: () => shell.activateById(PANEL_ID)
    });
    app.commands.addCommand(CommandIDs.refresh, {
      label: 'Refresh TF Serving Panel',
      execute: () => model.refresh()
    });
    palette?.addItem({ command: CommandIDs.open, category: 'TF Serving' });
    palette?.addItem({ command: CommandIDs.refresh, category: 'TF Serving' });

    if (statusBar) {
      const item = new TfServeStatus(
        model,
        () => void app.commands.execute(CommandIDs.open)
      );
      statusBar.registerStatusItem(PLUGIN_ID, {
        item,
        align: 'left',
        rank: 5,
        isActive: () => item.active,
        activeStateChanged: model.changed
      });
    }
  }
};

namespace Private {
  const SNIPPETS: {
    [K in SnippetKind]: [string, (t: ISnippetTarget) => string];
  } = {
    curl: ['curl', curlSnippet],
    python: ['Python requests', pythonRestSnippet],
    grpc: ['Python gRPC', t => pythonGrpcSnippet(t)]
  };

  export function actions(model: TfServeModel): IPanelActions {
    return {
      refresh: () => void model.refresh(),
      copySnippet: (kind, target) => {
        const [label, make] = SNIPPETS[kind];
        Clipboard.copyToSystem(make(target));
        Notification.success(`Copied a ${label} snippet for ${target.model}.`, {
          autoClose: 3000
        });
      },
      unload: (engineId, name, version) =>
        void confirmUnload(model, engineId, name, version)
    };
  }

  async function confirmUnload(
    model: TfServeModel,
    engineId: string,
    name: string,
    version: number
  ): Promise<void> {
    const result = await showDialog({
      title: 'Unload version',
      body: `Unload ${name} version ${version}? Requests for it will fail until it is loaded again.`,
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Unload' })]
    });
    if (!result.button.accept) {
      return;
    }
    try {
      await model.unload(engineId, name, version);
      Notification.info(`Unloaded ${name} version ${version}.`, {
        autoClose: 3000
      });
    } catch (error) {
      Notification.error(
        `Could not unload ${name} version ${version}: ${(error as Error).message}`
      );
    }
  }
}

export default plugin;
