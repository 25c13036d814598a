/**
 * The only module that talks HTTP: the server extension's routes, through Jupyter's own origin and auth.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import type { IEngineRecord, IEnginesReply, IStats, ISummary } from './types';

/**
 * Call `<base_url>/tfserve-lab/<endPoint>` and parse its JSON reply.
 *
 * @throws ServerConnection.NetworkError when the server cannot be reached,
 *   ServerConnection.ResponseError for a non-2xx reply.
 */
export async function requestAPI<T>(
  endPoint: string,
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, 'tfserve-lab', endPoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  let data: unknown = text;
  if (text.length > 0) {
    try {
      data = JSON.parse(text);
    } catch {
      // Not JSON (an HTML error page from a proxy in front of Jupyter): keep the text for the message.
    }
  }
  if (!response.ok) {
    const message =
      typeof data === 'object' && data !== null && 'message' in data
        ? String((data as { message: unknown }).message)
        : typeof data === 'object' && data !== null && 'error' in data
          ? String((data as { error: unknown }).error)
          : response.statusText;
    throw new ServerConnection.ResponseError(response, message);
  }
  return data as T;
}

/** The path, under the server extension, that proxies to one engine's REST port. */
export function proxyPath(engineId: string, path: string): string {
  return URLExt.join('engines', encodeURIComponent(engineId), 'proxy', path);
}

/** What the model needs from the server; tests give a fake. */
export interface IFetcher {
  engines(): Promise<IEngineRecord[]>;
  summary(engineId: string): Promise<ISummary>;
  stats(engineId: string): Promise<IStats>;
  unload(engineId: string, model: string, version: number): Promise<void>;
}

/** The real fetcher over `requestAPI`. */
export class ServerFetcher implements IFetcher {
  constructor(
    private readonly settings: ServerConnection.ISettings = ServerConnection.makeSettings()
  ) {}

  async engines(): Promise<IEngineRecord[]> {
    const reply = await requestAPI<IEnginesReply>('engines', {}, this.settings);
    return reply.engines;
  }

  summary(engineId: string): Promise<ISummary> {
    return requestAPI<ISummary>(
      proxyPath(engineId, 'tfserve-lab/summary'),
      {},
      this.settings
    );
  }

  stats(engineId: string): Promise<IStats> {
    return requestAPI<IStats>(
      proxyPath(engineId, 'tfserve-lab/stats'),
      {},
      this.settings
    );
  }

  async unload(
    engineId: string,
    model: string,
    version: number
  ): Promise<void> {
    const path = `tfserve-lab/models/${encodeURIComponent(model)}/versions/${version}/unload`;
    await requestAPI<unknown>(
      proxyPath(engineId, path),
      { method: 'POST', body: '{}' },
      this.settings
    );
  }
}
