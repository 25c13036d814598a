/**
 * The side panel: engines, their models and versions, with live rates, latency sparklines and actions.
 */
import { Widget } from '@lumino/widgets';

import { h, sparkline } from './dom';
import {
  formatCount,
  formatLatency,
  formatRate,
  ISnippetTarget,
  sparklinePath,
  stateKind
} from './format';
import type {
  IEngineView,
  IModelView,
  IVersionView,
  TfServeModel
} from './model';

/** Which client snippet to copy. */
export type SnippetKind = 'curl' | 'python' | 'grpc';

/** What the panel asks its host to do; index.ts wires dialogs, the clipboard and notifications. */
export interface IPanelActions {
  copySnippet(kind: SnippetKind, target: ISnippetTarget): void;
  unload(engineId: string, model: string, version: number): void;
  refresh(): void;
}

const SPARK_W = 56;
const SPARK_H = 16;

export class TfServePanel extends Widget {
  constructor(
    private readonly model: TfServeModel,
    private readonly actions: IPanelActions
  ) {
    super();
    this.addClass('jp-TfServe');
    this.node.addEventListener('click', this._onClick);
    model.changed.connect(this.render, this);
    this.render();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.node.removeEventListener('click', this._onClick);
    this.model.changed.disconnect(this.render, this);
    super.dispose();
  }

  /** Rebuild the content from the model (cheap: a handful of engines and models). */
  render(): void {
    const { engines, error, loaded } = this.model;
    const totals = this.model.totals;
    const header = h(
      'header',
      { class: 'jp-TfServe-header' },
      h('span', { class: 'jp-TfServe-title' }, 'TF Serving'),
      h(
        'span',
        { class: 'jp-TfServe-summary' },
        `${totals.models} model${totals.models === 1 ? '' : 's'} · ${formatRate(totals.rps)}`
      ),
      h(
        'button',
        {
          class: 'jp-TfServe-button',
          'data-action': 'refresh',
          title: 'Refresh now'
        },
        '⟳'
      )
    );
    const body: Node[] = [];
    if (error) {
      body.push(
        h(
          'div',
          { class: 'jp-TfServe-banner jp-mod-error' },
          `Cannot list engines: ${error}`
        )
      );
    }
    if (loaded && engines.length === 0 && !error) {
      body.push(emptyState());
    }
    for (const view of engines) {
      body.push(engineSection(view));
    }
    this.node.replaceChildren(header, ...body);
  }

  private readonly _onClick = (event: MouseEvent): void => {
    const button = (event.target as Element).closest<HTMLElement>(
      '[data-action]'
    );
    if (!button || !this.node.contains(button)) {
      return;
    }
    const data = button.dataset;
    if (data.action === 'refresh') {
      this.actions.refresh();
      return;
    }
    const view = this.model.engines.find(
      v => v.engine.engine_id === data.engine
    );
    if (!view || !data.model) {
      return;
    }
    if (data.action === 'unload' && data.version) {
      this.actions.unload(
        view.engine.engine_id,
        data.model,
        Number(data.version)
      );
    } else if (data.action === 'copy' && data.kind) {
      this.actions.copySnippet(data.kind as SnippetKind, {
        model: data.model,
        host: view.engine.host,
        restPort: view.engine.rest_port,
        grpcPort: view.engine.grpc_port
      });
    }
  };
}

function emptyState(): HTMLElement {
  return h(
    'div',
    { class: 'jp-TfServe-empty' },
    h('p', {}, 'No serving engine is running in this Jupyter server.'),
    h('p', {}, 'Start one from a notebook:'),
    h(
      'pre',
      {},
      'import tfserve_lab.api as tfs\ntfs.start()\ntfs.deploy("my_model", base_path="/path/to/model")'
    )
  );
}

function engineSection(view: IEngineView): HTMLElement {
  const e = view.engine;
  const kernel = e.kernel_id
    ? `kernel ${e.kernel_id.slice(0, 8)}`
    : `pid ${e.pid}`;
  return h(
    'section',
    { class: 'jp-TfServe-engine', 'data-engine': e.engine_id },
    h(
      'div',
      {
        class: 'jp-TfServe-engineHead',
        title: `engine ${e.engine_id} · tfserve-lab ${e.version}`
      },
      h('span', {
        class: `jp-TfServe-dot ${e.alive ? 'jp-mod-ok' : 'jp-mod-error'}`
      }),
      h('span', { class: 'jp-TfServe-kernel' }, kernel),
      h(
        'span',
        { class: 'jp-TfServe-ports' },
        `REST :${e.rest_port} · gRPC :${e.grpc_port}`
      )
    ),
    view.error &&
      h('div', { class: 'jp-TfServe-banner jp-mod-error' }, view.error),
    view.models.length === 0 && !view.error
      ? h('div', { class: 'jp-TfServe-muted' }, 'No models deployed.')
      : null,
    ...view.models.map(m => modelBlock(e.engine_id, m))
  );
}

function modelBlock(engineId: string, model: IModelView): HTMLElement {
  const copy = (kind: SnippetKind, label: string): HTMLElement =>
    h(
      'button',
      {
        class: 'jp-TfServe-button',
        'data-action': 'copy',
        'data-kind': kind,
        'data-engine': engineId,
        'data-model': model.name,
        title: `Copy a ${label} snippet that calls ${model.name}`
      },
      label
    );
  return h(
    'div',
    { class: 'jp-TfServe-model', 'data-model': model.name },
    h(
      'div',
      { class: 'jp-TfServe-modelHead' },
      h(
        'span',
        { class: 'jp-TfServe-modelName', title: model.basePath },
        model.name
      ),
      h('span', { class: 'jp-TfServe-muted' }, model.policy),
      h('span', { class: 'jp-TfServe-spacer' }),
      h(
        'span',
        { class: 'jp-TfServe-muted', title: 'copy a client snippet' },
        'copy:'
      ),
      copy('curl', 'curl'),
      copy('python', 'requests'),
      copy('grpc', 'gRPC')
    ),
    ...model.versions.map(v => versionRow(engineId, model.name, v))
  );
}

/** One version: a head line (number, tags, state, unload) and a traffic line (rate and latency). */
function versionRow(
  engineId: string,
  model: string,
  v: IVersionView
): HTMLElement {
  const kind = stateKind(v.state, v.error);
  const s = v.stats;
  const erroring = (s?.eps ?? 0) > 0;
  const head = h(
    'div',
    { class: 'jp-TfServe-versionHead' },
    h('span', { class: 'jp-TfServe-versionNumber' }, `v${v.version}`),
    ...v.labels.map(l => h('span', { class: 'jp-TfServe-tag' }, l)),
    v.weight !== null
      ? h(
          'span',
          {
            class: 'jp-TfServe-tag jp-mod-split',
            title: 'share of the traffic split'
          },
          `${v.weight}%`
        )
      : null,
    h('span', { class: 'jp-TfServe-spacer' }),
    h('span', { class: `jp-TfServe-state jp-mod-${kind}` }, v.state),
    v.state === 'AVAILABLE'
      ? h(
          'button',
          {
            class: 'jp-TfServe-button jp-mod-warn',
            'data-action': 'unload',
            'data-engine': engineId,
            'data-model': model,
            'data-version': v.version,
            title: `Unload ${model} version ${v.version}`
          },
          'unload'
        )
      : null
  );
  const traffic = h(
    'div',
    { class: 'jp-TfServe-traffic' },
    h(
      'span',
      { class: 'jp-TfServe-metric', title: 'requests per second' },
      s
        ? sparkline(
            sparklinePath(s.series.rps, { width: SPARK_W, height: SPARK_H }),
            SPARK_W,
            SPARK_H,
            'jp-mod-rps'
          )
        : null,
      h(
        'span',
        { class: 'jp-TfServe-rps', 'data-rps': s ? s.rps : 0 },
        formatRate(s?.rps ?? 0)
      )
    ),
    h(
      'span',
      {
        class: 'jp-TfServe-metric',
        title: 'latency p50 (green) and p99 (orange)'
      },
      s ? latencySpark(s.series.p50_ms, s.series.p99_ms) : null,
      h(
        'span',
        { class: 'jp-TfServe-latency' },
        s && s.requests > 0
          ? `p50 ${formatLatency(s.latency_ms.p50)} · p99 ${formatLatency(s.latency_ms.p99)}`
          : 'p50 – · p99 –'
      )
    )
  );
  const problems = [
    v.error,
    erroring && s
      ? `${formatCount(s.errors)} failed requests in the stats window`
      : ''
  ].filter(Boolean);
  return h(
    'div',
    {
      class: `jp-TfServe-version${kind === 'error' || erroring ? ' jp-mod-error' : ''}`,
      'data-version': v.version,
      title: s
        ? `${formatCount(s.requests)} requests, ${formatCount(s.errors)} errors in the window`
        : undefined
    },
    head,
    kind === 'ok' || s ? traffic : null,
    ...problems.map(p => h('div', { class: 'jp-TfServe-problem' }, p))
  );
}

function latencySpark(p50: number[], p99: number[]): SVGSVGElement {
  const max = Math.max(...p99, ...p50, 1e-9);
  const box = { width: SPARK_W, height: SPARK_H, max };
  const svg = sparkline(
    sparklinePath(p99, box),
    SPARK_W,
    SPARK_H,
    'jp-mod-p99'
  );
  const p50Line = sparkline(sparklinePath(p50, box), SPARK_W, SPARK_H, '')
    .firstChild as SVGPathElement;
  p50Line.setAttribute('class', 'jp-TfServe-p50');
  svg.append(p50Line);
  return svg;
}
