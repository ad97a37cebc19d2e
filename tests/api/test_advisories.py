"""Each ecosystem's version order (chalicelib/scanning/versions.py), OSV's range evaluation and
CVSS v3 base scores (chalicelib/scanning/advisories.py): pure functions, checked against the orders
the ecosystems' own tools define and FIRST's published example scores."""
import pytest

from chalicelib.scanning import advisories, versions

ASCENDING = {
    "dpkg": ["1.0~rc1", "1.0", "1.0-1", "1.0-1+b1", "1.0a", "1.0+", "1.9", "1.10", "2.36-9+deb12u3",
             "2.36-9+deb12u4", "3.0.11-1~deb12u1", "3.0.11-1~deb12u2", "1:0.1"],
    "rpm": ["1.0~rc1", "1.0", "1.0^post", "1.0a", "1.0.1", "2.0-1.el9", "2.0-2.el9", "10.0", "1:1.0"],
    "apk": ["1.2.3_alpha", "1.2.3_beta", "1.2.3_rc1", "1.2.3", "1.2.3-r1", "1.2.3_p1", "1.2.3a", "1.9.9", "1.10"],
    "semver": ["0.0.0-20210101000000-abcdef", "0.0.1", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta",
               "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "v1.2.3", "1.10.0"],
    "pep440": ["1.0.dev1", "1.0a1", "1.0", "1.0.post1", "2.0", "10.0"],
    "maven": ["1.0-alpha", "1.0-beta", "1.0-rc1", "1.0-SNAPSHOT", "1.0", "1.0-sp1", "1.0.1", "2.9.10", "2.9.10.1", "2.10"],
}


@pytest.mark.parametrize("order", sorted(ASCENDING))
def test_each_order_sorts_versions_as_its_ecosystem_does(order):
    given = ASCENDING[order]
    assert sorted(reversed(given), key=lambda v: versions.key(order, v)) == given


def test_equal_versions_and_unreadable_ones():
    assert versions.key("maven", "1.0.0") == versions.key("maven", "1")
    assert versions.key("semver", "v1.2.3") == versions.key("semver", "1.2.3+incompatible")
    for order in ("dpkg", "apk", "semver", "pep440", "maven"):
        with pytest.raises(versions.Unreadable):
            versions.key(order, "not a version!")


def entry(*events, versions_listed=()):
    return {"ecosystem": "PyPI", "ranges": [{"type": "ECOSYSTEM", "events": list(events)}],
            "versions": list(versions_listed), "severity": "UNKNOWN", "score": None}


@pytest.mark.parametrize("version,expected", [
    ("0.9", (False, None)), ("1.0", (True, "1.5")), ("1.4.9", (True, "1.5")), ("1.5", (False, None)),
    ("1.9", (False, None)), ("2.0", (True, None)), ("2.3", (True, None)), ("2.3.1", (False, None)),
])
def test_osv_ranges_introduce_fix_and_end_at_last_affected(version, expected):
    ranges = entry({"introduced": "1.0"}, {"fixed": "1.5"}, {"introduced": "2.0"}, {"last_affected": "2.3"})
    assert advisories.affects(ranges, "pep440", version) == expected


def test_limit_and_listed_versions_and_an_unreadable_installed_version():
    assert advisories.affects(entry({"introduced": "0"}, {"limit": "3.0"}), "pep440", "3.1") == (False, None)
    assert advisories.affects(entry({"introduced": "0"}, {"limit": "3.0"}), "pep440", "2.0") == (True, None)
    listed = entry(versions_listed=["weird-1"])
    assert advisories.affects(listed, "pep440", "weird-1") == (True, None)
    assert advisories.affects(listed, "pep440", "weird-2") == (False, None)


@pytest.mark.parametrize("vector,score,rating", [
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, "CRITICAL"),  # CVE-2021-44228 before scope
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0, "CRITICAL"),
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1, "MEDIUM"),  # FIRST's example: reflected XSS
    ("CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8, "HIGH"),
    ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.6, "LOW"),
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0, "UNKNOWN"),
])
def test_cvss3_base_scores(vector, score, rating):
    assert advisories.cvss3_score(vector) == score and advisories.rating(score) == rating


def test_severity_falls_back_to_what_the_database_says():
    assert advisories.severity_of({"database_specific": {"severity": "MODERATE"}}) == ("MEDIUM", None)
    assert advisories.severity_of({}, {"ecosystem_specific": {"urgency": "low"}}) == ("LOW", None)
    assert advisories.severity_of({"severity": [{"type": "CVSS_V4", "score": "CVSS:4.0/AV:N"}]}) == ("UNKNOWN", None)
    assert advisories.cvss3_score("CVSS:3.1/AV:X") is None


def test_what_one_advisory_says_of_a_package_fits_in_one_item():
    from chalicelib.oci.errors import RegistryError
    many = [f"1.{n}.{m}" for n in range(100) for m in range(50)]  # 5,000 listed versions
    document = {"id": "PYSEC-1", "affected": [{"package": {"ecosystem": "PyPI", "name": "big"}, "versions": many,
                                               "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}
                                              for _ in range(20)]}
    (record,) = advisories.parse(document)
    assert all(entry["versions"] == [] for entry in record.entries)  # the ranges kept, the long lists dropped
    assert advisories.affects(record.entries[0], "pep440", "1.2.3") == (True, None)
    huge = {"id": "PYSEC-2", "affected": [{"package": {"ecosystem": "PyPI", "name": "big"}, "ranges": [
        {"type": "ECOSYSTEM", "events": [{"introduced": str(n)} for n in range(3000)]}]} for _ in range(100)]}
    with pytest.raises(RegistryError, match="over 300000 bytes"):
        advisories.parse(huge)


def test_stored_findings_are_bounded_and_keep_the_most_severe():
    from chalicelib.policy import vulnerabilities
    import os
    findings = [{"id": f"X-{n}", "severity": "HIGH", "summary": os.urandom(200).hex()} for n in range(5000)]
    blob = vulnerabilities.encode(findings, 64 * 1024)
    kept = vulnerabilities.decode(blob)
    assert len(blob) <= 64 * 1024 and 0 < len(kept) < 5000 and kept == findings[:len(kept)]
