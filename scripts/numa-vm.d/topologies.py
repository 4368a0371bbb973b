#!/usr/bin/env python3
"""The machines scripts/numa-vm boots, described once.

Each entry of TOPOLOGIES says what the emulated machine is: its NUMA nodes
(CPUs, memory, the initiator of a memory-only node), the SLIT distance matrix,
the HMAT latency and bandwidth of every initiator -> target pair, memory-side
caches and PCIe devices placed on a node. Everything else is derived from it:

  qemu-args NAME DISK   the QEMU command-line arguments, one per line
  expect NAME           the facts the guest checks (JSON), including what
                        `numa-rt topo --json` must print: the same facts in
                        hwloc's form (see tests/fixtures/*.hwloc.json)
  list                  the topology names with a one-line summary
  self-test             checks the table and the derivations

No third-party modules: the host only needs python3.
"""

import json
import sys

MIB = 1 << 20


def node(node_id, cpus, memory_mib, initiator=None):
    """One NUMA node. `cpus` empty means memory-only; it then needs the
    `initiator` node whose CPUs reach it best (HMAT requires one)."""
    return {
        "id": node_id,
        "cpus": list(cpus),
        "memory_mib": memory_mib,
        "initiator": initiator,
    }


TOPOLOGIES = {
    "two-node": {
        "summary": "2 nodes x 2 CPUs, SLIT 10/21, HMAT latency+bandwidth for every pair",
        "nodes": [node(0, [0, 1], 256), node(1, [2, 3], 256)],
        "distances": [
            [10, 21],
            [21, 10],
        ],
        # Rows: initiator node; columns: target node (in `nodes` order).
        "hmat": {
            "latency_ns": {0: [80, 130], 1: [130, 80]},
            "bandwidth_mbps": {0: [20000, 9000], 1: [9000, 20000]},
        },
        "memory_side_caches": [],
        "devices": [],
    },
    "memory-tier": {
        "summary": "2 CPU nodes + memory-only node 2 (initiator 0, 4x latency); NVMe and NIC on node 1",
        "nodes": [
            node(0, [0, 1], 256),
            node(1, [2, 3], 256),
            node(2, [], 256, initiator=0),
        ],
        "distances": [
            [10, 21, 17],
            [21, 10, 28],
            [17, 28, 10],
        ],
        "hmat": {
            "latency_ns": {0: [80, 140, 320], 1: [140, 80, 400]},
            "bandwidth_mbps": {0: [20000, 8000, 5000], 1: [8000, 20000, 3000]},
        },
        "memory_side_caches": [
            {"node": 2, "level": 1, "size_mib": 16, "line": 64},
        ],
        # Each device sits behind a PCIe expander bridge (pxb-pcie) on `node`.
        # The NVMe disk holds an ext4 file system the guest mounts at `mount`.
        "devices": [
            {"kind": "nvme", "node": 1, "sysfs": "/sys/block/nvme0n1", "mount": "/mnt/nvme0n1"},
            {"kind": "nic", "node": 1, "sysfs": "/sys/class/net/eth0", "mount": None},
        ],
    },
    "four-node-asym": {
        "summary": "4 nodes x 1 CPU, asymmetric SLIT, no HMAT",
        "nodes": [
            node(0, [0], 192),
            node(1, [1], 192),
            node(2, [2], 192),
            node(3, [3], 192),
        ],
        # Row i is node i's distance file: d(i, j) != d(j, i) on purpose.
        "distances": [
            [10, 16, 22, 28],
            [20, 10, 16, 22],
            [26, 20, 10, 16],
            [32, 26, 20, 10],
        ],
        "hmat": None,
        "memory_side_caches": [],
        "devices": [],
    },
}


# ---------------------------------------------------------------------------
# Derived facts


def cpu_nodes(topo):
    return [n for n in topo["nodes"] if n["cpus"]]


def local_initiator(topo, target):
    """The node the kernel links under targetN/access{0,1}/initiators.

    QEMU writes each node's initiator into HMAT's memory proximity domain
    attributes (a CPU node is its own initiator), and Linux then links exactly
    that node, with the values of that initiator -> target pair."""
    return target["id"] if target["cpus"] else target["initiator"]


def node_by_id(topo, node_id):
    for n in topo["nodes"]:
        if n["id"] == node_id:
            return n
    raise KeyError(f"no node {node_id}")


def hmat_value(topo, kind, initiator, target):
    column = [n["id"] for n in topo["nodes"]].index(target)
    return topo["hmat"][kind][initiator][column]


def hwloc_view(topo):
    """What hwloc 2.9's Linux backend reports for this machine, reduced the
    way tests/fixtures/*.hwloc.json are. `memory_bytes` is null: hwloc reads
    node MemTotal, which only the guest kernel knows; the guest fills it in."""
    nodes = []
    for n in topo["nodes"]:
        cpus = n["cpus"]
        if not cpus and topo["hmat"] is not None:
            # hwloc gives a memory-only node the CPUs of its access1 initiators.
            cpus = node_by_id(topo, n["initiator"])["cpus"]
        nodes.append({
            "id": n["id"],
            "cpus": sorted(cpus),
            "memory_bytes": None,
            "subtype": None,
        })
    ids = [n["id"] for n in topo["nodes"]]
    distances = {"ids": ids, "matrix": topo["distances"]}
    memattrs = {}
    if topo["hmat"] is not None:
        cpus_of = {n["id"]: n["cpus"] for n in nodes}
        per_kind = {"Latency": "latency_ns", "Bandwidth": "bandwidth_mbps"}
        for name, kind in per_kind.items():
            entries = []
            for n in topo["nodes"]:
                value = hmat_value(topo, kind, local_initiator(topo, n), n["id"])
                entries.append({
                    "target": n["id"],
                    "value": value,
                    "initiator_cpus": cpus_of[n["id"]],
                })
            # QEMU's access-latency / access-bandwidth set read and write
            # alike, so hwloc's averages equal both.
            memattrs[name] = entries
            memattrs["Read" + name] = entries
            memattrs["Write" + name] = entries
    return {"nodes": nodes, "distances": distances, "memattrs": memattrs}


def expectation(name):
    topo = TOPOLOGIES[name]
    hmat = []
    if topo["hmat"] is not None:
        for target in topo["nodes"]:
            initiator = local_initiator(topo, target)
            hmat.append({
                "target": target["id"],
                "initiator": initiator,
                "latency_ns": hmat_value(topo, "latency_ns", initiator, target["id"]),
                "bandwidth_mbps": hmat_value(topo, "bandwidth_mbps", initiator, target["id"]),
            })
    return {
        "topology": name,
        "summary": topo["summary"],
        "nodes": [
            {
                "id": n["id"],
                "cpus": n["cpus"],
                "memory_bytes": n["memory_mib"] * MIB,
                "initiator": n["initiator"],
            }
            for n in topo["nodes"]
        ],
        "distances": topo["distances"],
        "hmat_local": hmat,
        "memory_side_caches": [
            {
                "node": c["node"],
                "level": c["level"],
                "size_bytes": c["size_mib"] * MIB,
                "line": c["line"],
            }
            for c in topo["memory_side_caches"]
        ],
        "devices": topo["devices"],
        # qemu_args gives each CPU node a socket of its own, and QEMU's
        # CPUs share their L3 per socket.
        "llc_groups": [n["cpus"] for n in cpu_nodes(topo)],
        "topo_json": hwloc_view(topo),
    }


def qemu_args(name, disk):
    """QEMU arguments for the machine (everything but the binary, the kernel,
    the initramfs and the console)."""
    topo = TOPOLOGIES[name]
    cpus_per_node = {len(n["cpus"]) for n in cpu_nodes(topo)}
    cores = cpus_per_node.pop()
    sockets = len(cpu_nodes(topo))
    total_cpus = sockets * cores
    total_mib = sum(n["memory_mib"] for n in topo["nodes"])
    machine = "q35,hmat=on" if topo["hmat"] is not None else "q35"
    args = [
        "-M", machine,
        "-smp", f"{total_cpus},sockets={sockets},cores={cores},threads=1",
        "-m", f"{total_mib}M",
    ]
    for n in topo["nodes"]:
        args += ["-object", f"memory-backend-ram,size={n['memory_mib']}M,id=mem{n['id']}"]
        spec = f"node,nodeid={n['id']},memdev=mem{n['id']}"
        for cpu in n["cpus"]:
            spec += f",cpus={cpu}"
        if n["initiator"] is not None:
            spec += f",initiator={n['initiator']}"
        args += ["-numa", spec]
    ids = [n["id"] for n in topo["nodes"]]
    for i, src in enumerate(ids):
        for j, dst in enumerate(ids):
            if i != j:
                args += ["-numa", f"dist,src={src},dst={dst},val={topo['distances'][i][j]}"]
    if topo["hmat"] is not None:
        for initiator in [n["id"] for n in cpu_nodes(topo)]:
            for target in ids:
                lat = hmat_value(topo, "latency_ns", initiator, target)
                bw = hmat_value(topo, "bandwidth_mbps", initiator, target)
                common = f"hmat-lb,initiator={initiator},target={target},hierarchy=memory"
                args += ["-numa", f"{common},data-type=access-latency,latency={lat}"]
                args += ["-numa", f"{common},data-type=access-bandwidth,bandwidth={bw}M"]
        for c in topo["memory_side_caches"]:
            args += ["-numa", (
                f"hmat-cache,node-id={c['node']},size={c['size_mib']}M,level={c['level']},"
                f"associativity=direct,policy=write-back,line={c['line']}"
            )]
    # One expander bridge per node that has devices, one root port per device.
    bridges = {}
    for index, dev in enumerate(topo["devices"]):
        bridge = bridges.get(dev["node"])
        if bridge is None:
            bridge = f"pxb{dev['node']}"
            bridges[dev["node"]] = bridge
            bus_nr = 32 * (len(bridges))
            args += ["-device", f"pxb-pcie,id={bridge},bus_nr={bus_nr},numa_node={dev['node']},bus=pcie.0"]
        port = f"rp{index}"
        args += ["-device", f"pcie-root-port,id={port},bus={bridge},chassis={index + 1}"]
        if dev["kind"] == "nvme":
            args += ["-drive", f"if=none,id=disk{index},file={disk},format=raw"]
            args += ["-device", f"nvme,serial=numavm{index},drive=disk{index},bus={port}"]
        elif dev["kind"] == "nic":
            args += ["-netdev", f"user,id=net{index}"]
            args += ["-device", f"e1000e,netdev=net{index},bus={port}"]
        else:
            raise ValueError(f"unknown device kind {dev['kind']!r}")
    return args


# ---------------------------------------------------------------------------
# Table validation


def validate(name, topo):
    """Problems with one table entry, as a list of messages."""
    problems = []
    ids = [n["id"] for n in topo["nodes"]]
    if ids != list(range(len(ids))):
        problems.append(f"node ids must be 0..N-1 in order (QEMU refuses gaps), got {ids}")
    all_cpus = sorted(c for n in topo["nodes"] for c in n["cpus"])
    if all_cpus != list(range(len(all_cpus))):
        problems.append(f"CPUs must be 0..N-1, each on one node, got {all_cpus}")
    # Linux numbers nodes in the order the firmware (QEMU's SRAT) lists them:
    # nodes with CPUs by their first CPU, then memory-only nodes. Other
    # numberings are renumbered by the guest kernel, so the table must use
    # the numbering the guest will show.
    linux_order = sorted(
        topo["nodes"], key=lambda n: (not n["cpus"], min(n["cpus"], default=0), n["id"])
    )
    if [n["id"] for n in linux_order] != ids:
        problems.append("number nodes as Linux will: by first CPU, memory-only nodes last")
    if len({len(n["cpus"]) for n in cpu_nodes(topo)}) != 1:
        problems.append("every CPU node needs the same CPU count (one socket per node)")
    d = topo["distances"]
    if len(d) != len(ids) or any(len(row) != len(ids) for row in d):
        problems.append("distance matrix must be N x N")
    else:
        for i in range(len(ids)):
            for j in range(len(ids)):
                if i == j and d[i][j] != 10:
                    problems.append(f"local distance of node {i} must be 10")
                if i != j and not 10 < d[i][j] <= 254:
                    problems.append(f"distance {i}->{j} must be in 11..254 (ACPI SLIT)")
    for n in topo["nodes"]:
        if not n["cpus"] and n["initiator"] not in [c["id"] for c in cpu_nodes(topo)]:
            problems.append(f"memory-only node {n['id']} needs a CPU node as initiator")
        if n["cpus"] and n["initiator"] is not None:
            problems.append(f"CPU node {n['id']} is its own initiator; drop `initiator`")
    if topo["hmat"] is not None:
        for kind in ("latency_ns", "bandwidth_mbps"):
            rows = topo["hmat"][kind]
            if sorted(rows) != [n["id"] for n in cpu_nodes(topo)]:
                problems.append(f"hmat {kind}: one row per CPU node")
            if any(len(r) != len(ids) or min(r) <= 0 for r in rows.values()):
                problems.append(f"hmat {kind}: one positive value per target node")
    elif topo["memory_side_caches"]:
        problems.append("memory-side caches need HMAT")
    for dev in topo["devices"]:
        if dev["node"] not in ids:
            problems.append(f"device {dev['kind']} on unknown node {dev['node']}")
        if dev["mount"] is not None and dev["kind"] != "nvme":
            problems.append(f"only NVMe disks carry a file system, not {dev['kind']}")
    if sum(dev["kind"] == "nvme" for dev in topo["devices"]) > 1:
        problems.append("one NVMe disk per machine (the script makes one disk image)")
    return [f"{name}: {p}" for p in problems]


def self_test():
    problems = [p for name, topo in TOPOLOGIES.items() for p in validate(name, topo)]
    # The derivations, checked on the memory-tier machine by hand.
    exp = expectation("memory-tier")
    view = exp["topo_json"]
    if view["nodes"][2]["cpus"] != [0, 1]:
        problems.append("memory-only node 2 should carry node 0's CPUs")
    lat = {e["target"]: (e["value"], e["initiator_cpus"]) for e in view["memattrs"]["Latency"]}
    if lat != {0: (80, [0, 1]), 1: (80, [2, 3]), 2: (320, [0, 1])}:
        problems.append(f"memory-tier Latency derived wrong: {lat}")
    if lat[2][0] != 4 * lat[0][0]:
        problems.append("memory-tier: node 2 latency must be 4x local")
    bw = {e["target"]: e["value"] for e in view["memattrs"]["Bandwidth"]}
    if bw != {0: 20000, 1: 20000, 2: 5000}:
        problems.append(f"memory-tier Bandwidth derived wrong: {bw}")
    args = qemu_args("memory-tier", "disk.img")
    if "node,nodeid=2,memdev=mem2,initiator=0" not in args:
        problems.append("memory-tier: node 2 spec missing from QEMU args")
    lb = [a for a in args if a.startswith("hmat-lb,")]
    if len(lb) != 2 * 2 * 3:
        problems.append(f"memory-tier: need latency+bandwidth for 2x3 pairs, got {len(lb)}")
    asym = expectation("four-node-asym")["topo_json"]
    if asym["memattrs"] != {} or asym["nodes"][3]["cpus"] != [3]:
        problems.append("four-node-asym: no memattrs, node 3 holds CPU 3")
    if "dist,src=1,dst=0,val=20" not in qemu_args("four-node-asym", "x"):
        problems.append("four-node-asym: asymmetric distance 1->0 missing")
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


def main(argv):
    usage = "usage: topologies.py list | expect NAME | qemu-args NAME DISK | self-test"
    if len(argv) < 2:
        print(usage, file=sys.stderr)
        return 2
    cmd = argv[1]
    if cmd == "list" and len(argv) == 2:
        for name, topo in TOPOLOGIES.items():
            print(f"{name}\t{topo['summary']}")
        return 0
    if cmd == "self-test" and len(argv) == 2:
        return self_test()
    if cmd in ("expect", "qemu-args") and len(argv) >= 3:
        name = argv[2]
        if name not in TOPOLOGIES:
            print(f"unknown topology {name!r}; known: {', '.join(TOPOLOGIES)}", file=sys.stderr)
            return 2
        problems = validate(name, TOPOLOGIES[name])
        if problems:
            print("\n".join(problems), file=sys.stderr)
            return 1
        if cmd == "expect" and len(argv) == 3:
            json.dump(expectation(name), sys.stdout, indent=1)
            print()
            return 0
        if cmd == "qemu-args" and len(argv) == 4:
            print("\n".join(qemu_args(name, argv[3])))
            return 0
    print(usage, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
