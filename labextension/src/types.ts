/**
 * JSON shapes served by the Jupyter server extension and, through its proxy, by each engine.
 */

/** One engine info file, as `GET /tfserve-lab/engines` lists it. */
export interface IEngineRecord {
  engine_id: string;
  pid: number;
  kernel_id: string | null;
  host: string;
  rest_port: number;
  grpc_port: number;
  metrics_path: string;
  started_at: number;
  version: string;
  /** Whether the engine's REST port accepted a connection just now. */
  alive: boolean;
}

export interface IEnginesReply {
  engines: IEngineRecord[];
}

export interface IVersionStatus {
  version: number;
  state: string;
  error: string;
}

export interface IModelSummary {
  name: string;
  base_path: string;
  policy: string;
  labels: { [label: string]: number };
  split: { [version: string]: number };
  versions: IVersionStatus[];
}

/** `GET /tfserve-lab/summary` on an engine. */
export interface ISummary {
  engine: { rest_port: number; grpc_port: number; host: string };
  models: IModelSummary[];
}

export interface ISeries {
  t: number[];
  rps: number[];
  p50_ms: number[];
  p99_ms: number[];
}

export interface IVersionStats {
  requests: number;
  errors: number;
  rps: number;
  eps: number;
  latency_ms: { p50: number; p95: number; p99: number };
  series: ISeries;
}

/** `GET /tfserve-lab/stats` on an engine. */
export interface IStats {
  window_s: number;
  models: {
    [model: string]: { versions: { [version: string]: IVersionStats } };
  };
}
