/** Directories skein creates (sessions, extension pid records) are the owner's only. */
export const DIR_MODE = 0o700;
