/** Injection token of the AppSpec the bench process sent. */
export const APP_SPEC = 'BENCH_APP_SPEC';
