/** A printed table: every cell already formatted. */
export interface Table {
  title: string;
  columns: string[];
  rows: string[][];
  notes?: string[];
}

export function renderTable(table: Table): string {
  const widths = table.columns.map((column, i) => Math.max(column.length, ...table.rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ').trimEnd();
  const rule = widths.map((width) => '-'.repeat(width)).join('  ');
  return [
    `\n${table.title}`,
    line(table.columns),
    rule,
    ...table.rows.map(line),
    ...(table.notes ?? []).map((note) => `  ${note}`),
  ].join('\n');
}

export const format = {
  ms: (value: number | undefined) => (value === undefined || !Number.isFinite(value) ? '-' : value.toFixed(2)),
  ratio: (value: number | undefined) => (value === undefined || !Number.isFinite(value) ? '-' : `${value.toFixed(2)}x`),
  int: (value: number | undefined) => (value === undefined || !Number.isFinite(value) ? '-' : Math.round(value).toLocaleString('en-US')),
  fixed: (value: number | undefined, digits = 1) => (value === undefined || !Number.isFinite(value) ? '-' : value.toFixed(digits)),
  mb: (bytes: number | undefined) => (bytes === undefined || !Number.isFinite(bytes) ? '-' : (bytes / 2 ** 20).toFixed(1)),
  signedMb: (bytes: number) => `${bytes >= 0 ? '+' : ''}${(bytes / 2 ** 20).toFixed(1)}`,
  check: (ok: boolean | undefined) => (ok === undefined ? '-' : ok ? 'ok' : 'MISSED'),
};
