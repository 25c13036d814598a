/**
 * The plugin's commands: their ids, labels and what they do, and their palette entries.
 */
import type { ICommandPalette } from '@jupyterlab/apputils';
import type { CommandRegistry } from '@lumino/commands';

import type { TfServeModel } from './model';

export namespace CommandIDs {
  /** Show the tfserve-lab side panel. */
  export const open = 'tfserve-lab:open';
  /** Refresh engines, models and stats now. */
  export const refresh = 'tfserve-lab:refresh';
}

/** The palette category of every command. */
const CATEGORY = 'TF Serving';

export namespace Commands {
  /** What the commands act on. */
  export interface IContext {
    model: TfServeModel;
    /** Bring the side panel to the front. */
    showPanel(): void;
  }
}

/** Register the commands, and list them in the palette when there is one. */
export function addCommands(
  commands: CommandRegistry,
  context: Commands.IContext,
  palette: ICommandPalette | null
): void {
  commands.addCommand(CommandIDs.open, {
    label: 'Show TF Serving Panel',
    execute: () => context.showPanel()
  });
  commands.addCommand(CommandIDs.refresh, {
    label: 'Refresh TF Serving Panel',
    execute: () => context.model.refresh()
  });
  for (const command of [CommandIDs.open, CommandIDs.refresh]) {
    palette?.addItem({ command, category: CATEGORY });
  }
}
