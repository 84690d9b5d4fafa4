#!/usr/bin/python3
"""Independent DKIM check for the tests: python3-dkim (dkimpy) verifies the signature number
INDEX of the message on stdin (with --batch: a JSON list of {"message": base64, "index": N} on
stdin, a JSON list of {"ok", "output"} on stdout, one process for many checks). The public key comes from a real DNS server (--dns HOST:PORT,
queried with dnspython) or is given directly (--txt NAME=TEXT). Prints one line; exit 0 when
the signature verifies, 1 when it does not, 2 on usage errors."""
import base64
import json
import sys

import dkim
import dns.resolver


def main(argv):
    dns_server = None
    records = {}
    index = 0
    batch = False
    args = iter(argv)
    for arg in args:
        if arg == "--dns":
            host, port = next(args).rsplit(":", 1)
            dns_server = (host, int(port))
        elif arg == "--txt":
            name, text = next(args).split("=", 1)
            records[name.rstrip(".").lower()] = text.encode()
        elif arg == "--batch":
            batch = True
        elif arg == "--index":
            index = int(next(args))
        else:
            print("usage: dkim_verify.py [--dns HOST:PORT | --txt NAME=TEXT...] [--index N]")
            return 2

    def dnsfunc(name, timeout=5):
        key = name.decode() if isinstance(name, bytes) else name
        key = key.rstrip(".").lower()
        if dns_server is None:
            return records.get(key, b"")
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [dns_server[0]]
        resolver.port = dns_server[1]
        resolver.lifetime = timeout
        answer = resolver.resolve(key, "TXT")
        return b"".join(b"".join(rr.strings) for rr in answer)

    def check(message, idx):
        try:
            ok = dkim.DKIM(message).verify(idx=idx, dnsfunc=dnsfunc)
        except dkim.DKIMException as err:
            return False, f"error: {err}"
        return ok, "pass" if ok else "fail"

    if batch:
        results = []
        for item in json.load(sys.stdin):
            ok, output = check(base64.b64decode(item["message"]), item["index"])
            results.append({"ok": ok, "output": output})
        print(json.dumps(results))
        return 0
    ok, output = check(sys.stdin.buffer.read(), index)
    print(output)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
