import numpy as np

from emr_lib import viz


def test_overlay_colours_true_and_false_positives_and_misses():
    image = np.zeros((2, 2, 3), np.uint8)
    truth = np.array([[1, 1], [0, 0]])
    pred = np.array([[1, 0], [1, 0]])
    out = viz.overlay(image, truth, pred, alpha=1.0)
    assert tuple(out[0, 0]) == viz.OVERLAY_COLOURS["TP"]
    assert tuple(out[0, 1]) == viz.OVERLAY_COLOURS["FN"]
    assert tuple(out[1, 0]) == viz.OVERLAY_COLOURS["FP"]
    assert tuple(out[1, 1]) == (0, 0, 0)


def test_saved_figures_are_palette_pngs_much_smaller_than_full_colour(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    photo = np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8)  # like a scene: many colours
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.imshow(photo)
    full_colour = tmp_path / "full.png"
    fig.savefig(full_colour, dpi=110, bbox_inches="tight")
    saved = viz.save_figure(fig, tmp_path / "saved.png", "provenance")
    with Image.open(saved) as image:
        assert image.mode == "P" and image.size[0] > 500
    assert saved.stat().st_size < 0.6 * full_colour.stat().st_size


def test_metric_comparison_shows_every_row_on_a_cut_axis_with_the_legend_clear_of_the_data():
    import matplotlib

    matplotlib.use("Agg")
    rows = [
        {"model": "a", "mIoU": 85.2, "paper_mIoU": 80.2},
        {"model": "b", "mIoU": 84.5, "paper_mIoU": 81.7},
        {"model": "c", "mIoU": 78.1},  # no paper value
    ]
    fig = viz.plot_metric_comparison(rows, "mIoU")
    ax = fig.axes[0]
    assert {t.get_text(): y for t, y in zip(ax.get_yticklabels(), ax.get_yticks())} == {"a": 2, "b": 1, "c": 0}
    ours, paper = (collection.get_offsets() for collection in ax.collections[1:])
    assert list(ours[:, 1]) == [2, 1, 0] and list(ours[:, 0]) == [85.2, 84.5, 78.1]
    assert np.ma.getmaskarray(paper)[2].all() and not np.ma.getmaskarray(paper)[:2].any()  # none for the missing value
    low, high = ax.get_xlim()
    assert 70 < low < 78.1 and 85.2 < high < 90  # the axis spans the values, not 0-100
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend_box = fig.legends[0].get_window_extent(renderer)
    assert legend_box.y1 < ax.get_window_extent(renderer).y0  # below the axes, so it covers no row


def test_metric_comparison_draws_each_rows_interval_as_whiskers():
    import matplotlib

    matplotlib.use("Agg")
    rows = [
        {"model": "a", "mIoU": 85.2, "mIoU_low": 83.0, "mIoU_high": 87.1, "paper_mIoU": 80.2},
        {"model": "b", "mIoU": 84.5, "paper_mIoU": 81.7},  # no interval: no whiskers
    ]
    fig = viz.plot_metric_comparison(rows, "mIoU")
    ax = fig.axes[0]
    (errorbars,) = ax.containers
    row_a, row_b = (segment[:, 0].tolist() for segment in errorbars.lines[2][0].get_segments())
    assert row_a == [83.0, 87.1] and row_b == [84.5, 84.5]  # row b has none: zero length
    assert ax.get_xlim()[1] > 87.1  # the axis holds the whole interval
    assert "95 % interval over the test images" in [t.get_text() for t in fig.legends[0].get_texts()]
