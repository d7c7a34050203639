"""Tests/integration/swjson.py: evaluate a Python expression over `switchd status --json`.

Usage: switchd status --json | python3 swjson.py 'EXPR'

Names available in EXPR:
  j                 the parsed JSON document
  nets()            the list of networks (found under a "networks" key, also when wrapped)
  net(name)         one network by name
  ports(name)       that network's ports
  kind(name, k)     its ports of kind k ("tap", "dgram", "stream", ...)
  drops(port)       sum of the port's drop counters
  rx(port, f="packets"), tx(port, f="packets")
  dump(x)           x as indented JSON (for diagnostics)
A list or dict result is printed as JSON; anything else with print().
Plain standard library only, so any python3 will do.
"""
import json
import sys


def _find_networks(doc):
    if isinstance(doc, dict):
        if isinstance(doc.get("networks"), list):
            return doc["networks"]
        for v in doc.values():
            found = _find_networks(v)
            if found is not None:
                return found
    return None


def main():
    expr = sys.argv[1]
    text = sys.stdin.read()
    j = json.loads(text)

    def nets():
        n = _find_networks(j)
        if n is None:
            raise SystemExit("swjson: no 'networks' list in status output: " + text[:500])
        return n

    def net(name):
        for n in nets():
            if n.get("name") == name:
                return n
        raise SystemExit("swjson: no network %r in status output" % name)

    def ports(name):
        return net(name).get("ports", [])

    def kind(name, k):
        return [p for p in ports(name) if p.get("kind") == k]

    def _num(v):
        if isinstance(v, (int, float)):
            return v
        if isinstance(v, dict):
            return sum(_num(x) for x in v.values())
        return 0

    def drops(port):
        return _num(port.get("drops", {}))

    def rx(port, f="packets"):
        return port.get("rx", {}).get(f, 0)

    def tx(port, f="packets"):
        return port.get("tx", {}).get(f, 0)

    def dump(x):
        return json.dumps(x, indent=1, sort_keys=True)

    result = eval(expr, {"j": j, "nets": nets, "net": net, "ports": ports, "kind": kind,
                         "drops": drops, "rx": rx, "tx": tx, "dump": dump, "json": json})
    if isinstance(result, (list, dict)):
        print(json.dumps(result))
    elif isinstance(result, bool):
        print("true" if result else "false")
    else:
        print(result)


if __name__ == "__main__":
    main()
