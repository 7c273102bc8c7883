// The device picker in the header and the "all devices" energy tile: with several devices in one serve the
// dashboard shows one device at a time, and the sum of their energy (exact, from /api/energy) beside it.

import { api, query, type AllEnergyJson, type DeviceJson, type EnergyQueryParams } from './api.ts';
import { kwhRegister } from './format.ts';

const STORAGE_KEY = 'crabwatt.device';

export class DevicePicker {
  /** The device shown: the one chosen last in this browser, until the list says it is gone. */
  device: string | null = localStorage.getItem(STORAGE_KEY);
  private ids = '';

  constructor(
    private readonly select: HTMLSelectElement,
    private readonly allTile: HTMLElement,
    private readonly onSelect: (id: string) => void,
  ) {
    select.addEventListener('change', () => this.choose(select.value));
  }

  /** A new device list: options rebuilt when the set changed, a device chosen when none (or a gone one) was. */
  update(devices: readonly DeviceJson[]): void {
    const ids = devices.map((d) => d.id).join(',');
    if (ids !== this.ids) {
      this.select.replaceChildren(
        ...devices.map((d) => {
          const o = document.createElement('option');
          o.value = d.id;
          o.textContent = d.name === d.id ? d.id : `${d.name} (${d.id.slice(-4)})`;
          return o;
        }),
      );
      this.ids = ids;
    }
    // The total only means something beside more than one device.
    this.allTile.hidden = devices.length < 2;
    if (!devices.some((d) => d.id === this.device) && devices.length > 0) this.choose(devices[0]!.id);
    if (this.device) this.select.value = this.device;
  }

  choose(id: string): void {
    if (this.device === id) return;
    this.device = id;
    localStorage.setItem(STORAGE_KEY, id);
    this.onSelect(id);
  }

  /** The sum of every device's energy in the tile (skipped while it is hidden). */
  async pollTotal(zone: string): Promise<void> {
    if (this.allTile.hidden) return;
    const e = await api<AllEnergyJson>(`/api/energy?${query({ tz: zone } satisfies EnergyQueryParams)}`);
    this.allTile.querySelector('.value')!.textContent = kwhRegister(e.total_wh);
    this.allTile.title = `${e.devices.length} devices: ${e.total_nwh} nWh in total, ${e.today_nwh} nWh today`;
  }
}
