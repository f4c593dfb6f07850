import pytest

from prefrl.utils import publish_directory


def test_publish_replaces_only_when_build_succeeds(tmp_path):
    target = tmp_path / "model"
    publish_directory(target, lambda d: (d / "w.txt").write_text("v1"))
    assert (target / "w.txt").read_text() == "v1"

    def broken(directory):
        (directory / "w.txt").write_text("half")
        raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError):
        publish_directory(target, broken)
    assert (target / "w.txt").read_text() == "v1"  # the earlier complete copy survives
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no staging debris
    publish_directory(target, lambda d: (d / "w.txt").write_text("v2"))
    assert (target / "w.txt").read_text() == "v2"
    publish_directory(target, lambda d: (d / "w.txt").write_text("v3"), replace=False)
    assert (target / "w.txt").read_text() == "v2"
