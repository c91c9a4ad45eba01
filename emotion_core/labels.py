"""The 7-class task. Order matters: it is the order of every probability vector and confusion matrix."""
LABELS = ("angry", "disgust", "fearful", "happy", "neutral", "sad", "surprised")
LABEL_INDEX = {name: i for i, name in enumerate(LABELS)}
