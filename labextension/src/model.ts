/**
 * The panel's data: engines joined with their models and live stats, refreshed by a backing-off Poll.
 */
import { IPoll, Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import type { IFetcher } from './api';
import type {
  IEngineRecord,
  IModelSummary,
  IStats,
  ISummary,
  IVersionStats
} from './types';

/** One version row of the panel. */
export interface IVersionView {
  version: number;
  state: string;
  error: string;
  /** Labels pointing at this version, sorted. */
  labels: string[];
  /** Percent of the model's traffic split, or null when the model has no split. */
  weight: number | null;
  stats: IVersionStats | null;
}

export interface IModelView {
  name: string;
  basePath: string;
  policy: string;
  versions: IVersionView[];
  /** Requests per second over all versions. */
  rps: number;
}

export interface IEngineView {
  engine: IEngineRecord;
  models: IModelView[];
  /** Why this engine's summary or stats could not be read, or null. */
  error: string | null;
}

export interface ITotals {
  engines: number;
  models: number;
  rps: number;
  /** Versions failed or with errors in the window. */
  problems: number;
}

/** Join an engine's summary with its stats into view rows (pure; the model and tests call it). */
export function joinEngine(
  engine: IEngineRecord,
  summary: ISummary | null,
  stats: IStats | null,
  error: string | null = null
): IEngineView {
  const models = (summary?.models ?? []).map(m => joinModel(m, stats));
  models.sort((a, b) => a.name.localeCompare(b.name));
  return { engine, models, error };
}

function joinModel(model: IModelSummary, stats: IStats | null): IModelView {
  const perVersion = stats?.models[model.name]?.versions ?? {};
  const hasSplit = Object.keys(model.split ?? {}).length > 0;
  const versions = model.versions.map(v => {
    const labels = Object.entries(model.labels ?? {})
      .filter(([, version]) => version === v.version)
      .map(([label]) => label)
      .sort();
    return {
      version: v.version,
      state: v.state,
      error: v.error ?? '',
      labels,
      weight: hasSplit ? (model.split[String(v.version)] ?? 0) : null,
      stats: perVersion[String(v.version)] ?? null
    };
  });
  versions.sort((a, b) => b.version - a.version);
  const rps = versions.reduce((sum, v) => sum + (v.stats?.rps ?? 0), 0);
  return {
    name: model.name,
    basePath: model.base_path,
    policy: model.policy,
    versions,
    rps
  };
}

/** Totals for the status bar. */
export function totals(views: readonly IEngineView[]): ITotals {
  let models = 0;
  let rps = 0;
  let problems = 0;
  for (const view of views) {
    models += view.models.length;
    for (const model of view.models) {
      rps += model.rps;
      for (const v of model.versions) {
        if (v.error || (v.stats?.eps ?? 0) > 0) {
          problems += 1;
        }
      }
    }
    if (view.error) {
      problems += 1;
    }
  }
  return { engines: views.length, models, rps, problems };
}

/** Milliseconds between refreshes while visible, unless the settings say otherwise. */
export const DEFAULT_POLL_INTERVAL = 2000;

/** The longest wait between refreshes, which backoff after failures grows towards. */
const MAX_POLL_INTERVAL = 60 * 1000;

/** The poll's schedule for one interval: back off after failures, up to a minute. */
function pollFrequency(interval: number): IPoll.Frequency {
  if (!(interval > 0 && interval <= MAX_POLL_INTERVAL)) {
    throw new RangeError(
      `The poll interval must be between 1 and ${MAX_POLL_INTERVAL} ms, not ${interval}.`
    );
  }
  return { interval, backoff: true, max: MAX_POLL_INTERVAL };
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export namespace TfServeModel {
  export interface IOptions {
    fetcher: IFetcher;
    /** Milliseconds between refreshes while visible (default `DEFAULT_POLL_INTERVAL`). */
    interval?: number;
    /** Start polling at once (default true; tests call `update()` themselves). */
    auto?: boolean;
  }
}

/** Engines, models and stats, polled with backoff and paused while the page is hidden. */
export class TfServeModel {
  constructor(options: TfServeModel.IOptions) {
    this._fetcher = options.fetcher;
    this._poll = new Poll({
      auto: options.auto ?? true,
      factory: () => this.update(),
      frequency: pollFrequency(options.interval ?? DEFAULT_POLL_INTERVAL),
      name: 'tfserve-lab:model',
      standby: 'when-hidden'
    });
  }

  /** Emitted after every refresh, successful or not. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get engines(): readonly IEngineView[] {
    return this._engines;
  }

  /** Why the engine list could not be read at the last refresh, or null. */
  get error(): string | null {
    return this._error;
  }

  /** Whether at least one refresh has finished. */
  get loaded(): boolean {
    return this._loaded;
  }

  get totals(): ITotals {
    return totals(this._engines);
  }

  get isDisposed(): boolean {
    return this._poll.isDisposed;
  }

  /** Milliseconds between refreshes while visible. */
  get interval(): number {
    return this._poll.frequency.interval;
  }

  /**
   * Change the refresh interval and refresh at once, so a wait scheduled under the old
   * interval does not hold the new one back.
   */
  set interval(milliseconds: number) {
    if (milliseconds === this.interval || this.isDisposed) {
      return;
    }
    this._poll.frequency = pollFrequency(milliseconds);
    void this._poll.refresh();
  }

  /** Refresh now, outside the schedule (the poll then continues from here). */
  refresh(): Promise<void> {
    return this._poll.refresh();
  }

  /**
   * Fetch everything once. Rejects when the engine list cannot be read (the poll then backs off);
   * an engine that fails is shown with its error instead.
   */
  async update(): Promise<void> {
    try {
      const records = await this._fetcher.engines();
      this._engines = await Promise.all(records.map(r => this._engineView(r)));
      this._error = null;
    } catch (error) {
      this._error = message(error);
      throw error;
    } finally {
      this._loaded = true;
      this._changed.emit();
    }
  }

  /** Unload one version, then refresh. */
  async unload(
    engineId: string,
    model: string,
    version: number
  ): Promise<void> {
    await this._fetcher.unload(engineId, model, version);
    await this.refresh();
  }

  dispose(): void {
    this._poll.dispose();
    Signal.clearData(this);
  }

  private async _engineView(record: IEngineRecord): Promise<IEngineView> {
    if (!record.alive) {
      return joinEngine(
        record,
        null,
        null,
        'The engine does not answer on its REST port.'
      );
    }
    // Stats are optional for the view: a model list without traffic beats an error.
    const [summary, stats] = await Promise.allSettled([
      this._fetcher.summary(record.engine_id),
      this._fetcher.stats(record.engine_id)
    ]);
    if (summary.status === 'rejected') {
      return joinEngine(record, null, null, message(summary.reason));
    }
    if (stats.status === 'rejected') {
      return joinEngine(
        record,
        summary.value,
        null,
        `No statistics: ${message(stats.reason)}`
      );
    }
    return joinEngine(record, summary.value, stats.value);
  }

  private readonly _fetcher: IFetcher;
  private readonly _poll: Poll;
  private readonly _changed = new Signal<this, void>(this);
  private _engines: IEngineView[] = [];
  private _error: string | null = null;
  private _loaded = false;
}
