#!/usr/bin/env python3
"""Cross-check of the test bed itself against hwloc (scripts/numa-vm --hwloc).

The guest dumps its /sys/devices/system/{node,cpu} and a few /proc files;
this runs hwloc's `lstopo --input DUMP --of xml` on the dump, reduces the
XML to the facts tests/fixtures/*.hwloc.json hold, and compares them with
the `topo_json` part of expect.json (what topologies.py derived from the
table, with each node's memory taken from the dump's MemTotal).

  hwloc_check.py DUMPDIR EXPECT.json

Prints `PASS hwloc_agrees: ...` or `FAIL hwloc_agrees: ...`; exits 1 on FAIL.
If it fails, the table's derivation in topologies.py is wrong, not numa_rt.
"""

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET


def cpus_of(mask):
    """CPU ids in an hwloc bitmap string such as `0x0000000f` or
    `0x00000001,0x00000000` (comma-separated 32-bit words, high first)."""
    if not mask:
        return []
    words = [w.replace("0x", "") for w in mask.split(",")]
    value = int("".join(w.rjust(8, "0") for w in words), 16)
    return [i for i in range(value.bit_length()) if value >> i & 1]


def reduce_xml(root):
    nodes = {}
    by_gp_index = {}
    for obj in root.iter("object"):
        if obj.get("type") != "NUMANode":
            continue
        node_id = int(obj.get("os_index"))
        nodes[node_id] = {
            "id": node_id,
            "cpus": cpus_of(obj.get("cpuset")),
            "memory_bytes": int(obj.get("local_memory", "0")),
            "subtype": obj.get("subtype"),
        }
        by_gp_index[obj.get("gp_index")] = node_id
    distances = None
    for dist in root.iter("distances2"):
        if dist.get("type") != "NUMANode":
            continue
        ids = [int(x) for x in dist.find("indexes").text.split()]
        values = [int(x) for v in dist.findall("u64values") for x in v.text.split()]
        n = len(ids)
        distances = {"ids": ids, "matrix": [values[i * n:(i + 1) * n] for i in range(n)]}
    memattrs = {}
    for attr in root.iter("memattr"):
        entries = [
            {
                "target": by_gp_index[v.get("target_obj_gp_index")],
                "value": int(v.get("value")),
                "initiator_cpus": cpus_of(v.get("initiator_cpuset")),
            }
            for v in attr.findall("memattr_value")
            if v.get("initiator_cpuset")
        ]
        if entries:
            memattrs[attr.get("name")] = sorted(entries, key=lambda e: e["target"])
    return {
        "nodes": [nodes[k] for k in sorted(nodes)],
        "distances": distances,
        "memattrs": memattrs,
    }


def mem_total(dump, node_id):
    path = os.path.join(dump, f"sys/devices/system/node/node{node_id}/meminfo")
    with open(path) as f:
        for line in f:
            if "MemTotal:" in line:
                return int(line.split("MemTotal:")[1].split()[0]) * 1024
    raise ValueError(f"{path}: no MemTotal")


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        print("usage: hwloc_check.py DUMPDIR EXPECT.json", file=sys.stderr)
        return 2
    dump, expect_path = argv[1], argv[2]
    with open(expect_path) as f:
        want = json.load(f)["topo_json"]
    for node in want["nodes"]:
        node["memory_bytes"] = mem_total(dump, node["id"])
    xml = subprocess.run(
        ["lstopo", "--input", dump, "--of", "xml", "-"],
        check=True, capture_output=True, text=True,
    ).stdout
    got = reduce_xml(ET.fromstring(xml))
    problems = []
    for key in ("nodes", "distances", "memattrs"):
        if got[key] != want[key]:
            problems.append(f"{key}: hwloc {json.dumps(got[key])}, table {json.dumps(want[key])}")
    if problems:
        print("FAIL hwloc_agrees: " + "; ".join(problems))
        return 1
    print(f"PASS hwloc_agrees: hwloc {version()} reads the guest as the table says")
    return 0


def version():
    out = subprocess.run(["lstopo", "--version"], capture_output=True, text=True).stdout
    return out.split()[-1] if out.strip() else "?"


if __name__ == "__main__":
    sys.exit(main(sys.argv))
