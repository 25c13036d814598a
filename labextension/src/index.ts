/**
 * The tfserve-lab JupyterLab plugin: a left side panel, a status bar item, two commands and settings.
 */
import {
  ILabShell,
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';

import { panelActions } from './actions';
import { ServerFetcher } from './api';
import { addCommands, CommandIDs } from './commands';
import { tfserveIcon } from './icon';
import { TfServeModel } from './model';
import { TfServePanel } from './panel';
import { followSettings } from './settings';
import { TfServeStatus } from './status';

/** Also names the settings schema: schema/plugin.json. */
const PLUGIN_ID = 'tfserve-lab:plugin';
const PANEL_ID = 'tfserve-lab-panel';

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Engines, models, versions and live traffic of tfserve-lab.',
  autoStart: true,
  requires: [ILabShell],
  optional: [ICommandPalette, ILayoutRestorer, IStatusBar, ISettingRegistry],
  activate: (
    app: JupyterFrontEnd,
    shell: ILabShell,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    statusBar: IStatusBar | null,
    settingRegistry: ISettingRegistry | null
  ): void => {
    const model = new TfServeModel({
      fetcher: new ServerFetcher(app.serviceManager.serverSettings)
    });
    const panel = new TfServePanel(model, panelActions(model));
    panel.id = PANEL_ID;
    panel.title.icon = tfserveIcon;
    panel.title.caption = 'TF Serving';
    shell.add(panel, 'left', { rank: 900 });
    restorer?.add(panel, PANEL_ID);

    addCommands(
      app.commands,
      { model, showPanel: () => shell.activateById(PANEL_ID) },
      palette
    );

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

    // Without settings the panel keeps its default interval; loading them must not hold up activation.
    settingRegistry
      ?.load(PLUGIN_ID)
      .then(settings => followSettings(settings, model))
      .catch(reason =>
        console.error(`tfserve-lab: could not load settings: ${reason}`)
      );
  }
};

export default plugin;
