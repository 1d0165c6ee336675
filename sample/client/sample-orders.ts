import type { OrderRequest } from '../order-messages.js';

const GOOD_CARD = '4242 4242 4242 4242';
const DECLINED_CARD = '4000 0000 0000 0002';
/** The customer confirms the payment in the bank's app (3-D Secure): it completes, seconds later. */
const THREE_D_SECURE_CARD = '4000 0027 6000 3184';

/** The orders the client places: two good ones, and one for each way an order can go wrong. */
export const SAMPLE_ORDERS: { request: OrderRequest; expected: string }[] = [
  { request: { item: 'widget', quantity: 2, card: GOOD_CARD, email: 'ada@example.com' }, expected: 'completes' },
  { request: { item: 'widget', quantity: 1, card: DECLINED_CARD, email: 'bob@example.com' }, expected: 'card declined: fails' },
  { request: { item: 'gizmo', quantity: 1, card: GOOD_CARD, email: 'cy@example.com' }, expected: 'out of stock: fails' },
  { request: { item: 'widget', quantity: 3, card: GOOD_CARD, email: 'grace@' }, expected: 'bad e-mail: completes without it' },
  { request: { item: 'widget', quantity: 1, card: GOOD_CARD, email: 'linus@example.com' }, expected: 'completes' },
  {
    request: { item: 'gizmo', quantity: 1, card: THREE_D_SECURE_CARD, email: 'joan@example.com' },
    expected: 'out of stock, paid after it failed: fails, the late payment refunded',
  },
];
