import { Signal } from '@lumino/signaling';

import schema from '../../schema/plugin.json';
import type { IFetcher } from '../api';
import { DEFAULT_POLL_INTERVAL, TfServeModel } from '../model';
import {
  followSettings,
  IPanelSettings,
  POLL_INTERVAL_SETTING,
  pollInterval
} from '../settings';
import type { IEngineRecord, IStats, ISummary } from '../types';

/** Settings whose values the test sets, signalling each change as the registry does. */
class FakeSettings implements IPanelSettings {
  constructor(private _values: { [key: string]: number } = {}) {}

  readonly changed = new Signal<this, void>(this);

  /** How often the values were read. */
  reads = 0;

  get composite(): { [key: string]: number } {
    this.reads += 1;
    return this._values;
  }

  set(key: string, value: number): void {
    this._values = { ...this._values, [key]: value };
    this.changed.emit();
  }
}

/** A server without engines that counts how often the model asks for them. */
class CountingFetcher implements IFetcher {
  calls = 0;

  async engines(): Promise<IEngineRecord[]> {
    this.calls += 1;
    return [];
  }
  summary(): Promise<ISummary> {
    throw new Error('no engines, so no summary is asked for');
  }
  stats(): Promise<IStats> {
    throw new Error('no engines, so no stats are asked for');
  }
  async unload(): Promise<void> {}
}

describe('the settings schema', () => {
  it('defaults the poll interval to the model default', () => {
    expect(schema.properties[POLL_INTERVAL_SETTING].default).toBe(
      DEFAULT_POLL_INTERVAL
    );
  });
});

describe('pollInterval', () => {
  it('reads the setting', () => {
    expect(pollInterval(new FakeSettings({ pollInterval: 5000 }))).toBe(5000);
  });

  it('falls back to the default when the setting is absent', () => {
    expect(pollInterval(new FakeSettings())).toBe(DEFAULT_POLL_INTERVAL);
  });
});

describe('followSettings', () => {
  let fetcher: CountingFetcher;
  let model: TfServeModel;

  beforeEach(() => {
    // Promises settle as usual; only the poll's timeouts wait for the test to advance the clock.
    jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask'] });
    fetcher = new CountingFetcher();
    model = new TfServeModel({ fetcher, auto: false });
  });

  afterEach(() => {
    model.dispose();
    jest.useRealTimers();
  });

  it('polls at the interval the settings give, and at a changed one as soon as it changes', async () => {
    expect(model.interval).toBe(DEFAULT_POLL_INTERVAL);
    const settings = new FakeSettings({ pollInterval: 5000 });

    followSettings(settings, model);
    expect(model.interval).toBe(5000);
    await jest.advanceTimersByTimeAsync(0);
    expect(fetcher.calls).toBe(1);
    await jest.advanceTimersByTimeAsync(4999);
    expect(fetcher.calls).toBe(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(fetcher.calls).toBe(2);

    // A shorter interval does not wait out the 5 s already scheduled.
    await jest.advanceTimersByTimeAsync(1000);
    settings.set(POLL_INTERVAL_SETTING, 1000);
    expect(model.interval).toBe(1000);
    await jest.advanceTimersByTimeAsync(0);
    expect(fetcher.calls).toBe(3);
    await jest.advanceTimersByTimeAsync(999);
    expect(fetcher.calls).toBe(3);
    await jest.advanceTimersByTimeAsync(1);
    expect(fetcher.calls).toBe(4);
  });

  it('stops reading the settings once the model is disposed', () => {
    const settings = new FakeSettings({ pollInterval: 5000 });
    followSettings(settings, model);
    settings.set(POLL_INTERVAL_SETTING, 1000);
    expect(settings.reads).toBe(2);
    model.dispose();
    settings.set(POLL_INTERVAL_SETTING, 3000);
    expect(settings.reads).toBe(2);
  });
});
