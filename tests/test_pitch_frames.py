"""`pitch.frame_rms`, chunk by chunk, is the whole-array float64 RMS bit for bit: the loud
frames, and so the pitch, are those they always were."""

import numpy as np
import pytest

from jaxeq import pitch


@pytest.mark.parametrize("seconds", [0.1, 7.3, 61.0])
def test_frame_rms_in_chunks_is_the_rms_of_all_frames_at_once(seconds):
  rng = np.random.default_rng(int(seconds * 10))
  signal = (rng.standard_normal(int(seconds * 44100)) * np.geomspace(1e-4, 1, int(seconds * 44100))
            ).astype(np.float32)
  frames = np.lib.stride_tricks.sliding_window_view(signal, pitch.FRAME)[::pitch.HOP]
  whole = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
  for chunk in (1, 7, 256):
    np.testing.assert_array_equal(pitch.frame_rms(frames, chunk), whole)
