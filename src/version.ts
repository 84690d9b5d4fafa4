/** The program's name and version, printed by `--version` and in the SMTP greeting. */
export const PROGRAM_NAME = "odmr-relay";
export const VERSION = "0.1.0";
