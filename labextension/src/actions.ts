/**
 * What the panel's buttons do: copy client snippets, confirm and unload a version, refresh.
 */
import {
  Clipboard,
  Dialog,
  Notification,
  showDialog
} from '@jupyterlab/apputils';

import {
  curlSnippet,
  ISnippetTarget,
  pythonGrpcSnippet,
  pythonRestSnippet
} from './format';
import type { TfServeModel } from './model';
import type { IPanelActions, SnippetKind } from './panel';

/** Each snippet kind's name in the notification, and how to write it. */
const SNIPPETS: {
  [K in SnippetKind]: [string, (t: ISnippetTarget) => string];
} = {
  curl: ['curl', curlSnippet],
  python: ['Python requests', pythonRestSnippet],
  grpc: ['Python gRPC', pythonGrpcSnippet]
};

/** The panel's actions over the model, with JupyterLab's dialogs, clipboard and notifications. */
export function panelActions(model: TfServeModel): IPanelActions {
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
