"""Specs of the bitmap commands."""

from __future__ import annotations

from .keyspec import ks
from .spec import block, command, integer, key, multiple, oneof, optional, string, token

G = "bitmap"

_unit = oneof("unit", token("BYTE"), token("BIT"), optional=True, since="7.0.0")

_overflow = block(
    "overflow-block",
    oneof("overflow-behavior", token("WRAP"), token("SAT"), token("FAIL"), token="OVERFLOW"),
)

SPECS = (
    command(
        "bitcount",
        -2,
        "readonly",
        G,
        "Count set bits in a string",
        "2.6.0",
        key(),
        optional(block("range", integer("start"), integer("end"), _unit)),
        complexity="O(N)",
        keys=ks("RO ACCESS"),
    ),
    command(
        "bitfield",
        -2,
        "write denyoom",
        G,
        "Perform arbitrary bitfield integer operations on strings",
        "3.2.0",
        key(),
        multiple(
            oneof(
                "operation",
                block("get-block", string("encoding"), integer("offset"), token="GET"),
                block(
                    "write",
                    optional(_overflow),
                    oneof(
                        "write-operation",
                        block(
                            "set-block",
                            string("encoding"),
                            integer("offset"),
                            integer("value"),
                            token="SET",
                        ),
                        block(
                            "incrby-block",
                            string("encoding"),
                            integer("offset"),
                            integer("increment"),
                            token="INCRBY",
                        ),
                    ),
                ),
                optional=True,
            )
        ),
        complexity="O(1) for each subcommand specified",
        keys=ks(
            "RW ACCESS UPDATE VARIABLE_FLAGS",
            notes="Reads and writes; GET alone only reads (the bitfield key procedure tells)",
        ),
        key_proc="bitfield",
    ),
    command(
        "bitfield_ro",
        -2,
        "readonly fast",
        G,
        "Perform arbitrary bitfield integer operations on strings. Read-only variant of BITFIELD",
        "6.0.0",
        key(),
        multiple(
            block("get-block", string("encoding"), integer("offset"), token="GET", optional=True)
        ),
        complexity="O(1) for each subcommand specified",
        keys=ks("RO ACCESS"),
    ),
    command(
        "bitop",
        -4,
        "write denyoom",
        G,
        "Perform bitwise operations between strings",
        "2.6.0",
        oneof("operation", token("AND"), token("OR"), token("XOR"), token("NOT")),
        key("destkey"),
        multiple(key(spec=1)),
        complexity="O(N)",
        keys=(
            ks("OW UPDATE", 2),
            ks("RO ACCESS", 3, -1),
        ),
    ),
    command(
        "bitpos",
        -3,
        "readonly",
        G,
        "Find first bit set or clear in a string",
        "2.8.7",
        key(),
        integer("bit"),
        optional(
            block(
                "range", integer("start"), optional(block("end-unit-block", integer("end"), _unit))
            )
        ),
        complexity="O(N)",
        keys=ks("RO ACCESS"),
    ),
    command(
        "getbit",
        3,
        "readonly fast",
        G,
        "Returns the bit value at offset in the string value stored at key",
        "2.2.0",
        key(),
        integer("offset"),
        keys=ks("RO ACCESS"),
    ),
    command(
        "setbit",
        4,
        "write denyoom",
        G,
        "Sets or clears the bit at offset in the string value stored at key",
        "2.2.0",
        key(),
        integer("offset"),
        integer("value"),
        keys=ks("RW ACCESS UPDATE"),
    ),
)
