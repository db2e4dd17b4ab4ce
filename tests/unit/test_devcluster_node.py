"""`dev-cluster up --node` configuration: the settings this machine needs, and every host path
and name scoped to the cluster (its state dir and tag), so it never touches other users'."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from bpfglobals.devcluster.node import NodeSpec, write_configs


def spec(state: Path) -> NodeSpec:
    return NodeSpec(
        tag="abc123",
        name="vm",
        bridge="bpfgbrabc123",
        prefix="10.213.7",
        cgroup_root="/bpfglobals-abc123",
        registry="127.0.0.1:5123",
        containerd_socket=str(state / "containerd" / "containerd.sock"),
    )


def test_node_configs_carry_what_this_machine_needs_and_stay_under_the_state_dir(
    tmp_path,
) -> None:
    s = spec(tmp_path)
    write_configs(tmp_path, s, {"kubelet": 10250, "kubelet_healthz": 10248})
    ctd = tomllib.loads((tmp_path / "containerd" / "config.toml").read_text())
    cri = ctd["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is True  # no CAP_SYS_RESOURCE on this VM
    assert cri["netns_mounts_under_state_dir"] is True  # not /var/run/netns
    assert cri["sandbox_image"] == "127.0.0.1:5123/pause:1"
    runc = cri["containerd"]["runtimes"]["runc"]["options"]
    paths = [ctd["root"], ctd["state"], ctd["grpc"]["address"], runc["Root"]]
    paths += [cri["cni"]["conf_dir"], cri["registry"]["config_path"]]
    assert all(p.startswith(f"{tmp_path}/") for p in paths), paths
    hosts = tmp_path / "containerd" / "certs.d" / "127.0.0.1:5123" / "hosts.toml"
    assert tomllib.loads(hosts.read_text())["server"] == "http://127.0.0.1:5123"

    cni = json.loads((tmp_path / "cni" / "net.d" / "10-bpfglobals.conflist").read_text())
    bridge = cni["plugins"][0]
    assert (bridge["type"], bridge["bridge"], bridge["ipMasq"]) == ("bridge", s.bridge, False)
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.213.7.0/24", "gateway": "10.213.7.1"}]]
    assert bridge["ipam"]["dataDir"].startswith(f"{tmp_path}/")

    kubelet = json.loads((tmp_path / "kubelet.yaml").read_text())
    assert kubelet["failCgroupV1"] is False and kubelet["cgroupDriver"] == "cgroupfs"
    assert kubelet["cgroupRoot"] == "/bpfglobals-abc123"
    assert kubelet["imagePullCredentialsVerificationPolicy"] == "NeverVerify"
    assert kubelet["address"] == kubelet["healthzBindAddress"] == "127.0.0.1"
    assert kubelet["readOnlyPort"] == 0 and kubelet["makeIPTablesUtilChains"] is False
    assert kubelet["containerRuntimeEndpoint"] == f"unix://{s.containerd_socket}"
    for key in ("podLogsDir", "volumePluginDir"):
        assert kubelet[key].startswith(f"{tmp_path}/")

    registry = json.loads((tmp_path / "registry.yml").read_text())
    assert registry["http"]["addr"] == "127.0.0.1:5123"
    assert registry["storage"]["filesystem"]["rootdirectory"].startswith(f"{tmp_path}/")


def test_node_spec_round_trips_through_cluster_json(tmp_path) -> None:
    s = spec(tmp_path)
    assert NodeSpec.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    assert s.gateway == "10.213.7.1"
