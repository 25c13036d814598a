/**
 * The panel's user settings (schema/plugin.json), applied to the model as they change.
 */
import type { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import type { ISignal } from '@lumino/signaling';

import { DEFAULT_POLL_INTERVAL, TfServeModel } from './model';

/** The setting in schema/plugin.json that holds the refresh interval. */
export const POLL_INTERVAL_SETTING = 'pollInterval';

/** What these functions read of `ISettingRegistry.ISettings`; tests give a fake. */
export interface IPanelSettings {
  /** User values over the schema's defaults. */
  readonly composite: ReadonlyPartialJSONObject;
  readonly changed: ISignal<unknown, void>;
}

/** The refresh interval in milliseconds the settings ask for. */
export function pollInterval(settings: IPanelSettings): number {
  const value = settings.composite[POLL_INTERVAL_SETTING];
  return typeof value === 'number' ? value : DEFAULT_POLL_INTERVAL;
}

/** Apply the settings to the model now and whenever they change, until the model is disposed. */
export function followSettings(
  settings: IPanelSettings,
  model: TfServeModel
): void {
  const apply = (): void => {
    model.interval = pollInterval(settings);
  };
  apply();
  // The model as receiver: disposing it (Signal.clearData) ends the connection.
  settings.changed.connect(apply, model);
}
