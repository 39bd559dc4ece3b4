"""Local files of the report as links to the run's artifact (nothing for cml to upload)."""

from __future__ import annotations

from stages.compare.assets import link_assets, local_refs

MD = (
    "![ROC](plot_roc.png)\n[model card](model_card.md)\n"
    "[docs](https://example.com/x.png) [top](#metrics) ![abs](/etc/x.png)\n"
)


def test_local_images_and_links_become_artifact_links() -> None:
    assert local_refs(MD) == ["plot_roc.png", "model_card.md"]
    out = link_assets(MD, "https://github.com/o/r/actions/runs/1/artifacts/2")
    assert local_refs(out) == []
    assert "[ROC (`plot_roc.png`, image) in the report artifact](https://github.com/o/r/" in out
    assert "[model card (`model_card.md`) in the report artifact](https://" in out
    assert "[docs](https://example.com/x.png) [top](#metrics) ![abs](/etc/x.png)" in out


def test_without_an_artifact_url_the_file_is_named() -> None:
    out = link_assets(MD, None)
    assert local_refs(out) == []
    assert "ROC (`plot_roc.png`, image) in the workflow run's `report` artifact" in out
