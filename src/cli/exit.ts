/** Ends a command with an exit code after it has said why (e.g. validate found problems). */
export class CliExit extends Error {
  readonly exitCode: number;
  constructor(exitCode: number) {
    super(`exit ${exitCode}`);
    this.exitCode = exitCode;
  }
}
