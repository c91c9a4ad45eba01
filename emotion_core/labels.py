"""The 7-class task. Order matters: it is the order of every probability vector and confusion matrix."""

LABELS = ("angry", "disgust", "fearful", "happy", "neutral", "sad", "surprised")
MODEL_NAMES = {
    "cnn1d": "1D CNN",
    "lstm": "LSTM",
    "cnn2d": "2D CNN (spectrogram image)",
    "whisper": "Whisper encoder",
    "ensemble": "Ensemble",
}
# how a sentence names a family's model ("the Whisper model", "the LSTM model")
MODEL_SHORT_NAMES = {**MODEL_NAMES, "whisper": "Whisper"}
LABEL_INDEX = {name: i for i, name in enumerate(LABELS)}
