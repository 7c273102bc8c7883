// The tariff dialog: currency, standing charge and time-of-use bands (a flat tariff is one band over the whole
// day). The server checks that every minute of every weekday is priced once and says where not; its message is
// shown as it is, and nothing is stored until it accepts.

import { api, type TariffJson, type TariffReplyJson } from './api.ts';

const DAY_SETS: Record<string, number[] | undefined> = { all: undefined, weekdays: [1, 2, 3, 4, 5], weekend: [6, 7] };
const FLAT: TariffJson = { currency: 'EUR', standing_charge_per_day: 0, bands: [{ name: 'flat', price_per_kwh: 0.3, from: '00:00', to: '24:00' }] };

const $ = <T extends HTMLElement>(root: ParentNode, sel: string): T => root.querySelector<T>(sel)!;

function daysKey(days: number[] | undefined): string {
  const key = Object.entries(DAY_SETS).find(([, v]) => (v ?? []).join() === (days ?? []).join());
  return key?.[0] ?? 'all';
}

function bandRow(b: TariffJson['bands'][number]): HTMLTableRowElement {
  const tr = document.createElement('tr');
  tr.innerHTML =
    '<td><input class="b-name" aria-label="band name" required maxlength="40"></td>' +
    '<td><input class="b-from" aria-label="from" type="time" required></td>' +
    '<td><input class="b-to" aria-label="to (00:00 = midnight)" type="time" required></td>' +
    '<td><input class="b-price" aria-label="price per kWh" type="number" min="0" step="0.0001" required></td>' +
    '<td><select class="b-days" aria-label="days"><option value="all">every day</option><option value="weekdays">Mon–Fri</option><option value="weekend">Sat–Sun</option></select></td>' +
    '<td><button type="button" class="b-del" aria-label="remove band">✕</button></td>';
  $<HTMLInputElement>(tr, '.b-name').value = b.name;
  $<HTMLInputElement>(tr, '.b-from').value = b.from === '24:00' ? '00:00' : b.from;
  $<HTMLInputElement>(tr, '.b-to').value = b.to === '24:00' ? '00:00' : b.to;
  $<HTMLInputElement>(tr, '.b-price').value = String(b.price_per_kwh);
  $<HTMLSelectElement>(tr, '.b-days').value = daysKey(b.days);
  $<HTMLButtonElement>(tr, '.b-del').addEventListener('click', () => tr.remove());
  return tr;
}

/** The form as a tariff; a band ending at 00:00 ends at midnight (24:00), the form's time inputs stop at 23:59. */
export function readTariff(dialog: HTMLElement): TariffJson {
  const bands = [...dialog.querySelectorAll<HTMLTableRowElement>('#tariff-bands tr')].map((tr) => {
    const days = DAY_SETS[$<HTMLSelectElement>(tr, '.b-days').value];
    const to = $<HTMLInputElement>(tr, '.b-to').value;
    return {
      name: $<HTMLInputElement>(tr, '.b-name').value.trim(),
      price_per_kwh: Number($<HTMLInputElement>(tr, '.b-price').value),
      from: $<HTMLInputElement>(tr, '.b-from').value,
      to: to === '00:00' ? '24:00' : to,
      ...(days && { days }),
    };
  });
  return {
    currency: $<HTMLInputElement>(dialog, '#tariff-currency').value.trim(),
    standing_charge_per_day: Number($<HTMLInputElement>(dialog, '#tariff-standing').value),
    bands,
  };
}

export function setupTariffDialog(onSaved: () => void): void {
  const dialog = document.querySelector<HTMLDialogElement>('#tariff-dialog')!;
  const status = $<HTMLElement>(dialog, '#tariff-status');
  const fill = (t: TariffJson) => {
    $<HTMLInputElement>(dialog, '#tariff-currency').value = t.currency;
    $<HTMLInputElement>(dialog, '#tariff-standing').value = String(t.standing_charge_per_day);
    $<HTMLElement>(dialog, '#tariff-bands').replaceChildren(...t.bands.map(bandRow));
  };
  document.querySelector('#tariff-open')!.addEventListener('click', async () => {
    status.textContent = '';
    try {
      fill((await api<TariffReplyJson>('/api/tariff')).tariff ?? FLAT);
    } catch (err) {
      status.textContent = `could not read the tariff: ${(err as Error).message}`;
    }
    dialog.showModal();
  });
  $<HTMLButtonElement>(dialog, '#tariff-add').addEventListener('click', () =>
    $<HTMLElement>(dialog, '#tariff-bands').append(bandRow({ name: `band ${dialog.querySelectorAll('#tariff-bands tr').length + 1}`, price_per_kwh: 0, from: '00:00', to: '00:00' })),
  );
  $<HTMLButtonElement>(dialog, '#tariff-cancel').addEventListener('click', () => dialog.close());
  $<HTMLFormElement>(dialog, '#tariff-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    status.textContent = 'saving…';
    try {
      await api<TariffReplyJson>('/api/tariff', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(readTariff(dialog)) });
      status.textContent = '';
      dialog.close();
      onSaved();
    } catch (err) {
      status.textContent = `not saved: ${(err as Error).message}`;
    }
  });
}
