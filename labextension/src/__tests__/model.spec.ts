import type { IFetcher } from '../api';
import { joinEngine, TfServeModel, totals } from '../model';
import type { IEngineRecord, IStats, ISummary, IVersionStats } from '../types';

function record(id: string, alive = true): IEngineRecord {
  return {
    engine_id: id,
    pid: 1,
    kernel_id: 'k-' + id,
    host: '127.0.0.1',
    rest_port: 8501,
    grpc_port: 8500,
    metrics_path: '/monitoring/prometheus/metrics',
    started_at: 1,
    version: '0.1.0',
    alive
  };
}

const summary: ISummary = {
  engine: { rest_port: 8501, grpc_port: 8500, host: '127.0.0.1' },
  models: [
    {
      name: 'two',
      base_path: '/m/two',
      policy: 'all',
      labels: { stable: 1, canary: 2, also: 2 },
      split: { '1': 90, '2': 10 },
      versions: [
        { version: 1, state: 'AVAILABLE', error: '' },
        { version: 2, state: 'AVAILABLE', error: '' }
      ]
    },
    {
      name: 'alpha',
      base_path: '/m/alpha',
      policy: 'latest:1',
      labels: {},
      split: {},
      versions: [{ version: 7, state: 'END', error: 'Could not load' }]
    }
  ]
};

function vstats(rps: number, eps = 0): IVersionStats {
  return {
    requests: rps * 60,
    errors: eps * 60,
    rps,
    eps,
    latency_ms: { p50: 1, p95: 2, p99: 3 },
    series: { t: [1, 2], rps: [0, rps], p50_ms: [1, 1], p99_ms: [3, 3] }
  };
}

const stats: IStats = {
  window_s: 60,
  models: { two: { versions: { '1': vstats(9), '2': vstats(1, 0.5) } } }
};

describe('joinEngine', () => {
  it('joins versions with labels, split weights and stats, newest first, models by name', () => {
    const view = joinEngine(record('e'), summary, stats);
    expect(view.models.map(m => m.name)).toEqual(['alpha', 'two']);
    const two = view.models[1];
    expect(two.rps).toBe(10);
    expect(
      two.versions.map(v => [v.version, v.labels, v.weight, v.stats?.rps])
    ).toEqual([
      [2, ['also', 'canary'], 10, 1],
      [1, ['stable'], 90, 9]
    ]);
    const alpha = view.models[0];
    expect(alpha.versions[0]).toMatchObject({
      weight: null,
      stats: null,
      error: 'Could not load'
    });
  });

  it('tolerates a missing summary', () => {
    expect(joinEngine(record('e'), null, null, 'down')).toEqual({
      engine: record('e'),
      models: [],
      error: 'down'
    });
  });
});

describe('totals', () => {
  it('counts models, requests per second and problems', () => {
    const views = [
      joinEngine(record('a'), summary, stats),
      joinEngine(record('b'), null, null, 'x')
    ];
    // problems: alpha v7 failed, two v2 has errors in the window, engine b unreadable.
    expect(totals(views)).toEqual({
      engines: 2,
      models: 2,
      rps: 10,
      problems: 3
    });
  });
});

class FakeFetcher implements IFetcher {
  engineList: IEngineRecord[] = [record('e1'), record('dead', false)];
  failStats = false;
  failEngines = false;
  unloaded: Array<[string, string, number]> = [];

  async engines(): Promise<IEngineRecord[]> {
    if (this.failEngines) {
      throw new Error('server gone');
    }
    return this.engineList;
  }
  async summary(): Promise<ISummary> {
    return summary;
  }
  async stats(): Promise<IStats> {
    if (this.failStats) {
      throw new Error('no stats here');
    }
    return stats;
  }
  async unload(
    engineId: string,
    model: string,
    version: number
  ): Promise<void> {
    this.unloaded.push([engineId, model, version]);
  }
}

describe('TfServeModel', () => {
  let fetcher: FakeFetcher;
  let model: TfServeModel;

  beforeEach(() => {
    fetcher = new FakeFetcher();
    model = new TfServeModel({ fetcher, auto: false });
  });

  afterEach(() => {
    model.dispose();
  });

  it('loads engines, marking dead ones, and signals', async () => {
    let changes = 0;
    model.changed.connect(() => (changes += 1));
    expect(model.loaded).toBe(false);
    await model.update();
    expect(changes).toBe(1);
    expect(model.loaded).toBe(true);
    expect(
      model.engines.map(e => [e.engine.engine_id, e.models.length, e.error])
    ).toEqual([
      ['e1', 2, null],
      ['dead', 0, 'The engine does not answer on its REST port.']
    ]);
    expect(model.totals.rps).toBe(10);
  });

  it('keeps the model list when only stats fail', async () => {
    fetcher.failStats = true;
    await model.update();
    const view = model.engines[0];
    expect(view.models).toHaveLength(2);
    expect(view.error).toBe('No statistics: no stats here');
  });

  it('rejects and reports when the engine list cannot be read, keeping the last engines', async () => {
    await model.update();
    fetcher.failEngines = true;
    await expect(model.update()).rejects.toThrow('server gone');
    expect(model.error).toBe('server gone');
    expect(model.engines).toHaveLength(2);
    fetcher.failEngines = false;
    await model.update();
    expect(model.error).toBeNull();
  });

  it('unloads through the fetcher', async () => {
    await model.update();
    await model.unload('e1', 'two', 2);
    expect(fetcher.unloaded).toEqual([['e1', 'two', 2]]);
  });
});
