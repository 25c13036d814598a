/**
 * Command ids and the actions behind them.
 */

export namespace CommandIDs {
  /** Show the tfserve-lab side panel. */
  export const open = 'tfserve-lab:open';
  /** Refresh engines, models and stats now. */
  export const refresh = 'tfserve-lab:refresh';
}
