/**
 * Errors that users can cause (bad paths, unknown names, malformed files).
 *
 * Not tied to a paper: this is the toolkit's error convention. Tasks map a
 * {@link UserError} to exit code 2 and print only its one-line message, while
 * any other error is treated as a bug and printed with its stack.
 *
 * @module
 */

/**
 * An error caused by user input, with a one-line message that names the
 * problem and the fix. Command-line tasks exit with code 2 on this error.
 *
 * @example Throwing and recognising a user error
 * ```ts
 * import { UserError } from "./errors.ts";
 *
 * try {
 *   throw new UserError('unknown dataset "foo": use one of mnist, toy:two-moons');
 * } catch (e) {
 *   if (e instanceof UserError) console.error(e.message);
 * }
 * ```
 */
export class UserError extends Error {
  /**
   * Creates the error.
   *
   * @param message One line: what went wrong and how to fix it.
   * @param options Standard error options, e.g. `{ cause }`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UserError";
  }
}
