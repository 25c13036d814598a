/**
 * Pure functions the panel renders with: number formatting, sparkline paths, client snippets.
 */

/** Requests per second: `0/s`, `0.25/s`, `3.4/s`, `42/s`, `1.2k/s`. */
export function formatRate(rps: number): string {
  if (!Number.isFinite(rps) || rps <= 0) {
    return '0/s';
  }
  if (rps >= 1000) {
    return `${trim(rps / 1000, rps >= 10000 ? 0 : 1)}k/s`;
  }
  if (rps >= 10) {
    return `${Math.round(rps)}/s`;
  }
  return `${trim(rps, rps < 1 ? 2 : 1)}/s`;
}

/** A latency in milliseconds: `–` when unknown, `0.42 ms`, `12.3 ms`, `250 ms`, `1.25 s`. */
export function formatLatency(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) {
    return '–';
  }
  if (ms >= 1000) {
    return `${trim(ms / 1000, 2)} s`;
  }
  if (ms >= 100) {
    return `${Math.round(ms)} ms`;
  }
  return `${trim(ms, ms < 1 ? 2 : 1)} ms`;
}

/** A count with thousands grouped by thin spaces: `1 234 567`. */
export function formatCount(n: number): string {
  return Math.round(n)
    .toString()
    .replace(/\B(?=(\d{3})+(?!\d))/g, '\u2009');
}

function trim(value: number, digits: number): string {
  return value.toFixed(digits).replace(/\.?0+$/, '');
}

/** How a version state should look: serving, in flux, unloaded, or failed. */
export type StateKind = 'ok' | 'busy' | 'idle' | 'error';

export function stateKind(state: string, error = ''): StateKind {
  if (error) {
    return 'error';
  }
  if (state === 'AVAILABLE') {
    return 'ok';
  }
  return state === 'END' ? 'idle' : 'busy';
}

/** Options for {@link sparklinePath}. */
export interface ISparklineOptions {
  width: number;
  height: number;
  /** Fixed top of the scale; defaults to the largest value (at least 1e-9, so all-zero is a flat line). */
  max?: number;
  /** Vertical padding so the stroke is not clipped. */
  pad?: number;
}

/**
 * The SVG path (`M x,y L x,y …`) of a sparkline through `values`, left to right over `width`.
 * Non-finite and negative values draw as zero; one value draws a flat line; none draws nothing.
 */
export function sparklinePath(
  values: readonly number[],
  options: ISparklineOptions
): string {
  const { width, height } = options;
  const pad = options.pad ?? 1;
  if (values.length === 0 || width <= 0 || height <= 0) {
    return '';
  }
  const clean = values.map(v => (Number.isFinite(v) && v > 0 ? v : 0));
  const max = Math.max(options.max ?? Math.max(...clean), 1e-9);
  const usable = Math.max(height - 2 * pad, 0);
  const y = (v: number): number =>
    round(pad + usable - (Math.min(v, max) / max) * usable);
  if (clean.length === 1) {
    return `M0,${y(clean[0])} L${round(width)},${y(clean[0])}`;
  }
  const step = width / (clean.length - 1);
  return clean
    .map((v, i) => `${i === 0 ? 'M' : 'L'}${round(i * step)},${y(v)}`)
    .join(' ');
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

/** Where a client snippet sends its request. */
export interface ISnippetTarget {
  model: string;
  host: string;
  restPort: number;
  grpcPort: number;
  /** Pin a version (`/versions/N`); omitted means the model's default routing. */
  version?: number;
  /** Pin a label (`/labels/L`); ignored when `version` is given. */
  label?: string;
  /** Example input row; TF Serving's half_plus_two example by default. */
  instances?: unknown[];
}

const DEFAULT_INSTANCES = [1.0, 2.0, 5.0];

/** The loopback address to reach an engine that listens on all interfaces. */
function clientHost(host: string): string {
  return host === '' || host === '0.0.0.0' || host === '::'
    ? '127.0.0.1'
    : host;
}

/** The REST predict URL, TF Serving style. */
export function predictUrl(target: ISnippetTarget): string {
  const base = `http://${clientHost(target.host)}:${target.restPort}/v1/models/${encodeURIComponent(target.model)}`;
  if (target.version !== undefined) {
    return `${base}/versions/${target.version}:predict`;
  }
  if (target.label) {
    return `${base}/labels/${encodeURIComponent(target.label)}:predict`;
  }
  return `${base}:predict`;
}

function instancesJson(target: ISnippetTarget): string {
  return JSON.stringify({ instances: target.instances ?? DEFAULT_INSTANCES });
}

/** A `curl` command that calls predict on the engine's REST port. */
export function curlSnippet(target: ISnippetTarget): string {
  const body = instancesJson(target).replace(/'/g, "'\\''");
  return [
    `curl -s -X POST ${predictUrl(target)} \\`,
    "  -H 'Content-Type: application/json' \\",
    `  -d '${body}'`
  ].join('\n');
}

/** A Python `requests` snippet for the REST API. */
export function pythonRestSnippet(target: ISnippetTarget): string {
  return [
    'import requests',
    '',
    `url = ${pyString(predictUrl(target))}`,
    `response = requests.post(url, json=${pyLiteral(target.instances ?? DEFAULT_INSTANCES, 'instances')}, timeout=10)`,
    'response.raise_for_status()',
    'print(response.json()["predictions"])'
  ].join('\n');
}

/** A Python gRPC snippet (tensorflow-serving-api's PredictionService). */
export function pythonGrpcSnippet(
  target: ISnippetTarget,
  inputName = 'x'
): string {
  const spec = [`request.model_spec.name = ${pyString(target.model)}`];
  if (target.version !== undefined) {
    spec.push(`request.model_spec.version.value = ${target.version}`);
  } else if (target.label) {
    spec.push(`request.model_spec.version_label = ${pyString(target.label)}`);
  }
  const values = JSON.stringify(target.instances ?? DEFAULT_INSTANCES);
  return [
    'import grpc',
    'import tensorflow as tf',
    'from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc',
    '',
    `channel = grpc.insecure_channel(${pyString(`${clientHost(target.host)}:${target.grpcPort}`)})`,
    'stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)',
    'request = predict_pb2.PredictRequest()',
    ...spec,
    'request.model_spec.signature_name = "serving_default"',
    `request.inputs[${pyString(inputName)}].CopyFrom(tf.make_tensor_proto(${values}, dtype=tf.float32))`,
    'print(stub.Predict(request, timeout=10.0).outputs)'
  ].join('\n');
}

/** A Python string literal (JSON's escaping is valid Python for these strings). */
function pyString(s: string): string {
  return JSON.stringify(s);
}

function pyLiteral(instances: unknown[], key: string): string {
  return `{${pyString(key)}: ${JSON.stringify(instances)
    .replace(/\btrue\b/g, 'True')
    .replace(/\bfalse\b/g, 'False')
    .replace(/\bnull\b/g, 'None')}}`;
}
