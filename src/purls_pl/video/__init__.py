"""Video in: a pose front end that turns a video (MediaPipe, the ``video`` extra) or pose-estimator JSON
(MMPose, OpenPose) into one tracked person's landmarks, mapped onto a checkpoint's layout and prepared as
its training data were (:mod:`.landmarks`). ``purls-pl recognize-video`` (:mod:`purls_pl.apps.recognize_video`)
scores windows of it against any action names.

Nothing here imports mediapipe or OpenCV at import time: without the extra, the JSON path works and a video
file fails with how to install it.
"""

from purls_pl.video.landmarks import PoseTrack, check_mappable, pose_track_from_json, to_layout, window_raw

__all__ = ["PoseTrack", "check_mappable", "pose_track_from_json", "to_layout", "window_raw"]
