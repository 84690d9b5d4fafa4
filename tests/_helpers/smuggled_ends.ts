/**
 * Ends of data an SMTP smuggling attack tries (SEC Consult 2023, docs/protocol.md §6.5): a bare
 * LF or CR on one side of the dot or both. None may end a message body; each test adds the
 * variants of its own layer.
 */
export const SMUGGLED_ENDS: readonly string[] = [
  "\n.\n",
  "\n.\r\n",
  "\r.\r\n",
  "\r\n.\r",
  "\r\n.\n",
  "\r.\r",
  "\n.\r",
];
