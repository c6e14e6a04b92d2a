/** Directories skein creates (sessions, extension pid records) are the owner's only. */
export const DIR_MODE = 0o700;

/**
 * Files skein creates that hold session content (sessions.db, whose -wal and
 * -shm files SQLite creates with the database file's mode; exports) are the
 * owner's only.
 */
export const FILE_MODE = 0o600;
