"""The admission webhook's decisions (`k8s.admission.Reviewer`) on a real compiled object:
each error class of the codec denied with its message, valid documents allowed, an object
that cannot be fetched in time allowed with a warning."""

from __future__ import annotations

import hashlib
import http.server
import threading
import time

import pytest

from bpfglobals.k8s.admission import Reviewer
from bpfglobals.node.elf_source import ElfSources


@pytest.fixture(scope="module")
def obj(bpf_object):
    path = bpf_object("globals")
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def review(obj, globals_=None, programs=("config_ret",), op="CREATE", sha=None, **spec):
    path, digest = obj
    body = {
        "metadata": {"name": "p"},
        "spec": {
            "elf": {"path": str(path), "sha256": sha or digest},
            "programs": [{"name": n, "attach": {"xdp": {"interface": "eth0"}}} for n in programs],
            "globals": globals_ or {},
            **spec,
        },
    }
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {"uid": "u-1", "operation": op, "object": body},
    }


@pytest.fixture(scope="module")
def reviewer():
    return Reviewer(ElfSources())


def answer(reviewer, doc) -> dict:
    out = reviewer.review(doc)
    assert out["kind"] == "AdmissionReview" and out["response"]["uid"] == "u-1"
    return out["response"]


def test_a_valid_document_is_allowed_without_warnings(reviewer, obj) -> None:
    r = answer(reviewer, review(obj, {"ro_u16": 80, "ro_mode": "MODE_DROP", "ro_name": "eth1"}))
    assert r == {"uid": "u-1", "allowed": True}


@pytest.mark.parametrize(
    ("globals_", "programs", "expected"),
    [
        ({"ro_u16x": 1}, ["config_ret"], "no global variable 'ro_u16x'"),
        ({"ro_u16": 70000}, ["config_ret"], "70000 is out of range for 16-bit unsigned integer"),
        ({"ro_bool": "yes"}, ["config_ret"], "expected true or false, got 'yes'"),
        ({"ro_mode": "MODE_DORP"}, ["config_ret"], "MODE_DORP"),
        ({"ro_name": "x" * 16}, ["config_ret"], "ro_name"),
        ({}, ["no_such_prog"], "no program 'no_such_prog'"),
    ],
)
def test_each_error_class_is_denied_with_the_codecs_message(
    reviewer, obj, globals_, programs, expected
) -> None:
    r = answer(reviewer, review(obj, globals_, programs))
    assert r["allowed"] is False
    assert r["status"]["code"] == 422
    assert expected in r["status"]["message"]
    assert r["status"]["message"].startswith("BpfProgram 'p' is invalid")


def test_the_message_names_variable_type_section_and_path(reviewer, obj) -> None:
    r = answer(reviewer, review(obj, {"ro_cfg": {"lim": {"high": 70000}}}))
    assert (
        "variable 'ro_cfg' (const volatile struct cfg in .rodata) at ro_cfg.lim.high: 70000 is "
        "out of range" in r["status"]["message"]
    )


def test_every_problem_is_listed(reviewer, obj) -> None:
    r = answer(reviewer, review(obj, {"ro_u8": 300, "nope": 1}, ["config_ret", "nope_prog"]))
    msg = r["status"]["message"]
    assert "(3 problems)" in msg and "ro_u8" in msg and "'nope'" in msg and "nope_prog" in msg


def test_a_wrong_digest_is_denied(reviewer, obj) -> None:
    r = answer(reviewer, review(obj, sha="0" * 64))
    assert r["allowed"] is False and "sha256 mismatch" in r["status"]["message"]


def test_a_spec_the_parser_refuses_is_denied(reviewer, obj) -> None:
    doc = review(obj)
    del doc["request"]["object"]["spec"]["elf"]["sha256"]
    r = answer(reviewer, doc)
    assert r["allowed"] is False and "spec.elf.sha256: required" in r["status"]["message"]


def test_overrides_and_node_sources_are_checked(reviewer, obj) -> None:
    bad = review(
        obj,
        {
            "ro_cfg": {"fromNode": {"label": "zone"}},
            "ro_mac": {"fromNode": {"address": "InternalIP"}},
        },
        nodeOverrides=[{"nodeSelector": {"pool": "a"}, "globals": {"ro_u8": 256}}],
    )
    msg = answer(reviewer, bad)["status"]["message"]
    assert "spec.nodeOverrides[0].globals: variable 'ro_u8'" in msg
    assert "spec.globals.ro_cfg: fromNode.label 'zone': a label is an integer or a string" in msg
    assert "spec.globals.ro_mac: fromNode.address InternalIP: the variable cannot take" in msg
    good = review(
        obj,
        {
            "ro_addr_be": {"fromNode": {"address": "InternalIP"}},
            "ro_addr6": {"fromNode": {"address": "InternalIP"}},
            "ro_name": {"fromNode": {"label": "topology.kubernetes.io/zone"}, "default": "none"},
            "ro_u32": {"fromNode": {"annotation": "example.com/id"}, "default": 0},
        },
        nodeOverrides=[{"nodeSelector": {"pool": "a"}, "globals": {"ro_u8": 255}}],
    )
    assert answer(reviewer, good)["allowed"] is True
    bad_default = review(obj, {"ro_u8": {"fromNode": {"label": "x"}, "default": 999}})
    msg = answer(reviewer, bad_default)["status"]["message"]
    assert "spec.globals.ro_u8: default: variable 'ro_u8'" in msg and "999" in msg


def test_updates_that_keep_the_spec_and_deletes_are_allowed_without_a_check(reviewer, obj) -> None:
    doc = review(obj, {"ro_u16": 70000}, op="UPDATE")
    doc["request"]["oldObject"] = doc["request"]["object"]  # e.g. a finalizer removed
    assert answer(reviewer, doc)["allowed"] is True
    assert answer(reviewer, review(obj, {"ro_u16": 70000}, op="DELETE"))["allowed"] is True
    changed = review(obj, {"ro_u16": 70000}, op="UPDATE")
    changed["request"]["oldObject"] = review(obj)["request"]["object"]
    assert answer(reviewer, changed)["allowed"] is False


def test_an_object_not_fetched_in_time_is_allowed_with_a_warning(obj) -> None:
    release = threading.Event()

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            release.wait(10)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        reviewer = Reviewer(ElfSources(), fetch_deadline=0.3)
        doc = review(obj, {"ro_u16": 70000})
        url = f"http://127.0.0.1:{server.server_address[1]}/o.bpf.o"
        doc["request"]["object"]["spec"]["elf"] = {"url": url, "sha256": "ab" * 32}
        start = time.monotonic()
        r = answer(reviewer, doc)
        assert time.monotonic() - start < 2
        assert r["allowed"] is True
        assert "not fetched within 0.3s" in r["warnings"][0]
        assert "the operator validates it after it is stored" in r["warnings"][0]
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def test_a_source_that_fails_is_allowed_with_a_warning(obj) -> None:
    reviewer = Reviewer(ElfSources())  # no ConfigMap reader: like an unreachable source
    doc = review(obj)
    ref = {"namespace": "default", "name": "x", "key": "o.bpf.o"}
    doc["request"]["object"]["spec"]["elf"] = {"configMap": ref, "sha256": "ab" * 32}
    r = answer(reviewer, doc)
    assert r["allowed"] is True and r["warnings"][0].startswith("not checked: spec.elf configMap")
