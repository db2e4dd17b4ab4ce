"""The scale scenario of issue 12 at a small size, in the suite: the real operator against 200
simulated nodes (bpfglobals.k8s.simulator) and 2 BpfPrograms on the real apiserver. The
5,000-node run is bench/scale_sim.py."""

from __future__ import annotations

from tests.support.scale_sim import Scenario


def test_200_simulated_nodes_converge_with_bounded_objects_and_writes(
    control_plane, tmp_path
) -> None:
    scenario = Scenario(control_plane, 200, 2, tmp_path)
    try:
        r = scenario.run(timeout=240, steady=5)
    finally:
        scenario.cleanup()
    assert r["stuck"] == 0, r
    assert r["writes_per_node_change"] <= 3, r
    # one agent report per node and change; the operator's BpfNode writes carry both programs'
    # changes to a node in one request when their rollout waves meet (at most one each)
    assert r["writes_during_change"]["bpfprogramnodes PATCH"] == 400, r
    assert 200 <= r["writes_during_change"]["bpfnodes PATCH"] <= 400, r
    assert r["max_object_bytes"] <= 256 * 1024, r
    assert r["lists_per_agent_hour"] == 0, r  # no agent relisted in steady state
    assert r["create_s"] < 120 and r["rollout_s"] < 120, r
