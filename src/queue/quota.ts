/**
 * The per-domain quota rule, pure: would adding a message of some size to what a domain holds
 * go over its limits? Used at RCPT (with the SIZE= estimate) and again at the end of DATA.
 */
import type { DomainUsage } from "./types.ts";

/** Limits on mail waiting for one domain; an undefined limit is no limit. */
export interface QuotaLimits {
  readonly bytes: number | undefined;
  readonly messages: number | undefined;
}

/** Which limit `usage` plus one message of `addBytes` would exceed, or undefined if none. */
export function exceededQuota(
  usage: DomainUsage,
  limits: QuotaLimits,
  addBytes: number,
): "messages" | "bytes" | undefined {
  if (limits.messages !== undefined && usage.messages + 1 > limits.messages) return "messages";
  if (limits.bytes !== undefined && usage.bytes + addBytes > limits.bytes) return "bytes";
  return undefined;
}
