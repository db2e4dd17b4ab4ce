"""The value codec on a real object's BTF: every type, every error, and round trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpfglobals.elf import read_object
from bpfglobals.elf.btf import Btf
from bpfglobals.elf.btf_types import Int, IntEncoding
from bpfglobals.errors import ValueEncodingError
from bpfglobals.values import configure, decode, decode_variables, encode
from bpfglobals.values.codec import int_range
from bpfglobals.values.errors import Where


@pytest.fixture(scope="module")
def obj(bpf_object):
    return read_object(bpf_object("globals"))


def test_defaults_decode_as_written_in_the_source(obj) -> None:
    v = decode_variables(obj)
    assert (v["ro_u8"], v["ro_s8"], v["ro_s64"], v["ro_bool"]) == (8, -8, -6400000000, True)
    assert v["ro_mode"] == "MODE_LOG" and v["ro_name"] == "eth0"
    assert v["ro_ports"] == [80, 443, 0, 0]
    assert v["ro_cfg"]["lim"] == {"low": 10, "high": 20}
    assert (v["ro_cfg"]["bit_a"], v["ro_cfg"]["bit_b"]) == (5, 17)
    assert v["ro_port_be"] == 80 and v["ro_addr_be"] == "127.0.0.1"
    assert v["ro_mac"] == "02:00:00:00:00:01"
    assert v["ro_static"] == 7 and v["data_delta"] == -3 and v["bss_hits"] == 0


CASES = {
    "ro_u64": (2**64 - 1, (2**64 - 1).to_bytes(8, "little")),
    "ro_s16": (-32768, (-32768 & 0xFFFF).to_bytes(2, "little")),
    "ro_u32": ("0x10", (16).to_bytes(4, "little")),
    "ro_bool": (False, b"\0"),
    "ro_mode": ("MODE_DROP", (2).to_bytes(4, "little")),
    "ro_name": ("veth-a", b"veth-a" + bytes(10)),
    "ro_port_be": (8080, (8080).to_bytes(2, "big")),
    "ro_addr_be": ("10.1.2.3", bytes([10, 1, 2, 3])),
    "ro_addr_u32": ("192.168.0.1", bytes([192, 168, 0, 1])),
    "ro_be64": (1, (1).to_bytes(8, "big")),
    "ro_mac": ("aa:bb:cc:dd:ee:ff", bytes.fromhex("aabbccddeeff")),
    "ro_addr6": ("2001:db8::1", bytes.fromhex("20010db8000000000000000000000001")),
    "ro_raw16": ({"bytes": "00" * 15 + "ff"}, bytes(15) + b"\xff"),
    "ro_ports": ([1, 2, 3, 4], b"".join(i.to_bytes(4, "little") for i in (1, 2, 3, 4))),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_encodes_to_the_exact_bytes(obj, name: str) -> None:
    value, expected = CASES[name]
    var = obj.variable(name)
    images = configure(obj, {name: value})
    assert images[var.section][var.offset : var.offset + var.size] == expected
    # and nothing else in any section moved
    for d in obj.data_sections:
        img = bytearray(images[d.name])
        if d.name == var.section:
            img[var.offset : var.offset + var.size] = d.data[var.offset : var.offset + var.size]
        assert bytes(img) == d.data


def test_struct_members_left_out_keep_their_defaults(obj) -> None:
    images = configure(obj, {"ro_cfg": {"lim": {"high": 99}, "bit_b": 31, "u": {"as_u32": 7}}})
    cfg = decode_variables(obj, images)["ro_cfg"]
    assert cfg["lim"] == {"low": 10, "high": 99}
    assert (cfg["flags"], cfg["bit_a"], cfg["bit_b"], cfg["u"]) == (1, 5, 31, {"as_u32": 7})


ERRORS = [
    (
        {"ro_u8": 256},
        r"'ro_u8' \(const volatile __u8 in \.rodata\): 256 is out of range .*\[0, 255\]",
    ),
    ({"ro_s8": -129}, r"ro_s8.*-129 is out of range"),
    ({"ro_u32": -1}, r"ro_u32.*out of range"),
    ({"ro_u32": True}, r"expected an integer, got the boolean true"),
    ({"ro_u32": "abc"}, r"expected an integer, got 'abc'"),
    ({"ro_bool": 2}, r"ro_bool.*expected true or false"),
    (
        {"ro_mode": "MODE_X"},
        r"'MODE_X' is not a member of enum mode \(MODE_OFF, MODE_LOG, MODE_DROP\)",
    ),
    ({"ro_name": "x" * 16}, r"char\[16\].*at most 15 bytes plus NUL"),
    ({"ro_ports": [1, 2]}, r"__u32\[4\].*expected exactly 4 elements, got 2"),
    ({"ro_ports": [1, 2, 3, 2**40]}, r"at ro_ports\[3\]: 1099511627776 is out of range"),
    ({"ro_cfg": {"nope": 1}}, r"struct cfg.*unknown member 'nope' \(members: flags, lim"),
    ({"ro_cfg": {"lim": {"high": 70000}}}, r"at ro_cfg\.lim\.high: 70000 is out of range"),
    ({"ro_cfg": {"bit_a": 8}}, r"at ro_cfg\.bit_a: 8 is out of range for a 3-bit field \[0, 7\]"),
    ({"ro_cfg": {"u": {"as_u32": 1, "as_bytes": [1, 2, 3, 4]}}}, r"a union holds one member"),
    ({"ro_mac": "zz:bb"}, r"expected a list of 6 elements"),
    ({"ro_raw16": {"bytes": "00"}}, r"exactly 16 bytes, got 1"),
    ({"ro_u3": 1}, r"no global variable 'ro_u3'.*did you mean 'ro_u32'"),
]


@pytest.mark.parametrize(("values", "pattern"), ERRORS)
def test_errors_name_variable_type_section_and_reason(obj, values, pattern) -> None:
    with pytest.raises(ValueEncodingError, match=pattern):
        configure(obj, values)


def test_a_bad_value_among_good_ones_changes_nothing(obj) -> None:
    with pytest.raises(ValueEncodingError):
        configure(obj, {"ro_u32": 1, "ro_u8": 999})


def test_pointers_and_floats_are_refused() -> None:
    from bpfglobals.elf.btf_types import Float, Ptr

    btf = Btf([Btf().types[0], Int("int", 4, IntEncoding.SIGNED, 32), Ptr(1), Float("double", 8)])
    where = Where("p", "int *", ".data")
    with pytest.raises(ValueEncodingError, match="pointers cannot be configured"):
        encode(btf, 2, 5, bytes(8), where)
    with pytest.raises(ValueEncodingError, match="floating-point"):
        encode(btf, 3, 1.5, bytes(8), where)


# -- property tests: every integer width, signed and unsigned ---------------------------------

WIDTHS = [(size, signed) for size in (1, 2, 4, 8, 16) for signed in (False, True)]


def _int_btf(size: int, signed: bool) -> Btf:
    enc = IntEncoding.SIGNED if signed else IntEncoding.NONE
    return Btf([Btf().types[0], Int(f"i{size}", size, enc, size * 8)])


@pytest.mark.parametrize(("size", "signed"), WIDTHS)
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_int_round_trip_and_bounds(size: int, signed: bool, data) -> None:
    btf = _int_btf(size, signed)
    lo, hi = int_range(size * 8, signed)
    where = Where("v", "t", ".data")
    n = data.draw(st.one_of(st.integers(lo, hi), st.sampled_from([lo, hi])))
    raw = encode(btf, 1, n, bytes(size), where)
    assert raw == n.to_bytes(size, "little", signed=signed)
    assert decode(btf, 1, raw) == n
    bad = data.draw(st.one_of(st.integers(max_value=lo - 1), st.integers(min_value=hi + 1)))
    with pytest.raises(ValueEncodingError, match="out of range"):
        encode(btf, 1, bad, bytes(size), where)


@settings(max_examples=200, deadline=None)
@given(
    low=st.integers(0, 0xFFFF),
    high=st.integers(0, 0xFFFF),
    flags=st.integers(0, 2**32 - 1),
    bit_a=st.integers(0, 7),
    bit_b=st.integers(0, 31),
    tag=st.lists(st.integers(0, 255), min_size=4, max_size=4),
)
def test_struct_round_trip(bpf_object, low, high, flags, bit_a, bit_b, tag) -> None:
    obj = read_object(bpf_object("globals"))
    value = {
        "flags": flags,
        "lim": {"low": low, "high": high},
        "tag": tag,
        "u": {"as_u32": flags},
        "bit_a": bit_a,
        "bit_b": bit_b,
    }
    images = configure(obj, {"ro_cfg": value})
    assert decode_variables(obj, images)["ro_cfg"] == value
