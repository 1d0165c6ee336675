/** What the shop sells and how many it has when the service starts: a gizmo is out of stock. */
export const CATALOGUE: Record<string, { price: number; inStock: number }> = {
  widget: { price: 12.5, inStock: 10 },
  gizmo: { price: 40, inStock: 0 },
};

export function priceOf(item: string): number {
  const entry = CATALOGUE[item];
  if (!entry) throw new Error(`unknown item: ${item}`);
  return entry.price;
}
