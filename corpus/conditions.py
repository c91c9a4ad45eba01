"""The conditions a clip is heard in, in training, evaluation and the reports (one list, in this order): the
recording as it is, and the simulations of train/ (a classroom: train.classroom; a pupil's voice:
train.voice_age; both at once)."""

CLEAN = "clean"
SIMULATED = ("classroom", "young", "young+classroom")  # every simulated condition
CONDITIONS = (CLEAN, *SIMULATED)
