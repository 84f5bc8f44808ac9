"""`neocloud engines kueue render|apply` against a real `neocloud serve`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from neocloud.engines.kueue import yamlio
from neocloud.engines.kueue.crds import CrdSchemas
from tests.cli.runner import Cli, served
from tests.engines.kueue.conftest import SCHEMAS
from tests.engines.kueue.world import AT, build_kueue_world

TOKEN = "nc_kueue_cli_bootstrap"
cli = Cli(TOKEN)
TESTDATA = Path(__file__).parent / "testdata"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with served(tmp_path_factory, TOKEN) as url:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
            build_kueue_world(c)  # type: ignore[arg-type]  # the same calls as a TestClient
        yield url


def test_render_writes_a_file_per_site_equal_to_the_golden_files(
    server: str, tmp_path: Path, crds: CrdSchemas
) -> None:
    out = tmp_path / "kueue"
    code, text = cli(server, "engines", "kueue", "render", "--at", AT, "-o", str(out))
    assert code == 0, text
    assert sorted(p.name for p in out.iterdir()) == ["east.yaml", "north.yaml", "west.yaml"]
    for path in out.iterdir():
        assert path.read_text() == (TESTDATA / path.name).read_text(), path.name
        crds.validate(yamlio.load(path.read_text()))
    assert "east.yaml (16 objects)" in text.replace("\n", "")


def test_render_one_site_to_stdout_checked_against_the_crds(server: str) -> None:
    args = ("engines", "kueue", "render", "--site", "west", "--at", AT)
    code, text = cli(server, *args, "--schemas", str(SCHEMAS))
    assert code == 0, text
    assert text == (TESTDATA / "west.yaml").read_text()


def test_render_an_unknown_site_fails_with_the_api_error(server: str) -> None:
    code, text = cli(server, "engines", "kueue", "render", "--site", "nowhere")
    assert code == 2
    assert "404" in text and "nowhere" in text


def test_apply_without_a_kubeconfig_is_a_clear_error(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    code, text = cli(server, "engines", "kueue", "apply", "--site", "east")
    assert code == 2
    assert "no kubeconfig: pass --kubeconfig FILE or set KUBECONFIG" in text


def test_apply_needs_the_site_when_there_are_several(server: str, tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text("apiVersion: v1\nkind: Config\n")
    code, text = cli(server, "engines", "kueue", "apply", "--kubeconfig", str(config))
    assert code == 2
    assert "--site" in text and "east, north, west" in text


def test_apply_with_a_broken_kubeconfig_says_which(server: str, tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text("apiVersion: v1\nkind: Config\n")
    args = ("engines", "kueue", "apply", "--site", "east", "--kubeconfig", str(config))
    code, text = cli(server, *args, "--dry-run")
    assert code == 2
    assert f"kubeconfig {config}" in text.replace("\n", "")  # the console may wrap it
