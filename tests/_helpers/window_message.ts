/**
 * One message as our provider's window sends it to a customer offering CHUNKING
 * (src/smtp/_sender_window.ts): RSET, MAIL, each RCPT and `BDAT n LAST` with the body, meant
 * to be written in one group with the messages around it.
 */
export function windowMessage(n: number, recipients = [`m${n}@example.org`]): string {
  const body = `Subject: ${n}\r\n\r\nbody ${n}\r\n`;
  return `RSET\r\nMAIL FROM:<s@example.net>\r\n` +
    recipients.map((r) => `RCPT TO:<${r}>\r\n`).join("") + `BDAT ${body.length} LAST\r\n${body}`;
}
