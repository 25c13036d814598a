/**
 * The panel's tab icon: a stack of serving layers.
 */
import { LabIcon } from '@jupyterlab/ui-components';

const svgstr = `<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M12 2 2 7l10 5 10-5-10-5Zm0 13.2L4.2 11.3 2 12.4l10 5 10-5-2.2-1.1L12 15.2Zm0 5L4.2 16.3 2 17.4l10 5 10-5-2.2-1.1L12 20.2Z"/>
  </g>
</svg>`;

export const tfserveIcon = new LabIcon({ name: 'tfserve-lab:icon', svgstr });
