"""The joint-order check: real and generated data in their layout raise nothing; swapped joints do."""

import numpy as np

from purls_pl.data.demo import generate_demo
from purls_pl.data.layout_check import check_layout
from purls_pl.data.layouts import KINECT20, NTU25


def test_correct_order_passes_and_swaps_are_reported_with_their_evidence():
    data, _ = generate_demo(4, 24, 0)
    assert check_layout(data, NTU25) == []
    swapped = data[..., [*range(5), 14, *range(6, 14), 5, *range(15, 25)], :]  # left elbow <-> left ankle
    problems = check_layout(swapped, NTU25)
    assert any("left_elbow-left_shoulder and right_elbow-right_shoulder differ in length by x" in p for p in problems)
    assert len(problems) == len(set(problems)), "each contradiction once"
    shifted = np.roll(data, 1, axis=3)  # every joint one place off
    assert any("may not be neighbours" in p for p in check_layout(shifted, NTU25))
    assert check_layout(data[..., :20, :], NTU25) == ["the data have 20 joints but layout 'ntu25' has 25"]


def test_real_nw_ucla_skeletons_fit_their_layout(tmp_path):
    from conftest import shared_path

    from purls_pl.data.readers import Conversion, UCLASource

    root = shared_path("data", "nw-ucla", "all_sqe")
    data = UCLASource(str(root), num_frames=16, conversion=Conversion(max_samples=150, cache=False)).load().data
    assert check_layout(data, KINECT20) == []
