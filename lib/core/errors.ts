/**
 * Error classes with stable `code` strings and the process exit code each maps to (SPEC §2).
 * Every part throws these; the CLI base turns them into one line on stderr and an exit code.
 */
export const ExitCode = {
  OK: 0,
  ERROR: 1,
  USAGE: 2,
  NOT_FOUND: 3,
  CHECKSUM: 4,
  DAEMON_UNREACHABLE: 5,
} as const;

export class PassimError extends Error {
  readonly code: string = 'PASSIM_ERROR';
  readonly exitCode: number = ExitCode.ERROR;
  /** HTTP status the control socket uses for this error. */
  readonly httpStatus: number = 500;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class UsageError extends PassimError {
  override readonly code = 'PASSIM_USAGE';
  override readonly exitCode = ExitCode.USAGE;
  override readonly httpStatus = 400;
}

export class InvalidHashError extends UsageError {
  override readonly code = 'PASSIM_INVALID_HASH' as 'PASSIM_USAGE';
}

export class InvalidNameError extends UsageError {
  override readonly code = 'PASSIM_INVALID_NAME' as 'PASSIM_USAGE';
}

export class NotFoundError extends PassimError {
  override readonly code = 'PASSIM_NOT_FOUND';
  override readonly exitCode = ExitCode.NOT_FOUND;
  override readonly httpStatus = 404;
}

export class ChecksumMismatchError extends PassimError {
  override readonly code = 'PASSIM_CHECKSUM_MISMATCH';
  override readonly exitCode = ExitCode.CHECKSUM;
  override readonly httpStatus = 422;
  constructor(readonly expected: string, readonly actual: string, message?: string) {
    super(message ?? `checksum mismatch: expected sha256 ${expected}, got ${actual}`);
  }
}

export class DaemonUnreachableError extends PassimError {
  override readonly code = 'PASSIM_DAEMON_UNREACHABLE';
  override readonly exitCode = ExitCode.DAEMON_UNREACHABLE;
}

export class ConfigError extends PassimError {
  override readonly code = 'PASSIM_CONFIG';
  override readonly httpStatus = 400;
  constructor(
    message: string,
    readonly file?: string,
    readonly line?: number,
    readonly key?: string,
  ) {
    super(file ? `${file}${line ? `:${line}` : ''}: ${message}` : message);
  }
}

export class ItemExistsError extends PassimError {
  override readonly code = 'PASSIM_ITEM_EXISTS';
  override readonly httpStatus = 409;
}

export class TooLargeError extends PassimError {
  override readonly code = 'PASSIM_TOO_LARGE';
  override readonly httpStatus = 413;
}

export class AlreadyRunningError extends PassimError {
  override readonly code = 'PASSIM_ALREADY_RUNNING';
}

export class PermissionError extends PassimError {
  override readonly code = 'PASSIM_PERMISSION';
  override readonly httpStatus = 403;
}

export class TimeoutError extends PassimError {
  override readonly code = 'PASSIM_TIMEOUT';
  override readonly httpStatus = 504;
}

/** Errors by code, so the control client can rebuild the class a daemon reported. */
export function errorFromCode(code: string, message: string): PassimError {
  switch (code) {
    case 'PASSIM_USAGE': return new UsageError(message);
    case 'PASSIM_INVALID_HASH': return new InvalidHashError(message);
    case 'PASSIM_INVALID_NAME': return new InvalidNameError(message);
    case 'PASSIM_NOT_FOUND': return new NotFoundError(message);
    case 'PASSIM_CHECKSUM_MISMATCH': {
      const e = new ChecksumMismatchError('', '', message);
      return e;
    }
    case 'PASSIM_CONFIG': return new ConfigError(message);
    case 'PASSIM_ITEM_EXISTS': return new ItemExistsError(message);
    case 'PASSIM_TOO_LARGE': return new TooLargeError(message);
    case 'PASSIM_PERMISSION': return new PermissionError(message);
    case 'PASSIM_TIMEOUT': return new TimeoutError(message);
    default: return new PassimError(message);
  }
}

/**
 * How bad each exit code is, least first, for a run of many files whose exit code is "the worst
 * of the files": a file nobody had (3) < a file only wrong bytes were offered for (4: someone
 * served bad data) < a daemon that could not be reached (5) < a failure on our side, such as a
 * disk that cannot be written (1) < a usage error (2: the run itself was asked wrongly).
 */
const SEVERITY: readonly number[] = [ExitCode.OK, ExitCode.NOT_FOUND, ExitCode.CHECKSUM, ExitCode.DAEMON_UNREACHABLE, ExitCode.ERROR, ExitCode.USAGE];

/** The worst of several exit codes by SEVERITY (an unknown code counts as ERROR); OK for none. */
export function worstExitCode(codes: Iterable<number>): number {
  let worst: number = ExitCode.OK;
  const rank = (c: number) => {
    const i = SEVERITY.indexOf(c);
    return i >= 0 ? i : SEVERITY.indexOf(ExitCode.ERROR);
  };
  for (const c of codes) if (rank(c) > rank(worst)) worst = SEVERITY.includes(c) ? c : ExitCode.ERROR;
  return worst;
}
