/**
 * The outbound worker as `serve` runs it (always: failure reports to senders need it even
 * without a submission listener): settings from `outbound:`, DKIM keys from the backend's store
 * (`data_dir/dkim`, or the shared database with PostgreSQL), read once per batch and domain,
 * failure reports through the shared bounce helper, outcomes into the metrics.
 */
import type { Config } from "../config/types.ts";
import type { CredentialStore } from "../auth/store.ts";
import type { QueuedMessage, QueueStore } from "../queue/types.ts";
import type { Logger } from "../observe/log.ts";
import type { DkimKeys } from "../dkim/keys.ts";
import type { DkimKey } from "../dkim/signer.ts";
import { normalizeDomain } from "../auth/domain.ts";
import { type KeysFor, type OutboundEvents, OutboundWorker } from "../outbound/worker.ts";
import { bounceFailed } from "../queue/bounce.ts";
import { interfaceAddresses, listensEverywhere, ownHost } from "../outbound/mx_self.ts";
import { errorText } from "../errors.ts";

/** What the worker needs from serve. */
export interface OutboundDeps {
  readonly config: Config;
  readonly store: QueueStore;
  readonly credentials: CredentialStore;
  readonly log: Logger;
  /** Where the signing keys are (ServeBackend.dkimKeys). */
  readonly dkimKeys: DkimKeys;
  readonly events?: OutboundEvents;
}

/**
 * Creates (does not start) the worker of this process. With an MX listener (`smtp.listen`) on a
 * wildcard address, reads the host's interface addresses (loop avoidance, `mx_self.ts`; another
 * port's wildcard leaves port 25 of those addresses to whoever else listens there): without the
 * grant `--allow-sys=networkInterfaces` this throws Deno's NotCapable (one error line, exit 1).
 */
export function createOutboundWorker(deps: OutboundDeps): OutboundWorker {
  const { config, credentials } = deps;
  const out = config.outbound;
  const log = deps.log.with({ proto: "outbound" });
  const listen = [...config.smtp.listen, ...config.odmr.listen, ...config.submission?.listen ?? []];
  const interfaces = listensEverywhere(config.smtp.listen)
    ? interfaceAddresses({
      onError: (err) => log.warn("outbound_interfaces_unreadable", { error: errorText(err) }),
    })
    : undefined;
  const keys = deps.dkimKeys;
  const isLocalDomain = (domain: string) => credentials.ownerOf(domain) !== undefined;
  return new OutboundWorker({
    store: deps.store,
    log,
    owner: `outbound@${config.hostname}:${Deno.pid}`,
    concurrency: out.concurrency,
    // As for ATRN leases: a dead node's destinations are free again after queue.lease_time.
    leaseSeconds: config.queue.leaseMs / 1000,
    batch: {
      delivery: {
        helo: out.helo,
        nameServer: out.resolver === undefined
          ? undefined
          : { ipAddr: out.resolver.host, port: out.resolver.port },
        tls: out.tls,
        allowPrivateMx: out.allowPrivateMx,
        self: ownHost([config.hostname], listen, {
          natted: out.ownAddresses,
          ...(interfaces === undefined ? {} : { interfaces }),
        }),
      },
      retryScheduleMs: out.retryScheduleMs,
      keysForBatch: () => batchSigningKeys(keys, credentials),
      onFailed: async (message, failed) => {
        await bounceFailed(message, failed, {
          store: deps.store,
          hostname: config.hostname,
          isLocalDomain,
          log,
        });
      },
      // A destination that has become a user's is held for its ATRN (src/queue/_hold.ts).
      owned: { isOwned: isLocalDomain, hold: (domain) => deps.store.holdForAtrn([domain]) },
      ...(deps.events !== undefined ? { events: deps.events } : {}),
    },
  });
}

/**
 * A user's key signs only its own mail: the From domain must belong to the user who owns the
 * envelope sender's domain (submission checked that one at MAIL). Otherwise one user could get
 * another's signature on a message by writing their domain into From. `MAIL FROM:<>` mail (a
 * user's bounces and auto-replies) has no sender domain: it is signed only when the From
 * domain belongs to the user who submitted it (stored with the message; submission refused
 * `<>` mail From any other domain). `<>` mail without a submitter (the server's own reports,
 * rows queued before the submitter was stored) is sent unsigned.
 */
async function signingKeys(
  read: (domain: string) => Promise<readonly DkimKey[]>,
  credentials: CredentialStore,
  fromDomain: string,
  message: QueuedMessage,
): Promise<readonly DkimKey[]> {
  if (!isOwnedAuthor(credentials, fromDomain, message)) return [];
  return await read(fromDomain);
}

/** Whether the From domain is its message's sender's: see signingKeys. */
function isOwnedAuthor(
  credentials: CredentialStore,
  fromDomain: string,
  message: QueuedMessage,
): boolean {
  const owner = credentials.ownerOf(fromDomain);
  if (owner === undefined) return false;
  if (message.mailFrom === "") return message.submitter === owner;
  const at = message.mailFrom.lastIndexOf("@");
  const senderDomain = at < 0 ? undefined : normalizeDomain(message.mailFrom.slice(at + 1));
  return senderDomain !== undefined && credentials.ownerOf(senderDomain) === owner;
}

/**
 * The signing keys for one outbound batch: each From domain's keys are read from the store
 * (a directory listing and PEM parse, or a SELECT) at most once per batch instead of once per
 * message; a failed read is not kept. The ownership check still runs for every message.
 */
export function batchSigningKeys(keys: DkimKeys, credentials: CredentialStore): KeysFor {
  const read = new Map<string, Promise<readonly DkimKey[]>>();
  const readOnce = (domain: string): Promise<readonly DkimKey[]> => {
    let found = read.get(domain);
    if (found === undefined) {
      found = keys.keysFor(domain);
      read.set(domain, found);
      found.catch(() => read.delete(domain));
    }
    return found;
  };
  return (domain, message) => signingKeys(readOnce, credentials, domain, message);
}
