/**
 * The status bar item: models served and total requests per second.
 */
import { Widget } from '@lumino/widgets';

import { formatRate } from './format';
import type { TfServeModel } from './model';

export class TfServeStatus extends Widget {
  constructor(
    private readonly model: TfServeModel,
    onClick: () => void
  ) {
    super();
    this.addClass('jp-TfServe-status');
    this.node.title = 'tfserve-lab: models served and requests per second';
    this.node.addEventListener('click', onClick);
    model.changed.connect(this.render, this);
    this.render();
  }

  /** Whether the item should show: only while engines run. */
  get active(): boolean {
    return this.model.engines.length > 0;
  }

  render(): void {
    const t = this.model.totals;
    this.node.textContent = `TF Serving: ${t.models} model${t.models === 1 ? '' : 's'} · ${formatRate(t.rps)}`;
    this.toggleClass('jp-mod-error', t.problems > 0);
  }

  dispose(): void {
    if (!this.isDisposed) {
      this.model.changed.disconnect(this.render, this);
    }
    super.dispose();
  }
}
