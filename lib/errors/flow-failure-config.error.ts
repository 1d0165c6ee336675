/** Bad decorator arguments or module options: thrown during `app.init()`, before anything is read. */
export class FlowFailureConfigError extends Error {
  override readonly name = 'FlowFailureConfigError';
}
